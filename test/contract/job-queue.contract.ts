// The JobQueue port's behaviour suite: at-least-once delivery of committed outbox rows,
// retries with the error kept, dead-lettering, and jobs that wait out a stopped consumer.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Archive, JobHandler, JobQueue } from "../../lib/core/ports.ts";
import type { Job, NewMessage } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";

export interface JobQueueFixture {
  archive: Archive;
  /** A fresh queue over the archive; `maxAttempts` small so dead-lettering is quick to reach. */
  makeQueue(options: { maxAttempts: number }): Promise<JobQueue & { idle(): Promise<void> }> | (JobQueue & { idle(): Promise<void> });
  /** Skip tests by title, with the reason in the adapter's test file. */
  skip?: string[];
  cleanup?: () => Promise<void>;
}

const message = (content: string): NewMessage => ({
  id: uid("m"),
  role: "user",
  content,
  name: null,
  createdAt: new Date().toISOString(),
  metadata: {},
  tokens: 1,
});

export function jobQueueContract(name: string, setup: () => Promise<JobQueueFixture>) {
  describe(`JobQueue contract: ${name}`, () => {
    let fx: JobQueueFixture;
    beforeAll(async () => {
      fx = await setup();
    });
    afterAll(async () => {
      await fx.cleanup?.();
    });

    async function enqueue(tenantId: string, n: number): Promise<Job[]> {
      await fx.archive.ensureTenant({ id: tenantId, name: tenantId });
      const r = await fx.archive.ingest({
        tenantId,
        sessionId: uid("s"),
        userId: "u",
        messages: Array.from({ length: n }, (_, i) => message(`m${i}`)),
        jobsFor: (ms) => ms.map((m) => ({ type: "embed", payload: { messageIds: [m.id] } })),
      });
      return r.jobs;
    }

    it("runs every dispatched job and marks it done", async () => {
      const t = uid("t");
      const queue = await fx.makeQueue({ maxAttempts: 3 });
      const seen: string[] = [];
      queue.start(async (job) => {
        if (job.tenantId === t) seen.push(job.id);
      });
      const jobs = await enqueue(t, 5);
      await queue.dispatch(jobs);
      await fx.archive.markDispatched(jobs.map((j) => j.id)); // as the ingest service does
      await queue.idle();
      await queue.stop();
      expect(seen.sort()).toEqual(jobs.map((j) => j.id).sort());
      expect(await fx.archive.queueStats(t)).toMatchObject({ pending: 0, failed: 0 });
    });

    it("runs jobs committed while no consumer was running once one starts", async () => {
      const t = uid("t");
      const jobs = await enqueue(t, 3); // committed, never dispatched: a crash between commit and dispatch
      expect((await fx.archive.queueStats(t)).pending).toBe(3);
      const queue = await fx.makeQueue({ maxAttempts: 3 });
      const seen = new Set<string>();
      queue.start(async (job) => {
        if (job.tenantId === t) seen.add(job.id);
      });
      await queue.idle();
      await queue.stop();
      expect([...seen].sort()).toEqual(jobs.map((j) => j.id).sort());
      expect((await fx.archive.queueStats(t)).pending).toBe(0);
    });

    it("retries a failing job and dead-letters it after maxAttempts with its error", async () => {
      const t = uid("t");
      const queue = await fx.makeQueue({ maxAttempts: 2 });
      const attempts = new Map<string, number>();
      const handler: JobHandler = async (job) => {
        if (job.tenantId !== t) return;
        const n = (attempts.get(job.id) ?? 0) + 1;
        attempts.set(job.id, n);
        if (job.payload && (job.payload as { messageIds: string[] }).messageIds[0] === poison) throw new Error("embedder rejected input");
      };
      const jobs = await enqueue(t, 3);
      const poison = (jobs[1]!.payload as { messageIds: string[] }).messageIds[0];
      queue.start(handler);
      await queue.dispatch(jobs);
      await fx.archive.markDispatched(jobs.map((j) => j.id)); // as the ingest service does
      for (let i = 0; i < 50 && (await fx.archive.queueStats(t)).pending > 0; i++) await new Promise((r) => setTimeout(r, 100));
      await queue.stop();
      expect(attempts.get(jobs[1]!.id)).toBe(2);
      expect(attempts.get(jobs[0]!.id)).toBe(1);
      expect(await fx.archive.queueStats(t)).toMatchObject({ pending: 0, failed: 1 });
      expect((await fx.archive.getJobs([jobs[1]!.id]))[0]).toMatchObject({ status: "failed", lastError: "embedder rejected input" });
    });

    it("answers ping", async () => {
      await expect((await fx.makeQueue({ maxAttempts: 1 })).ping()).resolves.toBeUndefined();
    });
  });
}
