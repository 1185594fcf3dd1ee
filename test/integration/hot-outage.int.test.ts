// The Upstash hot store when Redis goes away: a dedicated redis-server behind the REST
// bridge is killed, frozen and restarted. Calls must fail fast with an upstream StrataError
// (the read path then answers from the archive) and work again once Redis is back.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUpstashHotStore } from "../../lib/adapters/upstash/hot-store.ts";
import { isStrataError } from "../../lib/core/errors.ts";
import type { HotStore } from "../../lib/core/ports.ts";
import type { Message } from "../../lib/core/types.ts";
import { startRedisServer, type RedisServer } from "../stand-ins/redis-server.ts";
import { startUpstashBridge, type UpstashBridge } from "../stand-ins/upstash-bridge.ts";

const ADAPTER_TIMEOUT_MS = 400;
const BRIDGE_TIMEOUT_MS = 800;

const t = "tenant-outage";
const s = `session-${randomUUID().slice(0, 8)}`;
const message = (seq: number): Message => ({
  tenantId: t, sessionId: s, userId: "u1", id: `m${seq}`, seq, role: "user", content: `message ${seq}`,
  name: null, createdAt: "2024-01-01T00:00:00.000Z", metadata: {}, tokens: 3,
});

/** Runs `call`, expecting an upstream StrataError; returns how long the rejection took. */
async function failsUpstream(call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const error = await call().then(
    () => new Error("expected the call to fail"),
    (e: unknown) => e,
  );
  const ms = performance.now() - t0;
  expect(isStrataError(error) ? error.category : error).toBe("upstream");
  return ms;
}

describe("hot store outage (Upstash bridge → dedicated redis-server)", () => {
  let redis: RedisServer;
  let bridge: UpstashBridge;
  let store: HotStore;

  beforeAll(async () => {
    redis = await startRedisServer();
    const token = randomUUID();
    bridge = await startUpstashBridge({ token, redisUrl: redis.url, commandTimeoutMs: BRIDGE_TIMEOUT_MS });
    store = createUpstashHotStore({ config: { url: bridge.url, token, timeoutMs: ADAPTER_TIMEOUT_MS }, prefix: "outage" });
  });

  afterAll(async () => {
    redis?.resume();
    await store?.close();
    await bridge?.close();
    await redis?.stop();
  });

  it("works while Redis is up", async () => {
    await store.ping();
    await store.replaceWindow(t, s, [message(1), message(2)], 10);
    expect((await store.readWindow(t, s, 10))?.map((m) => m.seq)).toEqual([1, 2]);
  });

  it("fails every call fast with an upstream error once Redis is killed", async () => {
    await redis.stop();
    const calls: (() => Promise<unknown>)[] = [
      () => store.ping(),
      () => store.readWindow(t, s, 10),
      () => store.appendWindow(t, s, [message(3)], 10),
      () => store.replaceWindow(t, s, [message(1)], 10),
      () => store.dropSession(t, s),
    ];
    for (const call of calls) expect(await failsUpstream(call)).toBeLessThan(ADAPTER_TIMEOUT_MS);
  });

  it("works again once Redis restarts on the same port, starting empty", async () => {
    await redis.start();
    expect(await store.readWindow(t, s, 10)).toBeNull(); // the restarted cache lost its data: a miss
    await store.replaceWindow(t, s, [message(1), message(2), message(3)], 10);
    expect((await store.readWindow(t, s, 2))?.map((m) => m.seq)).toEqual([2, 3]);
  });

  it("gives up on a frozen Redis within the adapter's time limit, and recovers when it thaws", async () => {
    redis.pause();
    const ms = await failsUpstream(() => store.readWindow(t, s, 10));
    expect(ms).toBeGreaterThanOrEqual(ADAPTER_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(ADAPTER_TIMEOUT_MS + 300);
    redis.resume();
    expect((await store.readWindow(t, s, 10))?.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("gets a 503 from the bridge when a frozen Redis outlasts the bridge's own limit, and the bridge reconnects", async () => {
    const patient = createUpstashHotStore({ config: { url: bridge.url, token: bridge.token, timeoutMs: 5000 }, prefix: "outage" });
    redis.pause();
    const ms = await failsUpstream(() => patient.readWindow(t, s, 10));
    expect(ms).toBeGreaterThanOrEqual(BRIDGE_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(BRIDGE_TIMEOUT_MS + 500);
    redis.resume();
    expect((await patient.readWindow(t, s, 10))?.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("fails fast when the REST endpoint itself is gone", async () => {
    await bridge.close();
    expect(await failsUpstream(() => store.readWindow(t, s, 10))).toBeLessThan(ADAPTER_TIMEOUT_MS);
  });
});
