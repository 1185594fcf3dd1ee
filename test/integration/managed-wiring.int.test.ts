// The production wiring end to end on one machine: every managed adapter (Upstash, Neon, SQS,
// Pinecone) pointed at its local counterpart, Strata built from the environment exactly as a
// deployment would build it. Then the hot tier's Redis is killed mid-run: reads fall back to
// the archive and say so in `degraded`, writes keep being acknowledged, and once Redis is
// back the hot window repairs itself. A second API process reads the entity graph through
// its shared in-process index, current with what the first process's workers merge and purge.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IndexedGraphStore } from "../../lib/adapters/local/graph-index.ts";
import { createNeonSqlClient } from "../../lib/adapters/neon/client.ts";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/core/log.ts";
import { createStrata, type Strata } from "../../lib/runtime.ts";
import { uid } from "../fixtures/pglite.ts";
import { call } from "../fixtures/strata.ts";
import { startCloudStandIns, type CloudStandIns } from "../stand-ins/dev-cloud.ts";
import { startRedisServer, type RedisServer } from "../stand-ins/redis-server.ts";

let redis: RedisServer;
let cloud: CloudStandIns;
let strata: Strata;
let env: Record<string, string>;
const database = `strata_test_${uid("wiring").replace(/-/g, "_")}`;

beforeAll(async () => {
  redis = await startRedisServer();
  cloud = await startCloudStandIns({ database, fresh: true, redisUrl: redis.url });
  env = { ...cloud.env, STRATA_QUEUE_WAIT_SECONDS: "1", STRATA_STAGE: uid("t") };
  const config = loadConfig(env, { logLevel: "silent" });
  strata = await createStrata(config, { log: createLogger("silent") });
});

afterAll(async () => {
  await strata?.close();
  await cloud?.close();
  await redis?.stop();
  const { default: pg } = await import("pg");
  const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await admin.connect();
  await admin.query(`drop database if exists "${database}" with (force)`);
  await admin.end();
});

const turns = [
  { role: "user", name: "Ann", content: "We are planning a hiking trip to Lake Tahoe in August." },
  { role: "assistant", name: "Bot", content: "Great! Do you need a campsite near the lake?" },
  { role: "user", name: "Ann", content: "Yes, and my sister Maria is allergic to peanuts." },
];

/** Two turns about a kayak, with ids `<session>/1` and `<session>/2`. */
const kayak = (sessionId: string) => [
  { id: `${sessionId}/1`, role: "user", content: "I keep my kayak at the marina in Sausalito." },
  { id: `${sessionId}/2`, role: "assistant", content: "Noted: the kayak stays at the Sausalito marina." },
];

describe("managed wiring", () => {
  it("uses every managed adapter", async () => {
    const health = await call(strata, "GET", "/v1/health");
    expect(health.status).toBe(200);
    const adapters = Object.fromEntries(health.body.tiers.map((t: { tier: string; adapter: string }) => [t.tier, t.adapter]));
    expect(adapters).toMatchObject({ archive: "neon", hot: "upstash", vectors: "pinecone", queue: "sqs" });
    expect(health.body.tiers.filter((t: { status: string }) => t.status === "down")).toEqual([]);
    // A server that runs jobs beside the API parses off the API's thread, as the embedded one
    // does: compromise's first load there stalled a context call for half a second or more.
    expect(health.body.tiers.find((t: { tier: string }) => t.tier === "extractor").detail).toBe("in-process, on a worker thread");
  });

  it("ingests, derives through SQS workers and recalls through Pinecone", async () => {
    const s = uid("s");
    const r = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: "ann", messages: turns.map((t, i) => ({ ...t, id: `${s}/${i}` })) });
    expect(r.status).toBe(201);
    await strata.idle();
    expect((await call(strata, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 0, failed: 0 });
    expect(await strata.deps.vectors.count("default", "ann")).toBeGreaterThanOrEqual(3);
    const search = await call(strata, "POST", "/v1/search", { userId: "ann", query: "who is allergic to peanuts?", limit: 3 });
    expect(search.body.results[0].id).toBe(`${s}/2`);
    expect(search.body.results[0].sources).toEqual(expect.arrayContaining(["keyword", "vector"]));
  });

  it("answers graph reads in a second process from memory, current with what the first one's workers merged and purged", async () => {
    // Another API process over the same services, consuming nothing: the graph it reads is
    // written by `strata`'s job consumer (extract and forget jobs), never through it.
    const reader = await createStrata(loadConfig(env, { logLevel: "silent", workers: false }), { log: createLogger("silent") });
    const sql = createNeonSqlClient({ connectionString: env.DATABASE_URL!, wsProxy: env.STRATA_NEON_WS_PROXY!, fetchEndpoint: env.STRATA_NEON_FETCH_ENDPOINT! });
    const tables = createSqlGraphStore({ sql });
    try {
      expect(reader.deps.graph.adapter).toMatch(/\+memory \(shared\)$/);
      const u = uid("graph");
      const s = uid("s");
      const said = [
        "My sister Maria moved to Lisbon last spring.",
        "Maria works at Acme with Jonas in Lisbon.",
        "Jonas visited Kyoto with Maria in April.",
      ].map((content, i) => ({ id: `${s}/${i}`, role: "user", name: "Ann", content }));
      const q = { tenantId: "default", userId: u, terms: ["maria", "lisbon", "acme", "jonas", "kyoto"], limit: 50 };
      const expectAsTables = async () => {
        expect(await reader.deps.graph.facts(q)).toEqual(await tables.facts(q));
        expect(await reader.deps.graph.facts({ ...q, terms: [] })).toEqual(await tables.facts({ ...q, terms: [] }));
        expect(await reader.deps.graph.messagesMentioning(q)).toEqual(await tables.messagesMentioning(q));
        return (await reader.deps.graph.messagesMentioning(q)).map((r) => r.id);
      };

      expect((await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: said.slice(0, 2) })).status).toBe(201);
      await strata.idle();
      expect(await expectAsTables()).toEqual(expect.arrayContaining([`${s}/0`, `${s}/1`]));
      const context = await call(reader, "GET", `/v1/sessions/${s}/context?userId=${u}&query=${encodeURIComponent("Where does Maria live?")}&budget=800`);
      expect(context.status).toBe(200);
      expect(context.body.facts.length).toBeGreaterThan(0);

      // Merged after the reader loaded the user: its next context call sees it through the graph
      // version read with the session (Archive.readContext), with no version read of its own.
      await (reader.deps.graph as IndexedGraphStore).loads();
      expect((await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: u, messages: said.slice(2) })).status).toBe(201);
      await strata.idle();
      // (Another session of the user: this one's recent window would hold the turn.)
      const after = await call(reader, "GET", `/v1/sessions/${uid("s")}/context?userId=${u}&query=${encodeURIComponent("Jonas Kyoto April")}&budget=800`);
      expect(after.status).toBe(200);
      const hit = after.body.recalled.find((m: { id: string }) => m.id === `${s}/2`);
      expect(hit?.sources).toContain("graph");
      expect(await expectAsTables()).toContain(`${s}/2`);

      // Forgotten through the reader; purged from the graph by the first process's consumer.
      expect((await call(reader, "DELETE", `/v1/messages/${encodeURIComponent(`${s}/1`)}`)).status).toBe(202);
      await strata.idle();
      const left = await expectAsTables();
      expect(left).not.toContain(`${s}/1`);
      expect(left).toContain(`${s}/2`);

      expect((await call(reader, "DELETE", `/v1/users/${u}`)).status).toBe(202);
      await strata.idle();
      expect(await expectAsTables()).toEqual([]);
      expect(await reader.deps.graph.facts({ ...q, terms: [] })).toEqual([]);
    } finally {
      await reader.close();
      await sql.close();
    }
  });

  it("serves reads from the archive while Redis is down, keeps acknowledging writes, and repairs the hot window after", async () => {
    const s = uid("s");
    const first = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: "ann", messages: turns });
    expect(first.status).toBe(201);
    const warm = await call(strata, "GET", `/v1/sessions/${s}/context?budget=500`);
    expect(warm.body.degraded).toEqual([]);

    await redis.stop();
    const during = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: "ann", messages: [{ role: "user", content: "Redis is down and this still lands." }] });
    expect(during.status).toBe(201);
    expect(during.body.messages[0].seq).toBe(4);
    const degraded = await call(strata, "GET", `/v1/sessions/${s}/context?budget=500`);
    expect(degraded.status).toBe(200);
    expect(degraded.body.degraded).toContain("hot");
    expect(degraded.body.recent.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4]);
    const health = await call(strata, "GET", "/v1/health");
    expect(health.body.tiers.find((t: { tier: string }) => t.tier === "hot").status).toBe("down");

    await redis.start(); // comes back empty, as a crashed cache does
    const repaired = await call(strata, "GET", `/v1/sessions/${s}/context?budget=500`);
    expect(repaired.body.degraded).toEqual([]);
    expect(repaired.body.recent.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4]);
    let window = null;
    for (let i = 0; i < 20 && !window; i++) {
      window = await strata.deps.hot.readWindow("default", s, 10);
      if (!window) await new Promise((r) => setTimeout(r, 50));
    }
    expect(window?.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  // A search has no session to read: it reads the user's version and graph version in one
  // statement (Archive.readVersions) for both indexes, which check against them.
  it("answers a search on one process with everything another committed before it, and nothing it forgot, from one version read", async () => {
    const config = loadConfig({ ...cloud.env, STRATA_WORKERS: "off", STRATA_STAGE: strata.config.stage }, { logLevel: "silent" });
    const other = await createStrata(config, { log: createLogger("silent") });
    try {
      const archive = other.deps.archive;
      const readVersions = archive.readVersions!.bind(archive);
      let reads = 0;
      archive.readVersions = (...args) => {
        reads++;
        return readVersions(...args);
      };
      const user = uid("u");
      const search = async (query: string) => {
        const r = await call(other, "POST", "/v1/search", { userId: user, query, limit: 10 });
        expect(r.status).toBe(200);
        expect(r.body.degraded).toEqual([]);
        return r.body.results.map((m: { id: string }) => m.id);
      };
      expect(await search("kayak")).toEqual([]);
      expect(reads).toBe(1);

      const s = uid("s");
      await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: user, messages: kayak(s) });
      expect(await search("where is the kayak?")).toEqual(expect.arrayContaining([`${s}/1`, `${s}/2`]));
      await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: user, messages: [{ id: `${s}/3`, role: "user", content: "The kayak paddle is in the garage." }] });
      expect(await search("kayak paddle garage")).toContain(`${s}/3`);
      expect(reads).toBe(3);

      // Forgotten on the first process: gone from the other's next search, at once.
      expect((await call(strata, "DELETE", `/v1/messages/${encodeURIComponent(`${s}/3`)}`)).status).toBeLessThan(300);
      const left = await search("kayak paddle garage");
      expect(left).not.toContain(`${s}/3`);
      expect(left).toContain(`${s}/1`);
      expect((await call(strata, "DELETE", `/v1/users/${user}`)).status).toBeLessThan(300);
      expect(await search("kayak")).toEqual([]);
      expect(reads).toBe(5);
    } finally {
      await other.close();
    }
  });

  // The context call reads the session, summary, memories and the user's version in one
  // statement, and its keyword index checks against that version: what another process
  // committed before the call began must all be in it, and nothing it forgot.
  it("answers a context call on one process with everything another committed before it, and nothing it forgot", async () => {
    const config = loadConfig({ ...cloud.env, STRATA_WORKERS: "off", STRATA_STAGE: strata.config.stage }, { logLevel: "silent" });
    const other = await createStrata(config, { log: createLogger("silent") });
    try {
      const user = uid("u");
      const s = uid("s");
      const ask = async (query?: string) => {
        const r = await call(other, "GET", `/v1/sessions/${s}/context?userId=${user}&budget=4000${query ? `&query=${encodeURIComponent(query)}` : ""}`);
        expect(r.status).toBe(200);
        expect(r.body.degraded).toEqual([]);
        return r.body;
      };
      const ids = (items: { id: string }[]) => items.map((m) => m.id);
      // Nothing stored yet: an empty context for the user, not an error.
      expect(await ask()).toMatchObject({ recent: [], summary: null, recalled: [], memories: [] });

      const old = uid("s");
      await call(strata, "POST", `/v1/sessions/${old}/messages`, { userId: user, messages: kayak(old) });
      await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: user, messages: turns.map((t, i) => ({ ...t, id: `${s}/${i}` })) });
      let body = await ask("where is the kayak?");
      expect(ids(body.recent)).toEqual([`${s}/0`, `${s}/1`, `${s}/2`]);
      expect(ids(body.recalled)).toContain(`${old}/1`);
      expect(body.summary).toBeNull();

      // Written on the first process: a summary, a memory and a new turn in the old session.
      await strata.deps.archive.saveSummary({ tenantId: "default", sessionId: s, userId: user, upToSeq: 2, content: "Ann plans a Tahoe hike.", tokens: 6 }, null);
      await strata.deps.archive.saveMemories([
        { tenantId: "default", id: `${s}/task`, userId: user, kind: "task", content: "book the Tahoe campsite", priority: 8, tokens: 4, sourceMessageId: `${s}/0` },
      ]);
      await call(strata, "POST", `/v1/sessions/${old}/messages`, { userId: user, messages: [{ id: `${old}/3`, role: "user", content: "The kayak paddle is in the garage." }] });
      body = await ask("where is the kayak paddle?");
      expect(body.summary).toMatchObject({ content: "Ann plans a Tahoe hike.", upToSeq: 2 });
      expect(body.memories.map((m: { id: string }) => m.id)).toEqual([`${s}/task`]);
      expect(ids(body.recalled)).toEqual(expect.arrayContaining([`${old}/1`, `${old}/3`]));

      // Forgotten on the first process: gone from the next call on the other, at once.
      expect((await call(strata, "DELETE", `/v1/messages/${encodeURIComponent(`${old}/3`)}`)).status).toBeLessThan(300);
      expect((await call(strata, "DELETE", `/v1/messages/${encodeURIComponent(`${s}/0`)}`)).status).toBeLessThan(300);
      body = await ask("where is the kayak paddle?");
      expect(ids(body.recalled)).not.toContain(`${old}/3`);
      expect(ids(body.recalled)).toContain(`${old}/1`);
      expect(ids(body.recent)).toEqual([`${s}/1`, `${s}/2`]);
      // The forgotten turn's memory and the summaries that may quote it went with it.
      expect(body.memories).toEqual([]);
      expect(body.summary).toBeNull();
      expect(body.prompt).not.toMatch(/paddle is in the garage|Lake Tahoe in August/);

      expect((await call(strata, "DELETE", `/v1/users/${user}`)).status).toBeLessThan(300);
      expect(await ask("kayak")).toMatchObject({ recent: [], summary: null, recalled: [], memories: [] });
      // The entity graph is a derived tier, purged by the forget job.
      await strata.idle();
      expect((await ask("kayak")).facts).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
