// A poison job: the embedder refuses one input (a validation error, as a provider refuses
// bad input), every attempt. That job alone is dead-lettered — GET /v1/status counts it
// failed, the archive keeps it failed with its last error, and on SQS its message ends up in
// the DLQ — while the other jobs of the same runner round or SQS batch succeed, once, with
// their vectors written. Embedded (local runner over the outbox) and managed (SQS, Neon,
// Pinecone, Upstash against their local counterparts).

import { ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalJobQueue } from "../../lib/adapters/local/job-queue.ts";
import { createSqsJobQueue } from "../../lib/adapters/sqs/job-queue.ts";
import { loadConfig } from "../../lib/config.ts";
import type { StrataDeps } from "../../lib/core/deps.ts";
import { createLogger } from "../../lib/core/log.ts";
import type { Archive } from "../../lib/core/ports.ts";
import { createJobHandler } from "../../lib/core/services/worker.ts";
import type { Job } from "../../lib/core/types.ts";
import { createStrata, type Strata } from "../../lib/runtime.ts";
import { POSTGRES_URL } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";
import { chunk, conversation, graphSnapshot, openStrata, POISON, poisonedEmbedder, waitFor, type OpenStrata, type Turn } from "../fixtures/pipeline.ts";
import { call } from "../fixtures/strata.ts";
import { startCloudStandIns, type CloudStandIns } from "../stand-ins/dev-cloud.ts";
import { startRedisServer, type RedisServer } from "../stand-ins/redis-server.ts";
import { startSqsStandIn, type SqsStandIn } from "../stand-ins/sqs.ts";

const T = "default";
// 5 ingests of 5 turns: 10 jobs, few enough for one runner round or one SQS receive. Turn
// 12, in the third ingest, carries the marker: that ingest's embed job is the poison.
const TURNS = 25;
const POISONED = 12;
const REJECTED = /embedder refused input \d+: it holds the poison marker/;

/** Ingests the poisoned conversation over HTTP; returns the turns and the session. */
async function ingestPoisoned(app: Pick<Strata, "app">, u: string): Promise<{ turns: Turn[]; s: string }> {
  const s = `${u}-s`;
  const turns = conversation(u, TURNS, { poisonAt: POISONED, marker: POISON });
  for (const part of chunk(turns, 5)) expect((await call(app as Strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: part })).status).toBe(201);
  return { turns, s };
}

/** Every job of the run, split into the poison and the rest, with the outcome checks both share. */
async function expectOnlyPoisonFailed(deps: StrataDeps, ids: string[], u: string, turns: Turn[], maxAttempts: number): Promise<{ poison: Job; others: Job[] }> {
  const jobs = await deps.archive.getJobs(ids);
  expect(jobs).toHaveLength(10);
  const isPoison = (j: Job) => j.type === "embed" && (j.payload as { messageIds: string[] }).messageIds.includes(`${u}/${POISONED}`);
  const poison = jobs.find(isPoison)!;
  const others = jobs.filter((j) => !isPoison(j));
  expect(poison).toMatchObject({ status: "failed", attempts: maxAttempts });
  expect(poison.lastError).toMatch(REJECTED);
  expect(others.map((j) => [j.type, j.status, j.attempts, j.lastError]).sort()).toEqual(
    [...Array(4).fill(["embed", "done", 1, null]), ...Array(5).fill(["extract", "done", 1, null])].sort(),
  );

  // The poisoned ingest's five turns have no vector; the other twenty have theirs, once.
  const refused = new Set(turns.slice(10, 15).map((t) => t.id));
  const embedded = turns.filter((t) => !refused.has(t.id)).map((t) => t.id);
  expect(await deps.vectors.count(T, u)).toBe(20);
  const [probe] = await deps.embedder.embed(["Lisbon garden Acme Corp"]);
  const hits = (await deps.vectors.query({ tenantId: T, userId: u, vector: probe!, topK: 100 })).map((h) => h.id);
  expect(new Set(hits).size).toBe(hits.length);
  expect(hits.filter((id) => !embedded.includes(id))).toEqual([]);
  for (const t of turns.filter((x) => !refused.has(x.id)).slice(0, 3)) {
    const [v] = await deps.embedder.embed([`${t.name}: ${t.content}`]);
    expect((await deps.vectors.query({ tenantId: T, userId: u, vector: v!, topK: 1 }))[0]?.id).toBe(t.id);
  }
  return { poison, others };
}

describe("poison job on the embedded runner", () => {
  let store: OpenStrata;
  beforeAll(async () => {
    store = await openStrata(loadConfig({}, { dataDir: "memory://", workers: false, logLevel: "silent" }));
  });
  afterAll(async () => {
    await store?.close();
  });

  it("dead-letters the poison job after maxAttempts and finishes the rest of its round", async () => {
    const u = uid("poison");
    const { turns, s } = await ingestPoisoned(store, u);
    expect((await call(store as Strata, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 10, failed: 0 });

    // The runner's rounds, as it leased them.
    const rounds: string[][] = [];
    const archive: Archive = {
      ...store.deps.archive,
      async claimJobs(options) {
        const jobs = await store.deps.archive.claimJobs(options);
        if (jobs.length) rounds.push(jobs.map((j) => j.id));
        return jobs;
      },
    };
    const runner = createLocalJobQueue({ archive, batchSize: 16, maxAttempts: 2, backoffMs: () => 100, pollMs: 50 });
    runner.start(createJobHandler({ ...store.deps, embedder: poisonedEmbedder(store.deps.embedder) }));
    try {
      await waitFor("the runner to settle", async () => {
        const q = (await call(store as Strata, "GET", "/v1/status")).body.queue;
        return q.pending === 0 ? q : undefined;
      });
    } finally {
      await runner.stop();
    }

    expect((await call(store as Strata, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 0, inFlight: 0, failed: 1 });
    expect(rounds[0]).toHaveLength(10);
    const { poison, others } = await expectOnlyPoisonFailed(store.deps, rounds[0]!, u, turns, 2);
    // One round held all ten; the retry round held the poison job alone.
    expect(rounds.slice(1)).toEqual([[poison.id]]);
    expect(others.every((j) => rounds[0]!.includes(j.id))).toBe(true);
    // Its extract job was not held back: the poisoned turn is in the graph.
    expect((await graphSnapshot(store.tiers.sql, T, u)).mentions.some((m) => m.endsWith(`@${POISONED}`))).toBe(true);
    expect((await call(store as Strata, "GET", `/v1/sessions/${s}/messages?limit=100`)).body.messages).toHaveLength(TURNS);
  });
});

describe("poison job on SQS", () => {
  const database = `strata_test_${uid("poison").replace(/-/g, "_")}`;
  const queueName = uid("poison-jobs");
  let redis: RedisServer;
  let cloud: CloudStandIns;
  let sqs: SqsStandIn;
  let queue: { queueUrl: string; dlqName: string };
  let strata: Strata;

  beforeAll(async () => {
    redis = await startRedisServer();
    cloud = await startCloudStandIns({ database, fresh: true, redisUrl: redis.url });
    // A queue of our own, to read its depth and its DLQ's: two receives, then the DLQ.
    sqs = await startSqsStandIn();
    queue = sqs.createQueue(queueName, { maxReceiveCount: 2, visibilityTimeoutSeconds: 1 });
    const env = {
      ...cloud.env,
      STRATA_STAGE: uid("poison"),
      STRATA_QUEUE_URL: queue.queueUrl,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_REGION: sqs.region,
      STRATA_QUEUE_MAX_RECEIVES: "2",
      STRATA_QUEUE_VISIBILITY_SECONDS: "1",
      STRATA_QUEUE_WAIT_SECONDS: "1",
    };
    strata = await createStrata(loadConfig(env, { workers: false, logLevel: "silent" }), { log: createLogger("silent") });
  });

  afterAll(async () => {
    await strata?.close();
    await sqs?.close();
    await cloud?.close();
    await redis?.stop();
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`drop database if exists "${database}" with (force)`);
    await admin.end();
  });

  it("moves the poison job's message to the DLQ after maxReceives and finishes the rest of its batch", async () => {
    const q = strata.config.tiers.queue;
    if (q.kind !== "sqs") throw new Error("the environment must select SQS");
    expect([q.maxReceives, q.visibilityTimeoutSeconds]).toEqual([2, 1]);
    const u = uid("poison");
    const { turns } = await ingestPoisoned(strata, u);
    expect(sqs.depth(queueName)).toBe(10);

    // Configured as the runtime configures it, with a client that records each receive.
    const client = new SQSClient({ region: sqs.region, endpoint: sqs.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    const batches: string[][] = [];
    const send = client.send.bind(client) as (command: unknown, opts?: unknown) => Promise<unknown>;
    (client as unknown as { send: typeof send }).send = async (command, opts) => {
      const out = await send(command, opts);
      if (command instanceof ReceiveMessageCommand) {
        const ids = ((out as { Messages?: { Body?: string }[] }).Messages ?? []).map((m) => (JSON.parse(m.Body ?? "{}") as { jobId: string }).jobId);
        if (ids.length) batches.push(ids);
      }
      return out;
    };
    const worker = createSqsJobQueue({
      archive: strata.deps.archive,
      queueUrl: q.queueUrl,
      client,
      maxReceives: q.maxReceives,
      visibilityTimeoutSeconds: q.visibilityTimeoutSeconds,
      waitTimeSeconds: q.waitTimeSeconds,
    });
    worker.start(createJobHandler({ ...strata.deps, embedder: poisonedEmbedder(strata.deps.embedder) }));
    try {
      await waitFor("the poison job's message to reach the DLQ", () => sqs.depth(queue.dlqName) === 1, { timeoutMs: 30_000, everyMs: 100 });
    } finally {
      await worker.stop();
      client.destroy();
    }

    expect(sqs.depth(queue.dlqName)).toBe(1);
    expect(sqs.depth(queueName)).toBe(0);
    expect((await call(strata, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 0, inFlight: 0, failed: 1 });
    const all = [...new Set(batches.flat())];
    const { poison, others } = await expectOnlyPoisonFailed(strata.deps, all, u, turns, 2);
    // Received twice (the second receive dead-letters it in the archive), and the other jobs
    // of the batch it first came in were not retried with it.
    expect(batches.flat().filter((id) => id === poison.id)).toHaveLength(2);
    const firstBatch = batches.find((b) => b.includes(poison.id))!;
    expect(firstBatch.length).toBeGreaterThan(1);
    for (const id of firstBatch.filter((id) => id !== poison.id)) expect(others.find((j) => j.id === id)).toMatchObject({ status: "done", attempts: 1 });
    expect([...new Set(batches.flat().filter((id) => id !== poison.id))].sort()).toEqual(others.map((j) => j.id).sort());
  });
});
