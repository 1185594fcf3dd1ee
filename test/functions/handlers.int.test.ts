// The Lambda entry points, invoked as AWS invokes them: API Gateway v2 and Function URL
// requests, an SQS batch with one failing record, CronV2 and EventBridge scheduled events.
// Configuration reaches them the way SST delivers it — SST_RESOURCE_<Name> variables holding
// each linked resource as JSON — and every managed tier is its local stand-in.

import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Strata } from "../../lib/runtime.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";
import { startPineconeServer, type PineconeServer } from "../stand-ins/pinecone-server.ts";
import { startRedisServer, type RedisServer } from "../stand-ins/redis-server.ts";
import { startSqsStandIn, type SqsStandIn } from "../stand-ins/sqs.ts";
import { startUpstashBridge, type UpstashBridge } from "../stand-ins/upstash-bridge.ts";
import { httpEvent, scheduledEvent, sqsRecord, type HttpRequest } from "./events.ts";

const db = neonDatabase();
const stage = `pr-${Math.floor(Math.random() * 1e6)}`;
const apiKey = `sk_${uid("key")}_0123456789`;
let redis: RedisServer;
let upstash: UpstashBridge;
let sqs: SqsStandIn;
let pinecone: PineconeServer;
let queue: { queueUrl: string; name: string };
let strata: Strata;
let fns: {
  api: typeof import("../../functions/api.ts").handler;
  worker: typeof import("../../functions/worker.ts").handler;
  cron: typeof import("../../functions/cron.ts").handler;
};

const secret = (value: string) => JSON.stringify({ type: "sst.sst.Secret", value });

beforeAll(async () => {
  const neon = await db.get();
  redis = await startRedisServer();
  upstash = await startUpstashBridge({ token: "upstash-token", redisUrl: redis.url });
  sqs = await startSqsStandIn();
  const name = uid("strata-jobs");
  queue = { ...sqs.createQueue(name, { maxReceiveCount: 3, visibilityTimeoutSeconds: 60 }), name };
  pinecone = await startPineconeServer();
  const config = neon.config();
  Object.assign(process.env, {
    AWS_LAMBDA_FUNCTION_NAME: "strata-test-Api",
    STRATA_LOG_LEVEL: "silent",
    // What SST injects for the linked resources (stacks/).
    SST_RESOURCE_App: JSON.stringify({ name: "strata", stage }),
    SST_RESOURCE_Database: JSON.stringify({ type: "sst.sst.Linkable", url: config.connectionString }),
    SST_RESOURCE_Jobs: JSON.stringify({ type: "sst.aws.Queue", url: queue.queueUrl }),
    SST_RESOURCE_StrataApiKey: secret(apiKey),
    SST_RESOURCE_UpstashUrl: secret(upstash.url),
    SST_RESOURCE_UpstashToken: secret("upstash-token"),
    SST_RESOURCE_PineconeApiKey: secret(pinecone.apiKey),
    SST_RESOURCE_PineconeIndexHost: secret(pinecone.host),
    // Secrets left at their empty placeholder: the graph stays in the archive.
    SST_RESOURCE_Neo4jUri: secret(""),
    SST_RESOURCE_OpenAiApiKey: secret(""),
    // Only the stand-ins need these; in AWS the defaults apply.
    STRATA_NEON_WS_PROXY: config.wsProxy!,
    STRATA_NEON_FETCH_ENDPOINT: config.fetchEndpoint!,
    AWS_REGION: sqs.region,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
  });
  fns = {
    api: (await import("../../functions/api.ts")).handler,
    worker: (await import("../../functions/worker.ts")).handler,
    cron: (await import("../../functions/cron.ts")).handler,
  };
  strata = await (await import("../../functions/strata.ts")).lambdaStrata();
});

afterAll(async () => {
  await strata?.close();
  await Promise.allSettled([upstash?.close(), sqs?.close(), pinecone?.close()]);
  await redis?.stop();
  await db.close();
});

const auth = () => ({ authorization: `Bearer ${apiKey}` });

async function http(req: HttpRequest, via: "api-gateway" | "function-url" = "api-gateway") {
  const res = await fns.api(httpEvent(req, via));
  const text = res.isBase64Encoded ? Buffer.from(res.body, "base64").toString("utf8") : res.body;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.statusCode, headers: res.headers ?? {}, body: (text ? JSON.parse(text) : null) as any };
}

/** Every message waiting on the queue, received as the event source mapping would. */
async function drain(): Promise<{ MessageId: string; ReceiptHandle: string; Body: string; receiveCount: number }[]> {
  const all = [];
  for (;;) {
    const out = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queue.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }),
    );
    if (!out.Messages?.length) return all;
    for (const m of out.Messages) {
      all.push({ MessageId: m.MessageId!, ReceiptHandle: m.ReceiptHandle!, Body: m.Body!, receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1) });
    }
  }
}

const session = uid("trip");
const user = uid("ann");

describe("api", () => {
  it("ingests through an API Gateway v2 request and dispatches the jobs to SQS", async () => {
    const res = await http({
      method: "POST",
      path: `/v1/sessions/${session}/messages`,
      headers: auth(),
      body: {
        userId: user,
        messages: [
          { id: uid("m"), role: "user", name: "Ann", content: "We are planning a hiking trip to Lake Tahoe in August." },
          { id: uid("m"), role: "user", name: "Ann", content: "My sister Maria is allergic to peanuts, so pack snacks without them." },
        ],
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2]);
    expect(sqs.depth(queue.name)).toBeGreaterThanOrEqual(2); // an embed and an extract job
  });

  it("refuses a request without the linked API key, and bad input naming the field, storing nothing", async () => {
    const anonymous = await http({ method: "GET", path: `/v1/sessions/${session}/messages` });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe("UNAUTHORIZED");

    const other = uid("s");
    const bad = await http({
      method: "POST",
      path: `/v1/sessions/${other}/messages`,
      headers: auth(),
      body: { userId: user, messages: [{ role: "user", content: "fine" }, { role: "robot", content: "x" }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("messages[1].role");
    const history = await http({ method: "GET", path: `/v1/sessions/${other}/messages`, headers: auth() });
    expect(history.status).toBe(404);
  });

  it("serves history and context to Function URL requests, base64 bodies included", async () => {
    const history = await http({ method: "GET", path: `/v1/sessions/${session}/messages`, query: { limit: "1" }, headers: auth() }, "function-url");
    expect(history.status).toBe(200);
    expect(history.body.messages).toHaveLength(1);
    expect(history.body.hasMore).toBe(true);

    const context = await http(
      { method: "GET", path: `/v1/sessions/${session}/context`, query: { userId: user, query: "snacks", budget: "300" }, headers: auth() },
      "function-url",
    );
    expect(context.status).toBe(200);
    expect(context.body.recent.map((m: { content: string }) => m.content).join(" ")).toContain("peanuts");
    expect(context.body.tokens).toBeLessThanOrEqual(300);
    expect(context.headers["server-timing"]).toMatch(/hot;dur=/);

    const search = await http(
      { method: "POST", path: "/v1/search", headers: auth(), body: { userId: user, query: "who is allergic?", limit: 3 }, base64: true },
      "function-url",
    );
    expect(search.status).toBe(200);
    expect(search.body.results[0].content).toContain("allergic");
  });
});

describe("worker", () => {
  it("answers an SQS batch with the one failing record in batchItemFailures", async () => {
    // A malformed job (an embed job without message ids, as a faulty writer might commit): it fails.
    const tenantId = "default";
    const { jobs } = await strata.deps.archive.ingest({
      tenantId,
      sessionId: session,
      userId: user,
      messages: [{ id: uid("m"), role: "assistant", content: "Noted: no peanuts.", name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 5 }],
      jobsFor: () => [{ type: "embed", payload: {} as { messageIds: string[] } }],
    });
    const summarize = jobs[0]!;
    await strata.deps.queue.dispatch([summarize]);
    await strata.deps.archive.markDispatched([summarize.id]);

    const messages = await drain();
    const bad = messages.find((m) => JSON.parse(m.Body).jobId === summarize.id)!;
    expect(bad).toBeDefined();
    const result = await fns.worker({ Records: messages.map((m) => sqsRecord(m, queue.name)) });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: bad.MessageId }]);

    const ids = messages.map((m) => JSON.parse(m.Body).jobId as string);
    const status = Object.fromEntries((await strata.deps.archive.getJobs(ids)).map((j) => [j.id, j.status]));
    expect(status[summarize.id]).toBe("dispatched"); // SQS redelivers it, then dead-letters it
    expect(ids.filter((id) => id !== summarize.id).every((id) => status[id] === "done")).toBe(true);
    // The embed job reached Pinecone in this stage's namespace.
    expect(pinecone.stats().namespaces[`${stage}#${tenantId}`]).toBeGreaterThanOrEqual(2);
  });
});

describe("cron", () => {
  it("relays outbox jobs that never reached the queue, for CronV2 and EventBridge events", async () => {
    const { jobs } = await strata.deps.archive.ingest({
      tenantId: "default",
      sessionId: uid("s"),
      userId: user,
      messages: [{ id: uid("m"), role: "user", content: "An API invocation died before dispatching this.", name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 9 }],
      jobsFor: (ms) => [{ type: "embed", payload: { messageIds: ms.map((m) => m.id) } }],
    });
    // The relay leaves jobs younger than 30 s to the API invocation that is dispatching them.
    const direct = new pg.Client({ connectionString: (await db.get()).directUrl });
    await direct.connect();
    await direct.query("update jobs set created_at = now() - interval '5 minutes' where id = $1", [jobs[0]!.id]);
    await direct.end();

    const before = sqs.depth(queue.name);
    expect(await fns.cron({ task: "relay" })).toEqual({ task: "relay", relayed: 1 });
    expect(sqs.depth(queue.name)).toBe(before + 1);
    expect((await strata.deps.archive.getJobs([jobs[0]!.id]))[0]!.status).toBe("dispatched");
    expect(await fns.cron(scheduledEvent({ task: "relay" }))).toEqual({ task: "relay", relayed: 0 });
  });

  it("queues summaries of sessions due for one; the worker writes them and the context call puts them first", async () => {
    const s = uid("long");
    const u = uid("bea");
    const topics = ["the Lisbon office lease", "the Postgres upgrade", "the Q3 hiring plan", "the Acme renewal"];
    await strata.deps.archive.ingest({
      tenantId: "default",
      sessionId: s,
      userId: u,
      messages: Array.from({ length: 40 }, (_, i) => {
        const content = i === 2 ? "We decided to sign the Lisbon office lease on June 1." : i % 2 ? "ok" : `Bea reviewed ${topics[i % 4]} with the team on day ${i}.`;
        return { id: uid("m"), role: "user" as const, content, name: "Bea", createdAt: new Date().toISOString(), metadata: {}, tokens: strata.deps.tokenizer.count(content) };
      }),
      jobsFor: () => [],
    });
    const result = await fns.cron(scheduledEvent({ task: "summarize" }));
    expect(result).toMatchObject({ task: "summarize" });
    expect((result as { queued: number }).queued).toBeGreaterThanOrEqual(1);
    // Queued once: the job waiting for the session holds the next run back.
    const again = (await fns.cron({ task: "summarize" })) as { queued: number };
    const messages = await drain();
    expect(messages.filter((m) => JSON.parse(m.Body).type === "summarize").length).toBe((result as { queued: number }).queued + again.queued);
    const out = await fns.worker({ Records: messages.map((m) => sqsRecord(m, queue.name)) });
    expect(out.batchItemFailures).toEqual([]);

    const summary = await strata.deps.archive.latestSummary("default", s);
    expect(summary).toMatchObject({ upToSeq: 40 - strata.config.recentWindow, userId: u });
    expect(summary!.content).toContain("Bea: We decided to sign the Lisbon office lease on June 1.");
    const context = await http({ method: "GET", path: `/v1/sessions/${s}/context`, query: { userId: u, budget: "2000" }, headers: auth() });
    expect(context.status).toBe(200);
    expect(context.body.prompt.startsWith(`## Summary of the conversation so far\n${summary!.content}`)).toBe(true);
  });

  it("sweeps memories past their expiry", async () => {
    const s = uid("s");
    const u = uid("cy");
    const source = uid("m");
    await strata.deps.archive.ingest({
      tenantId: "default",
      sessionId: s,
      userId: u,
      messages: [{ id: source, role: "user", content: "Remind me to water the plants.", name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 7 }],
      jobsFor: () => [],
    });
    const mem = (id: string, expiresAt: string | null) => ({ tenantId: "default", id, userId: u, kind: "task" as const, content: id, priority: 6, tokens: 1, sourceMessageId: source, expiresAt });
    await strata.deps.archive.saveMemories([mem(uid("gone"), new Date(Date.now() - 60_000).toISOString()), mem("stays", null)]);
    const first = (await fns.cron({ task: "retention" })) as { task: string; swept: number };
    expect(first.task).toBe("retention");
    expect(first.swept).toBeGreaterThanOrEqual(1);
    expect(await fns.cron({ task: "retention" })).toEqual({ task: "retention", swept: 0 });
    expect((await strata.deps.archive.listMemories("default", u, { limit: 10 })).map((m) => m.id)).toEqual(["stays"]);
  });

  it("rejects an event that names no known task", async () => {
    await expect(fns.cron({ task: "vacuum" })).rejects.toThrow(/task: expected one of relay, summarize, retention, got "vacuum"/);
    await expect(fns.cron(scheduledEvent({}))).rejects.toThrow(/task: expected one of relay, summarize, retention, got null/);
  });
});

describe("environment", () => {
  it("gets the server's heap settings (lib/heap.ts) before it builds its Strata", async () => {
    expect((await import("../../lib/heap.ts")).heapTuned()).toBe(true);
  });
});
