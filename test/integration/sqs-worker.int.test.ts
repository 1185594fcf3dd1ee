// SQS specifics beyond the JobQueue contract: the Lambda-shaped record processor reports
// partial batch failures (only the bad record is retried), and a job that keeps failing ends
// up in the dead-letter queue as well as failed in the archive.

import { afterAll, beforeAll, expect, it } from "vitest";
import { createSqsJobQueue, type SqsRecord } from "../../lib/adapters/sqs/job-queue.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { Archive, JobHandler } from "../../lib/core/ports.ts";
import { createRequestGate } from "../../lib/core/request-gate.ts";
import { runJobs } from "../../lib/core/services/worker.ts";
import type { Job } from "../../lib/core/types.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { startSqsStandIn, type SqsStandIn } from "../stand-ins/sqs.ts";

let sqs: SqsStandIn;
let archive: Archive;
beforeAll(async () => {
  sqs = await startSqsStandIn();
  archive = createSqlArchive({ sql: await sharedPglite() });
});
afterAll(async () => {
  await sqs?.close();
  await closeSharedPglite();
});

async function jobsFor(n: number) {
  const tenantId = uid("t");
  await archive.ensureTenant({ id: tenantId, name: tenantId });
  const r = await archive.ingest({
    tenantId,
    sessionId: uid("s"),
    userId: "u",
    messages: Array.from({ length: n }, (_, i) => ({ id: uid("m"), role: "user" as const, content: `m${i}`, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 })),
    jobsFor: (ms) => ms.map((m) => ({ type: "extract" as const, payload: { messageIds: [m.id] } })),
  });
  return { tenantId, jobs: r.jobs };
}

/** The jobs as a Lambda batch's records, first deliveries, ids `${prefix}-0`, `${prefix}-1`, ... */
function recordsFor(jobs: Job[], tenantId: string, prefix = "rec"): SqsRecord[] {
  return jobs.map((j, i) => ({
    messageId: `${prefix}-${i}`,
    receiptHandle: `rh-${prefix}-${i}`,
    body: JSON.stringify({ jobId: j.id, tenantId, type: j.type }),
    attributes: { ApproximateReceiveCount: "1" },
    eventSource: "aws:sqs",
  }));
}

it("reports only the failing record of a Lambda batch", async () => {
  const { queueUrl } = sqs.createQueue(uid("q"), { maxReceiveCount: 3 });
  const queue = createSqsJobQueue({ archive, queueUrl, client: sqs.client, maxReceives: 3 });
  const { tenantId, jobs } = await jobsFor(3);
  const records = recordsFor(jobs, tenantId);
  const bad = jobs[1]!.id;
  const seen: string[] = [];
  const result = await queue.processRecords(records, async (job) => {
    seen.push(job.id);
    if (job.id === bad) throw new Error("extractor crashed");
  });
  expect(result.batchItemFailures).toEqual([{ itemIdentifier: "rec-1" }]);
  expect(seen.sort()).toEqual(jobs.map((j) => j.id).sort());
  const after = Object.fromEntries((await archive.getJobs(jobs.map((j) => j.id))).map((j) => [j.id, j.status]));
  expect(after[bad]).toBe("dispatched"); // SQS owns the retry
  expect(Object.values(after).filter((s) => s === "done")).toHaveLength(2);
  // A redelivery of a finished job is acknowledged without running it again.
  const again = await queue.processRecords([records[0]!], async () => {
    throw new Error("must not run");
  });
  expect(again.batchItemFailures).toEqual([]);
});

it("runs a batch's single-message jobs merged, leased and recorded in one call each, and still fails only the bad one", async () => {
  const { queueUrl } = sqs.createQueue(uid("q"), { maxReceiveCount: 3 });
  const calls: string[] = [];
  // The archive, counting the calls a batch makes to lease and record its jobs.
  const counted = new Proxy(archive, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name === "startJobs" || name === "completeJobs" || name === "releaseJob") return (...args: unknown[]) => (calls.push(String(name)), (value as (...a: unknown[]) => unknown).apply(target, args));
      return value;
    },
  });
  const queue = createSqsJobQueue({ archive: counted, queueUrl, client: sqs.client, maxReceives: 3 });
  const { tenantId, jobs } = await jobsFor(4);
  const records = recordsFor(jobs, tenantId);
  // The same job delivered twice in the batch: it runs once, and both records share its outcome.
  records.push({ ...records[2]!, messageId: "rec-2-again", receiptHandle: "rh-2-again" });
  const badMessage = (jobs[2] as Job<"extract">).payload.messageIds[0]!;
  const runs: string[][] = [];
  const run = async (job: Job) => {
    const ids = (job as Job<"extract">).payload.messageIds;
    runs.push(ids);
    if (ids.includes(badMessage)) throw new Error("extractor crashed");
  };
  const handler: JobHandler = Object.assign(run, { batch: (js: Job[]) => runJobs(js, run) });
  const result = await queue.processRecords(records, handler);
  expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(["rec-2", "rec-2-again"]);
  // First all four messages in one run; it failed, so each job ran alone.
  expect(runs[0]!.sort()).toEqual(jobs.map((j) => (j as Job<"extract">).payload.messageIds[0]!).sort());
  expect(runs.slice(1)).toHaveLength(4);
  expect(calls).toEqual(["startJobs", "completeJobs", "releaseJob"]);
  const after = Object.fromEntries((await archive.getJobs(jobs.map((j) => j.id))).map((j) => [j.id, j.status]));
  expect(after[jobs[2]!.id]).toBe("dispatched");
  expect(Object.values(after).filter((s) => s === "done")).toHaveLength(3);

  // Without a failure, one run for the batch's jobs, and nothing reported.
  const next = await jobsFor(3);
  runs.length = 0;
  const ok = await queue.processRecords(
    recordsFor(next.jobs, next.tenantId, "ok"),
    handler,
  );
  expect(ok.batchItemFailures).toEqual([]);
  expect(runs).toHaveLength(1);
  expect((await archive.getJobs(next.jobs.map((j) => j.id))).map((j) => j.status)).toEqual(["done", "done", "done"]);
});

it("waits for the requests of the process's API before a batch's lease and before each of its runs", async () => {
  const { queueUrl } = sqs.createQueue(uid("q"), { maxReceiveCount: 3 });
  const events: string[] = [];
  const counted = new Proxy(archive, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name === "startJobs") return (...args: unknown[]) => (events.push("lease"), (value as (...a: unknown[]) => unknown).apply(target, args));
      return value;
    },
  });
  const gate = createRequestGate();
  // A bound far above the test's waits: only the requests' end lets the batch go on.
  const queue = createSqsJobQueue({ archive: counted, queueUrl, client: sqs.client, gate, yieldMs: 60_000, settleMs: 0 });
  const { tenantId, jobs } = await jobsFor(2);
  const run = async (job: Job) => void events.push(`run ${job.id}`);
  let requestAfterFirstRun = true;
  // Two runs, each after the batch's pause, as runJobs makes for jobs of two types.
  const handler: JobHandler = Object.assign(run, {
    batch: async (js: Job[], pause?: () => Promise<void>) => {
      for (const job of js) {
        await pause?.();
        await run(job);
        // A request arrives once the first run is done: the second waits for it.
        if (job === js[0] && requestAfterFirstRun) gate.enter();
      }
      return new Map<string, unknown>();
    },
  });
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 5));
  };

  gate.enter(); // a context call in flight when the batch arrives
  const done = queue.processRecords(recordsFor(jobs, tenantId, "gated"), handler);
  await turns(10);
  expect(events).toEqual([]);
  gate.leave();
  await turns(10);
  expect(events).toEqual(["lease", `run ${jobs[0]!.id}`]);
  gate.leave();
  expect(await done).toEqual({ batchItemFailures: [] });
  expect(events).toEqual(["lease", `run ${jobs[0]!.id}`, `run ${jobs[1]!.id}`]);
  expect((await archive.getJobs(jobs.map((j) => j.id))).map((j) => j.status)).toEqual(["done", "done"]);

  // Without a request in flight the batch does not wait.
  const next = await jobsFor(2);
  events.length = 0;
  requestAfterFirstRun = false;
  expect(await queue.processRecords(recordsFor(next.jobs, next.tenantId, "free"), handler)).toEqual({ batchItemFailures: [] });
  expect(events).toEqual(["lease", `run ${next.jobs[0]!.id}`, `run ${next.jobs[1]!.id}`]);
});

it("moves a job that keeps failing to the dead-letter queue and marks it failed", async () => {
  const name = uid("q");
  const { queueUrl, dlqName } = sqs.createQueue(name, { maxReceiveCount: 2, visibilityTimeoutSeconds: 1 });
  const queue = createSqsJobQueue({ archive, queueUrl, client: sqs.client, maxReceives: 2, visibilityTimeoutSeconds: 1, waitTimeSeconds: 1 });
  const { tenantId, jobs } = await jobsFor(2);
  const bad = jobs[0]!.id;
  queue.start(async (job) => {
    if (job.id === bad) throw new Error("poison input");
  });
  await queue.dispatch(jobs);
  await archive.markDispatched(jobs.map((j) => j.id));
  for (let i = 0; i < 100 && sqs.depth(dlqName) === 0; i++) await new Promise((r) => setTimeout(r, 100));
  await queue.stop();
  expect(sqs.depth(dlqName)).toBe(1);
  expect(sqs.depth(name)).toBe(0);
  expect(await archive.queueStats(tenantId)).toMatchObject({ pending: 0, failed: 1 });
  expect((await archive.getJobs([bad]))[0]).toMatchObject({ status: "failed", lastError: "poison input", attempts: 2 });
});
