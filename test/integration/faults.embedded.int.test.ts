// The async pipeline under faults, on the embedded tiers: a server killed in the middle of a
// batch, an API process that died between commit and dispatch, every job delivered twice,
// jobs run out of order. After each, every message is in every tier exactly once: N in the
// archive, N vectors with no id twice, and a graph equal, row for row and count for count,
// to the same messages processed once, cleanly (see test/fixtures/pipeline.ts).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalJobQueue } from "../../lib/adapters/local/job-queue.ts";
import { loadConfig } from "../../lib/config.ts";
import { createJobHandler } from "../../lib/core/services/worker.ts";
import type { Job } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";
import {
  chunk,
  commitOnly,
  conversation,
  expectExactlyOnce,
  expectOutOfOrder,
  freePort,
  openStrata,
  referenceOf,
  runOnce,
  shuffled,
  spawnStrata,
  waitFor,
  type OpenStrata,
  type Reference,
  type StrataProcess,
} from "../fixtures/pipeline.ts";

const T = "default";
const N = 200;

let store: OpenStrata;
let reference: Reference;
const children: StrataProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  // One in-memory store for the in-process scenarios and the reference; consumer never started.
  store = await openStrata(loadConfig({}, { dataDir: "memory://", workers: false, logLevel: "silent" }));
  const u = uid("ref");
  const jobs: Job[] = [];
  for (const turns of chunk(conversation(u, N), 20)) jobs.push(...(await commitOnly(store.deps, { tenantId: T, sessionId: `${u}-s`, userId: u, turns })));
  await runOnce(store.deps, jobs, createJobHandler(store.deps));
  reference = await referenceOf(store.handles, T, u);
  expect(await store.deps.vectors.count(T, u)).toBe(N);
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill("SIGKILL")));
  await store?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function status(base: string): Promise<{ pending: number; inFlight: number; failed: number }> {
  const res = await fetch(`${base}/v1/status`);
  if (!res.ok) throw new Error(`status ${res.status}`);
  return ((await res.json()) as { queue: { pending: number; inFlight: number; failed: number } }).queue;
}

async function serve(dir: string): Promise<{ proc: StrataProcess; base: string }> {
  const port = await freePort();
  const proc = spawnStrata(["serve"], { PORT: String(port), STRATA_DATA_DIR: dir, STRATA_LOG_LEVEL: "silent" });
  children.push(proc);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`strata serve on ${dir} to answer`, async () => {
    if (proc.child.exitCode !== null) throw new Error(`server exited: ${proc.output()}`);
    return (await fetch(`${base}/v1/status`)).ok;
  }, { timeoutMs: 60_000, everyMs: 100 });
  return { proc, base };
}

describe("embedded pipeline under faults", () => {
  it("recovers from a SIGKILL of the server in the middle of a batch, each message once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "strata-kill-"));
    dirs.push(dir);
    const u = uid("kill");
    const s = `${u}-s`;
    const turns = conversation(u, N);

    const first = await serve(dir);
    // 20 acknowledged ingests of 10: 40 jobs, which the runner leases 8 at a time.
    for (const part of chunk(turns, 10)) {
      const res = await fetch(`${first.base}/v1/sessions/${s}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ userId: u, messages: part }),
      });
      expect(res.status).toBe(201);
    }
    const total = 40;
    const atKill = await waitFor("some jobs done, some not, one in hand", async () => {
      const q = await status(first.base);
      return q.pending > 0 && q.pending < total && q.inFlight > 0 ? q : undefined;
    }, { timeoutMs: 30_000, everyMs: 5 });
    expect(await first.proc.kill("SIGKILL")).toBe("SIGKILL");

    // Same data directory, new process: it owns the embedded archive alone, so the jobs the
    // dead runner held are queued again at start, with the rest.
    const second = await serve(dir);
    const drained = await waitFor("the backlog to drain after the restart", async () => {
      const q = await status(second.base);
      return q.pending === 0 ? q : undefined;
    }, { timeoutMs: 60_000, everyMs: 200 });
    expect(drained).toMatchObject({ pending: 0, inFlight: 0, failed: 0 });
    expect(await second.proc.kill("SIGTERM")).toBe(0);

    const reopened = await openStrata(loadConfig({}, { dataDir: dir, workers: false, logLevel: "silent" }));
    try {
      const jobs = await reopened.tiers.sql.query<{ id: string; type: string; status: string; attempts: number }>(
        "select id, type, status, attempts from jobs where tenant_id = $1 order by created_at, id",
        [T],
      );
      expect(jobs).toHaveLength(total);
      expect(jobs.filter((j) => j.status !== "done")).toEqual([]);
      // Jobs the killed runner had leased ran again after the restart.
      expect(jobs.filter((j) => Number(j.attempts) >= 2).length).toBeGreaterThanOrEqual(1);
      expect(total - atKill.pending).toBeGreaterThan(0);
      await expectExactlyOnce(reopened.handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
    } finally {
      await reopened.close();
    }
  }, 150_000);

  it("runs the jobs of an API process that died between commit and dispatch with a new runner", async () => {
    const u = uid("undispatched");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 50)) jobs.push(...(await commitOnly(store.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    // What the crash leaves: committed messages, outbox rows pending, never handed to a queue.
    expect(jobs).toHaveLength(8);
    expect((await store.deps.archive.getJobs(jobs.map((j) => j.id))).map((j) => j.status)).toEqual(Array(8).fill("pending"));
    expect(await store.deps.archive.queueStats(T)).toMatchObject({ pending: 8, failed: 0 });
    expect(await store.deps.vectors.count(T, u)).toBe(0);

    const runner = createLocalJobQueue({ archive: store.deps.archive, pollMs: 50 });
    runner.start(createJobHandler(store.deps));
    try {
      await waitFor("the new runner to finish the orphaned jobs", async () => (await store.deps.archive.queueStats(T)).pending === 0);
    } finally {
      await runner.stop();
    }
    const after = await store.deps.archive.getJobs(jobs.map((j) => j.id));
    expect(after.map((j) => [j.status, j.attempts])).toEqual(Array(8).fill(["done", 1]));
    await expectExactlyOnce(store.handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });

  it("leaves every message once when every job is delivered twice, the deliveries overlapping", async () => {
    const u = uid("twice");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 50)) jobs.push(...(await commitOnly(store.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    // Load the user's (empty) vectors into memory first, so the duplicate writes also go
    // through the in-process index, not only its table.
    const [probe] = await store.deps.embedder.embed(["Lisbon"]);
    expect(await store.deps.vectors.query({ tenantId: T, userId: u, vector: probe!, topK: 5 })).toEqual([]);

    const handler = createJobHandler(store.deps);
    const runs = new Map<string, number>();
    const counted = async (job: Job) => {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      await handler(job);
    };
    for (const job of jobs) await Promise.all([counted(job), counted(job)]);
    await store.deps.archive.completeJobs(jobs.map((j) => j.id));
    expect([...runs.values()]).toEqual(Array(jobs.length).fill(2));
    await expectExactlyOnce(store.handles, { tenantId: T, userId: u, sessionId: s, turns, reference });

    // And a late third delivery of everything, after the fact, changes nothing.
    await runOnce(store.deps, jobs, handler);
    await expectExactlyOnce(store.handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });

  it("leaves every message once when jobs run shuffled: extract before embed, later ingests first", async () => {
    const u = uid("shuffled");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 20)) jobs.push(...(await commitOnly(store.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    expect(jobs).toHaveLength(20);
    const order = shuffled(jobs, 20240501);
    expectOutOfOrder(order);
    await runOnce(store.deps, order, createJobHandler(store.deps));
    expect(await store.deps.archive.queueStats(T)).toMatchObject({ pending: 0, failed: 0 });
    await expectExactlyOnce(store.handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });
});
