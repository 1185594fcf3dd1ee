// Forgetting, checked tier by tier through the adapters (not through the API): after a
// forget, no tier holds the forgotten messages, including when their embed and extract jobs
// were still queued, or already running, when the forget came in.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StrataDeps } from "../../lib/core/deps.ts";
import { runForgetJob } from "../../lib/core/services/forget.ts";
import { createJobHandler, runEmbedJob } from "../../lib/core/services/worker.ts";
import type { Job } from "../../lib/core/types.ts";
import type { Strata } from "../../lib/runtime.ts";
import { uid } from "../fixtures/pglite.ts";
import { call, startTestStrata } from "../fixtures/strata.ts";

let strata: Strata;
beforeAll(async () => {
  // Workers off: each test decides when jobs run.
  strata = await startTestStrata({ workers: false });
});
afterAll(async () => {
  await strata?.close();
});

const T = "default";

async function ingest(sessionId: string, userId: string, n: number, prefix = sessionId) {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const messages = Array.from({ length: Math.min(500, n - i) }, (_, k) => ({
      id: `${prefix}/${i + k}`,
      role: (i + k) % 2 ? "assistant" : "user",
      name: (i + k) % 2 ? "Bo" : "Ann",
      content: `Message ${i + k}: Ann told Bo about the trip to Lisbon with Maria and the blue bicycle.`,
    }));
    const r = await call(strata, "POST", `/v1/sessions/${sessionId}/messages`, { userId, messages });
    expect(r.status).toBe(201);
    ids.push(...messages.map((m) => m.id));
  }
  return ids;
}

/** Runs the job handler over the queue until nothing is runnable. */
async function drain(deps: StrataDeps = strata.deps) {
  deps.queue.start(createJobHandler(deps));
  await strata.idle();
  await deps.queue.stop();
}

// What every ingested message names, as the graph's query terms.
const NAMED = ["ann", "bo", "lisbon", "maria"];

/** The message ids the graph's reads give for NAMED: its mentions and the evidence of its facts. */
async function graphIds(userId: string): Promise<string[]> {
  const { graph } = strata.deps;
  const mentioning = await graph.messagesMentioning({ tenantId: T, userId, terms: NAMED, limit: 1000 });
  const facts = [...(await graph.facts({ tenantId: T, userId, terms: NAMED, limit: 1000 })), ...(await graph.facts({ tenantId: T, userId, terms: [], limit: 1000 }))];
  return [...mentioning.map((r) => r.id), ...facts.flatMap((f) => f.messageIds)];
}

async function expectGone(userId: string, ids: string[], sessionIds: string[]) {
  const { archive, vectors, graph, hot } = strata.deps;
  expect(await archive.getMessages(T, ids)).toEqual([]);
  expect(await vectors.count(T, userId)).toBe(0);
  expect(await graph.counts(T, userId)).toEqual({ entities: 0, relations: 0, mentions: 0 });
  for (const s of sessionIds) expect(await hot.readWindow(T, s, 100)).toBeNull();
  // Nor does the graph's in-process read index (lib/adapters/local/graph-index.ts).
  expect(await graph.messagesMentioning({ tenantId: T, userId, terms: NAMED, limit: 100 })).toEqual([]);
  expect(await graph.facts({ tenantId: T, userId, terms: NAMED, limit: 100 })).toEqual([]);
  expect(await graph.facts({ tenantId: T, userId, terms: [], limit: 100 })).toEqual([]);
  const hits = await vectors.query({ tenantId: T, userId, vector: (await strata.deps.embedder.embed(["Lisbon trip"]))[0]!, topK: 10 });
  expect(hits).toEqual([]);
}

describe("forget", () => {
  it("forgets one message everywhere and refuses its id afterwards", async () => {
    const s = uid("s");
    const u = uid("u");
    const ids = await ingest(s, u, 4);
    await drain();
    expect(await strata.deps.vectors.count(T, u)).toBe(4);
    const mentionsBefore = (await strata.deps.graph.counts(T, u)).mentions;
    // Read once before the forget, so the graph's index holds the user when it lands.
    expect(await graphIds(u)).toContain(ids[1]);
    // A search loads the user's keyword index, which then holds the message whole for hydration.
    const held = await call(strata, "POST", "/v1/search", { userId: u, query: "Message 1: trip to Lisbon", limit: 10 });
    expect(held.body.results.map((m: { id: string }) => m.id)).toContain(ids[1]);

    const r = await call(strata, "DELETE", `/v1/messages/${encodeURIComponent(ids[1]!)}`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ scope: "message", targetId: ids[1], messages: 1, tiers: { archive: "done", hot: "done", vectors: "pending", graph: "pending" }, completedAt: null });
    const history = await call(strata, "GET", `/v1/sessions/${s}/messages`);
    expect(history.body.messages.map((m: { id: string }) => m.id)).toEqual([ids[0], ids[2], ids[3]]);
    // Reads never show it, even before the purge job ran.
    const search = await call(strata, "POST", "/v1/search", { userId: u, query: "Message 1: trip to Lisbon", limit: 10 });
    expect(search.body.results.map((m: { id: string }) => m.id)).not.toContain(ids[1]);
    // Its vector is still indexed (the purge job has not run), so vector recall finds the id; hydration must not bring it back.
    expect(await strata.deps.vectors.count(T, u)).toBe(4);
    const other = uid("s");
    const context = await call(strata, "GET", `/v1/sessions/${other}/context?userId=${u}&query=${encodeURIComponent("Message 1: trip to Lisbon")}&budget=4000`);
    expect(context.status).toBe(200);
    expect(context.body.recalled.map((m: { id: string }) => m.id)).toEqual(expect.arrayContaining([ids[0], ids[2], ids[3]]));
    expect(context.body.recalled.map((m: { id: string }) => m.id)).not.toContain(ids[1]);
    expect(context.body.prompt).not.toContain("Message 1:");

    await drain();
    const receipt = await call(strata, "GET", `/v1/forget/${r.body.receipt}`);
    expect(receipt.body.tiers).toEqual({ archive: "done", hot: "done", vectors: "done", graph: "done" });
    expect(receipt.body.completedAt).toEqual(expect.any(String));
    expect(await strata.deps.vectors.count(T, u)).toBe(3);
    expect((await strata.deps.graph.counts(T, u)).mentions).toBeLessThan(mentionsBefore);
    const left = await graphIds(u);
    expect(left).not.toContain(ids[1]);
    expect(left).toContain(ids[0]);
    const again = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: [{ id: ids[1], role: "user", content: "back?" }] });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("MESSAGE_FORGOTTEN");
  });

  it("forgets a session and a user, and answers 404 for what is not there", async () => {
    const u = uid("u");
    const s1 = uid("s");
    const s2 = uid("s");
    const gone = await ingest(s1, u, 3);
    const keep = await ingest(s2, u, 2);
    await drain();
    expect(await graphIds(u)).toEqual(expect.arrayContaining(keep));
    const r = await call(strata, "DELETE", `/v1/sessions/${s1}`);
    expect(r.status).toBe(202);
    expect(r.body.messages).toBe(3);
    await drain();
    expect((await call(strata, "GET", `/v1/sessions/${s1}/messages`)).status).toBe(404);
    const left = await graphIds(u);
    for (const id of gone) expect(left).not.toContain(id);
    expect(left).toEqual(expect.arrayContaining(keep));
    expect(await strata.deps.vectors.count(T, u)).toBe(2);
    expect((await strata.deps.archive.getMessages(T, keep)).length).toBe(2);

    const all = await call(strata, "DELETE", `/v1/users/${u}`);
    expect(all.status).toBe(202);
    await drain();
    await expectGone(u, keep, [s1, s2]);
    expect((await call(strata, "GET", `/v1/forget/${all.body.receipt}`)).body.completedAt).not.toBeNull();

    for (const path of [`/v1/messages/${uid("m")}`, `/v1/sessions/${uid("s")}`, `/v1/users/${uid("u")}`, `/v1/users/${u}`]) {
      const missing = await call(strata, "DELETE", path);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toMatch(/_NOT_FOUND$/);
    }
    expect((await call(strata, "GET", "/v1/forget/fgt_nope")).status).toBe(404);
  });

  it("leaves nothing of a user forgotten while 1,000 of their messages are still queued", async () => {
    const u = uid("u");
    const s = uid("s");
    const ids = await ingest(s, u, 1000);
    expect((await call(strata, "GET", "/v1/status")).body.queue.pending).toBeGreaterThanOrEqual(20);
    await strata.deps.hot.readWindow(T, s, 10);
    const r = await call(strata, "DELETE", `/v1/users/${u}`);
    expect(r.status).toBe(202);
    expect(r.body.messages).toBe(1000);
    await drain();
    await expectGone(u, ids, [s]);
    expect((await call(strata, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 0, failed: 0 });
  });

  it("undoes a write by a job that was already running when the forget and its purge landed", async () => {
    const u = uid("u");
    const s = uid("s");
    const ids = await ingest(s, u, 20);
    // The worst order: the embed job has passed its tombstone check and is about to write
    // when the user is forgotten and the forget job purges the vector tier; then the write
    // lands. Only the job's second tombstone check can catch that.
    let raced = false;
    const racingVectors = {
      ...strata.deps.vectors,
      adapter: strata.deps.vectors.adapter,
      upsert: async (records: Parameters<StrataDeps["vectors"]["upsert"]>[0]) => {
        if (!raced) {
          raced = true;
          expect((await call(strata, "DELETE", `/v1/users/${u}`)).status).toBe(202);
          const [job] = await strata.deps.archive.claimJobs({ limit: 10, leaseMs: 60_000, types: ["forget"] });
          await runForgetJob(strata.deps, job as Job<"forget">);
          await strata.deps.archive.completeJobs([job!.id]);
          expect(await strata.deps.vectors.count(T, u)).toBe(0);
        }
        return strata.deps.vectors.upsert(records);
      },
    };
    await runEmbedJob({ ...strata.deps, vectors: racingVectors }, (await strata.deps.archive.claimJobs({ limit: 10, leaseMs: 60_000, types: ["embed"] }))[0] as Job<"embed">);
    expect(raced).toBe(true);
    expect(await strata.deps.vectors.count(T, u)).toBe(0);
    await drain();
    await expectGone(u, ids, [s]);
  });
});
