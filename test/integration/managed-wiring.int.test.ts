// The production wiring end to end on one machine: every managed adapter (Upstash, Neon, SQS,
// Pinecone) pointed at its local counterpart, Strata built from the environment exactly as a
// deployment would build it. Then the hot tier's Redis is killed mid-run: reads fall back to
// the archive and say so in `degraded`, writes keep being acknowledged, and once Redis is
// back the hot window repairs itself.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
const database = `strata_test_${uid("wiring").replace(/-/g, "_")}`;

beforeAll(async () => {
  redis = await startRedisServer();
  cloud = await startCloudStandIns({ database, fresh: true, redisUrl: redis.url });
  const config = loadConfig({ ...cloud.env, STRATA_QUEUE_WAIT_SECONDS: "1", STRATA_STAGE: uid("t") }, { logLevel: "silent" });
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

describe("managed wiring", () => {
  it("uses every managed adapter", async () => {
    const health = await call(strata, "GET", "/v1/health");
    expect(health.status).toBe(200);
    const adapters = Object.fromEntries(health.body.tiers.map((t: { tier: string; adapter: string }) => [t.tier, t.adapter]));
    expect(adapters).toMatchObject({ archive: "neon", hot: "upstash", vectors: "pinecone", queue: "sqs" });
    expect(health.body.tiers.filter((t: { status: string }) => t.status === "down")).toEqual([]);
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
});
