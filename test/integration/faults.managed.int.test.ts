// The async pipeline under faults, on the managed adapters against their local counterparts
// (Neon stand-in over Postgres 15, Upstash bridge over a dedicated redis-server, fauxqs for
// SQS, the Pinecone data-plane server): a `strata worker` killed in the middle of a batch,
// an API process that died between commit and dispatch, every job sent to SQS twice, jobs
// sent shuffled, and a user forgotten while 1,000 of their messages are still queued. The
// tiers are checked through adapters opened from the same environment (openTiers).

import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSqsJobQueue, type SqsJobQueue } from "../../lib/adapters/sqs/job-queue.ts";
import { loadConfig, type StrataConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/core/log.ts";
import { createJobHandler } from "../../lib/core/services/worker.ts";
import type { Job } from "../../lib/core/types.ts";
import { createStrata, openTiers, type Strata, type Tiers } from "../../lib/runtime.ts";
import { POSTGRES_URL } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";
import {
  chunk,
  commitOnly,
  conversation,
  expectExactlyOnce,
  expectOutOfOrder,
  referenceOf,
  runOnce,
  shuffled,
  spawnStrata,
  waitFor,
  type Reference,
  type StrataProcess,
  type TierHandles,
} from "../fixtures/pipeline.ts";
import { call } from "../fixtures/strata.ts";
import { startCloudStandIns, type CloudStandIns } from "../stand-ins/dev-cloud.ts";
import { startRedisServer, type RedisServer } from "../stand-ins/redis-server.ts";

const T = "default";
const N = 200;
const database = `strata_test_${uid("faults").replace(/-/g, "_")}`;

let redis: RedisServer;
let cloud: CloudStandIns;
let env: Record<string, string>;
let config: StrataConfig;
/** The API side: ingests and forgets; its consumer is never started. */
let strata: Strata;
/** The checker's own adapters, opened from the same environment. */
let tiers: Tiers;
let handles: TierHandles;
let reference: Reference;
const children: StrataProcess[] = [];
const queues: SqsJobQueue[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  cloud = await startCloudStandIns({ database, fresh: true, redisUrl: redis.url });
  env = {
    ...cloud.env,
    STRATA_STAGE: uid("faults"),
    STRATA_LOG_LEVEL: "silent",
    // A killed worker's messages come back after 2 s; an idle worker polls every second.
    STRATA_QUEUE_WAIT_SECONDS: "1",
    STRATA_QUEUE_VISIBILITY_SECONDS: "2",
  };
  config = loadConfig(env, { workers: false });
  strata = await createStrata(config, { log: createLogger("silent") });
  tiers = await openTiers(config, createLogger("silent"));
  handles = { archive: tiers.archive, vectors: tiers.vectors, graph: tiers.graph, sql: tiers.sql, embedder: tiers.embedder };

  const u = uid("ref");
  const jobs: Job[] = [];
  for (const turns of chunk(conversation(u, N), 20)) jobs.push(...(await commitOnly(strata.deps, { tenantId: T, sessionId: `${u}-s`, userId: u, turns })));
  await runOnce(strata.deps, jobs, createJobHandler(strata.deps));
  reference = await referenceOf(handles, T, u);
  expect(await tiers.vectors.count(T, u)).toBe(N);
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill("SIGKILL")));
  await Promise.allSettled(queues.map((q) => q.stop()));
  await strata?.close();
  if (tiers) {
    await tiers.queue.stop();
    await Promise.all([tiers.hot.close(), tiers.vectors.close(), tiers.graph.close()]);
    await tiers.archive.close();
  }
  await cloud?.close();
  await redis?.stop();
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`drop database if exists "${database}" with (force)`);
  await admin.end();
});

function sqsTier() {
  const q = config.tiers.queue;
  if (q.kind !== "sqs") throw new Error("the environment must select SQS");
  const clientConfig = {
    ...(q.region ? { region: q.region } : {}),
    ...(q.endpoint ? { endpoint: q.endpoint } : {}),
    ...(q.credentials ? { credentials: q.credentials } : {}),
  };
  return { ...q, clientConfig };
}

/** Messages in the work queue: visible, in flight and delayed. */
async function queueDepth(): Promise<number> {
  const { queueUrl, clientConfig } = sqsTier();
  const client = new SQSClient(clientConfig);
  try {
    const out = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
      }),
    );
    const a = out.Attributes ?? {};
    return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
  } finally {
    client.destroy();
  }
}

/**
 * An in-process SQS consumer over the API side's adapters, configured as the runtime does
 * from the environment, that records which job ids each ReceiveMessage handed it.
 */
function sqsWorker(options: { relay?: { afterMs: number; everyMs: number }; sendDelayMs?: number } = {}): { queue: SqsJobQueue; received: string[] } {
  const q = sqsTier();
  const client = new SQSClient(q.clientConfig);
  const received: string[] = [];
  const send = client.send.bind(client) as (command: unknown, opts?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = async (command, opts) => {
    if (options.sendDelayMs && command instanceof SendMessageBatchCommand) await new Promise((r) => setTimeout(r, options.sendDelayMs));
    const out = await send(command, opts);
    if (command instanceof ReceiveMessageCommand) {
      for (const m of (out as { Messages?: { Body?: string }[] }).Messages ?? []) received.push((JSON.parse(m.Body ?? "{}") as { jobId: string }).jobId);
    }
    return out;
  };
  const queue = createSqsJobQueue({
    archive: strata.deps.archive,
    queueUrl: q.queueUrl,
    client,
    maxReceives: q.maxReceives,
    visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
    waitTimeSeconds: q.waitTimeSeconds,
    ...(options.relay ? { relay: options.relay } : {}),
  });
  const stop = queue.stop.bind(queue);
  queue.stop = async () => {
    await stop();
    client.destroy();
  };
  queues.push(queue);
  return { queue, received };
}

async function drained(what: string, timeoutMs = 30_000) {
  return waitFor(what, async () => {
    const q = await tiers.archive.queueStats(T);
    return q.pending === 0 ? q : undefined;
  }, { timeoutMs, everyMs: 100 });
}

async function startWorkerProcess(): Promise<StrataProcess> {
  const proc = spawnStrata(["worker"], env);
  children.push(proc);
  await waitFor("strata worker to start consuming", () => {
    if (proc.child.exitCode !== null) throw new Error(`worker exited: ${proc.output()}`);
    return proc.output().includes("consuming from sqs");
  }, { timeoutMs: 30_000 });
  return proc;
}

/** The embed and extract jobs of one test's messages (ids start with `prefix/`). */
async function jobsOf(prefix: string) {
  return tiers.sql.query<{ id: string; status: string; attempts: number; dispatched: boolean }>(
    `select id, status, attempts, dispatched_at is not null as dispatched from jobs
     where tenant_id = $1 and type in ('embed', 'extract') and payload::text like $2 order by created_at, id`,
    [T, `%"${prefix}/%`],
  );
}

describe("managed pipeline under faults", () => {
  it("uses the managed adapters", () => {
    expect([strata.deps.archive.adapter, strata.deps.hot.adapter, strata.deps.vectors.adapter, strata.deps.queue.adapter]).toEqual(["neon", "upstash", "pinecone", "sqs"]);
  });

  it("recovers from a SIGKILL of `strata worker` in the middle of a batch, each message once", async () => {
    const u = uid("kill");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    // Acknowledged writes first: 20 ingests of 10, 40 jobs waiting in SQS.
    for (const part of chunk(turns, 10)) expect((await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: part })).status).toBe(201);
    const total = 40;
    expect(await tiers.archive.queueStats(T)).toMatchObject({ pending: total, inFlight: 0 });

    const first = await startWorkerProcess();
    const atKill = await waitFor("some jobs done, some not, some in hand", async () => {
      const q = await tiers.archive.queueStats(T);
      return q.pending > 0 && q.pending < total && q.inFlight > 0 ? q : undefined;
    }, { timeoutMs: 30_000, everyMs: 5 });
    expect(await first.kill("SIGKILL")).toBe("SIGKILL");
    expect(atKill.pending).toBeLessThan(total);

    const second = await startWorkerProcess();
    expect(await drained("a second worker to finish the backlog")).toMatchObject({ pending: 0, inFlight: 0, failed: 0 });
    expect(await second.kill("SIGTERM")).toBe(0);

    const jobs = await jobsOf(u);
    expect(jobs).toHaveLength(total);
    expect(jobs.filter((j) => j.status !== "done")).toEqual([]);
    // Jobs the killed worker held ran again in the second one.
    expect(jobs.filter((j) => Number(j.attempts) >= 2).length).toBeGreaterThanOrEqual(1);
    await expectExactlyOnce(handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  }, 90_000);

  it("re-dispatches, through a worker's relay, jobs an API process committed but never sent", async () => {
    const u = uid("undispatched");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 50)) jobs.push(...(await commitOnly(strata.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    expect(jobs).toHaveLength(8);
    expect(await tiers.archive.queueStats(T)).toMatchObject({ pending: 8, failed: 0 });
    expect(await queueDepth()).toBe(0);
    expect((await jobsOf(u)).map((j) => [j.status, j.dispatched])).toEqual(Array(8).fill(["pending", false]));

    // Sends slower than the relay's period, as on a loaded host: runs must not overlap.
    const { queue, received } = sqsWorker({ relay: { afterMs: 200, everyMs: 200 }, sendDelayMs: 300 });
    queue.start(createJobHandler(strata.deps));
    await drained("the relayed jobs to run");
    await queue.stop();

    expect([...received].sort()).toEqual(jobs.map((j) => j.id).sort());
    expect((await jobsOf(u)).map((j) => [j.status, Number(j.attempts), j.dispatched])).toEqual(Array(8).fill(["done", 1, true]));
    expect(await queueDepth()).toBe(0);
    await expectExactlyOnce(handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });

  it("leaves every message once when every job is sent to SQS twice", async () => {
    const u = uid("twice");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 50)) jobs.push(...(await commitOnly(strata.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    await strata.deps.queue.dispatch(jobs);
    await strata.deps.queue.dispatch(jobs);
    await strata.deps.archive.markDispatched(jobs.map((j) => j.id));
    expect(await queueDepth()).toBe(2 * jobs.length);

    const { queue, received } = sqsWorker();
    queue.start(createJobHandler(strata.deps));
    await drained("both copies of every job");
    await waitFor("the queue to be empty", async () => (await queueDepth()) === 0);
    await queue.stop();

    // Every copy was received (a copy can come again when a batch outlasts the 2 s visibility
    // timeout on a loaded machine: SQS delivers at least once); the archive counts the runs of
    // a job, however many copies.
    const copies = new Map<string, number>();
    for (const id of received) copies.set(id, (copies.get(id) ?? 0) + 1);
    expect([...copies.keys()].sort()).toEqual(jobs.map((j) => j.id).sort());
    expect([...copies.values()].every((n) => n >= 2)).toBe(true);
    expect((await jobsOf(u)).every((j) => j.status === "done" && Number(j.attempts) >= 1 && Number(j.attempts) <= 2)).toBe(true);
    expect(await tiers.archive.queueStats(T)).toMatchObject({ pending: 0, failed: 0 });
    await expectExactlyOnce(handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });

  it("leaves every message once when jobs are sent shuffled: extract before embed, later ingests first", async () => {
    const u = uid("shuffled");
    const s = `${u}-s`;
    const turns = conversation(u, N);
    const jobs: Job[] = [];
    for (const part of chunk(turns, 20)) jobs.push(...(await commitOnly(strata.deps, { tenantId: T, sessionId: s, userId: u, turns: part })));
    expect(jobs).toHaveLength(20);
    const order = shuffled(jobs, 20240501);
    expectOutOfOrder(order);
    // One send per job, so the queue holds them in exactly this order.
    for (const job of order) await strata.deps.queue.dispatch([job]);
    await strata.deps.archive.markDispatched(jobs.map((j) => j.id));

    const { queue, received } = sqsWorker();
    queue.start(createJobHandler(strata.deps));
    await drained("the shuffled jobs");
    await queue.stop();

    // Each job was received (again, if a batch outlasted the 2 s visibility timeout: SQS
    // delivers at least once) and run to done, its effects once.
    expect([...new Set(received)].sort()).toEqual(jobs.map((j) => j.id).sort());
    expect((await jobsOf(u)).every((j) => j.status === "done" && Number(j.attempts) >= 1 && Number(j.attempts) <= 2)).toBe(true);
    await expectExactlyOnce(handles, { tenantId: T, userId: u, sessionId: s, turns, reference });
  });

  it("leaves nothing of a user forgotten while 1,000 of their messages are still queued", async () => {
    const u = uid("forget");
    const s = `${u}-s`;
    const turns = conversation(u, 1000);
    const ids = turns.map((t) => t.id);
    for (const part of chunk(turns, 500)) expect((await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: part })).status).toBe(201);
    expect(await tiers.archive.queueStats(T)).toMatchObject({ pending: 20, inFlight: 0 });
    expect(await queueDepth()).toBe(20);
    // A read repairs the hot window from the archive (in the background, after the answer):
    // the forget must clear it too.
    expect((await call(strata, "GET", `/v1/sessions/${s}/context?userId=${u}&budget=500`)).status).toBe(200);
    await waitFor("the context read to repair the hot window", async () => ((await tiers.hot.readWindow(T, s, 100))?.length ?? 0) > 0);

    const r = await call(strata, "DELETE", `/v1/users/${u}`);
    expect(r.status).toBe(202);
    expect(r.body.messages).toBe(1000);

    const worker = await startWorkerProcess();
    expect(await drained("the queued jobs and the purge")).toMatchObject({ pending: 0, failed: 0 });
    expect(await worker.kill("SIGTERM")).toBe(0);
    expect((await jobsOf(u)).map((j) => j.status)).toEqual(Array(20).fill("done"));

    const receipt = await call(strata, "GET", `/v1/forget/${r.body.receipt}`);
    expect(receipt.body.tiers).toEqual({ archive: "done", hot: "done", vectors: "done", graph: "done" });
    expect(receipt.body.completedAt).toEqual(expect.any(String));

    expect(await tiers.archive.getMessages(T, ids)).toEqual([]);
    expect(await tiers.vectors.count(T, u)).toBe(0);
    const [probe] = await strata.deps.embedder.embed([turns[0]!.content]);
    expect(await tiers.vectors.query({ tenantId: T, userId: u, vector: probe!, topK: 10 })).toEqual([]);
    expect(await tiers.graph.counts(T, u)).toEqual({ entities: 0, relations: 0, mentions: 0 });
    expect(await tiers.archive.listMemories(T, u, { limit: 10 })).toEqual([]);
    expect(await tiers.hot.readWindow(T, s, 100)).toBeNull();
  }, 90_000);
});
