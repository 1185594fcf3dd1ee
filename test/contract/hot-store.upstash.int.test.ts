// The HotStore contract on Upstash, through the REST bridge to the machine's redis-server,
// plus what only this adapter has: keys, the marker that caches an empty window, TTLs,
// a caller's own client, and configuration errors. All of it twice: over the client's own
// transport (the platform's fetch, as on the edge) and over the Node runtime's fetch
// (requester.ts), whose time limit, retry and read-your-writes token are checked at the end
// against a server of the test's own.

import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import { createNodeFetch } from "../../lib/adapters/shared/node-fetch.ts";
import { createUpstashHotStore, type UpstashRestConfig } from "../../lib/adapters/upstash/hot-store.ts";
import { isStrataError } from "../../lib/core/errors.ts";
import type { HotStore } from "../../lib/core/ports.ts";
import type { Message } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";
import { startUpstashBridge, type UpstashBridge } from "../stand-ins/upstash-bridge.ts";
import { hotStoreContract } from "./hot-store.contract.ts";

const token = randomUUID();
const prefix = `strata-test-${randomUUID().slice(0, 8)}`;
let bridge: UpstashBridge;
let raw: Redis; // direct access for checks and clean-up

async function deleteKeys(pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await raw.scan(cursor, { match: pattern, count: 500 });
    if (keys.length) await raw.del(...keys);
    cursor = String(next);
  } while (cursor !== "0");
}

beforeAll(async () => {
  bridge = await startUpstashBridge({ token });
  raw = new Redis({ url: bridge.url, token, enableTelemetry: false, automaticDeserialization: false });
});

afterAll(async () => {
  if (raw) await deleteKeys(`${prefix}:*`);
  await bridge?.close();
});

const nodeFetch = createNodeFetch();
const transports: [string, Partial<UpstashRestConfig>][] = [
  ["the client's transport", {}],
  ["node-fetch", { fetch: nodeFetch }],
];

hotStoreContract("upstash", async () => ({
  store: createUpstashHotStore({ config: { url: bridge.url, token }, prefix }),
}));

hotStoreContract("upstash over node-fetch", async () => ({
  store: createUpstashHotStore({ config: { url: bridge.url, token, fetch: nodeFetch }, prefix }),
}));

function message(tenantId: string, sessionId: string, seq: number, over: Partial<Message> = {}): Message {
  return {
    tenantId, sessionId, userId: "u1", id: `${sessionId}-m${seq}`, seq, role: "user", content: `message ${seq}`,
    name: null, createdAt: "2024-01-01T00:00:00.000Z", metadata: {}, tokens: 3, ...over,
  };
}

describe.each(transports)("upstash hot store (%s)", (_transport, extra) => {
  let store: HotStore;
  beforeAll(() => {
    store = createUpstashHotStore({ config: { url: bridge.url, token, ...extra }, prefix, ttlSeconds: 600 });
  });

  it("is named upstash and keeps a window under prefix:tenant:win:session", async () => {
    expect(store.adapter).toBe("upstash");
    const [t, s] = [uid("tenant"), uid("session")];
    await store.replaceWindow(t, s, [message(t, s, 1)], 10);
    expect(await raw.exists(`${prefix}:${t}:win:${s}`)).toBe(1);
  });

  it("escapes ':' in tenant ids, so two tenant/session pairs never share a key", async () => {
    const [a, b] = [`${uid("t")}:win:x`, uid("t")];
    await store.replaceWindow(a, "s", [message(a, "s", 1, { content: "A" })], 10);
    expect(await store.readWindow(b, "x:win:s", 10)).toBeNull();
    expect(await raw.exists(`${prefix}:${a.replace(/:/g, "%3A")}:win:s`)).toBe(1);
  });

  it("caches an empty window as a hit, not a miss", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    await store.replaceWindow(t, s, [], 10);
    expect(await store.readWindow(t, s, 10)).toEqual([]);
    await store.appendWindow(t, s, [message(t, s, 1)], 10);
    expect((await store.readWindow(t, s, 10))?.map((m) => m.seq)).toEqual([1]);
  });

  it("sets the TTL on replace and refreshes it on append", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    const key = `${prefix}:${t}:win:${s}`;
    await store.replaceWindow(t, s, [message(t, s, 1)], 10);
    const ttl = await raw.ttl(key);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    await raw.expire(key, 5);
    await store.appendWindow(t, s, [message(t, s, 2)], 10);
    expect(await raw.ttl(key)).toBeGreaterThan(590);
  });

  it("trims to zero when maxLength is 0, and the window stays cached", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    await store.replaceWindow(t, s, [message(t, s, 1), message(t, s, 2)], 10);
    await store.appendWindow(t, s, [message(t, s, 3)], 0);
    expect(await store.readWindow(t, s, 10)).toEqual([]);
  });

  it("takes an unbounded limit or maxLength as 'all'", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    await store.replaceWindow(t, s, [message(t, s, 1), message(t, s, 2)], Infinity);
    await store.appendWindow(t, s, [message(t, s, 3)], Infinity);
    expect((await store.readWindow(t, s, Infinity))?.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("reads a window written in a format it does not know as a miss, and repair overwrites it", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    const key = `${prefix}:${t}:win:${s}`;
    await store.replaceWindow(t, s, [message(t, s, 1)], 10);
    await raw.zadd(key, { score: 2, member: JSON.stringify([99, "future", 2]) });
    expect(await store.readWindow(t, s, 10)).toBeNull();
    await store.replaceWindow(t, s, [message(t, s, 1), message(t, s, 2)], 10);
    expect((await store.readWindow(t, s, 10))?.map((m) => m.seq)).toEqual([1, 2]);
  });

  it("works with a caller's client left on its defaults (automatic deserialization)", async () => {
    const client = new Redis({ url: bridge.url, token, enableTelemetry: false });
    const own = createUpstashHotStore({ client, prefix });
    const [t, s] = [uid("tenant"), uid("session")];
    const m = message(t, s, 7, { content: "42", metadata: { n: [1, "2"] }, name: "bot" });
    await own.replaceWindow(t, s, [message(t, s, 6, { content: "{\"json\":true}" }), m], 10);
    const window = await own.readWindow(t, s, 10);
    expect(window?.[1]).toEqual(m);
    expect(window?.[0]?.content).toBe("{\"json\":true}");
    await own.close();
    await expect(client.ping()).resolves.toBe("PONG"); // close left the caller's client alone
  });

  it("wraps an upstream failure in a StrataError without the message text", async () => {
    const [t, s] = [uid("tenant"), uid("session")];
    await raw.set(`${prefix}:${t}:win:${s}`, "not a sorted set");
    const secret = "private words from a user";
    const error = await store.appendWindow(t, s, [message(t, s, 1, { content: secret })], 10).catch((e: unknown) => e);
    expect(isStrataError(error) && error.category).toBe("upstream");
    expect((error as Error).message).toMatch(/^upstash: .*WRONGTYPE/);
    expect((error as Error).message).not.toContain(secret);
  });

  it("names the fix when its configuration is wrong", () => {
    const fails = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isStrataError(e) && e.category).toBe("config");
        return (e as Error).message;
      }
      throw new Error("expected a config error");
    };
    expect(fails(() => createUpstashHotStore({ config: { url: "", token }, prefix }))).toMatch(/UPSTASH_REDIS_REST_URL/);
    expect(fails(() => createUpstashHotStore({ config: { url: bridge.url, token: " " }, prefix }))).toMatch(/UPSTASH_REDIS_REST_TOKEN/);
    expect(fails(() => createUpstashHotStore({ config: { url: bridge.url, token }, prefix: "" }))).toMatch(/prefix/);
    expect(fails(() => createUpstashHotStore({ config: { url: bridge.url, token }, prefix, ttlSeconds: 0 }))).toMatch(/ttlSeconds/);
    expect(fails(() => createUpstashHotStore({ config: { url: bridge.url, token, timeoutMs: -1 }, prefix }))).toMatch(/timeoutMs/);
  });
});

describe("upstash hot store over node-fetch: the transport's own rules", () => {
  let server: http.Server;
  let url: string;
  // What the test's server does with each request, by its number (from 1), and what it saw.
  let answer: (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void;
  const seen: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        answer(seen.length, req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  // The client sends commands through its auto-pipelining, as the Node entry's does: to
  // /pipeline, a list of commands answered by a list of results.
  const reply = (res: http.ServerResponse, body: { result?: unknown; error?: string }, headers: Record<string, string> = {}) => {
    const commands = seen.at(-1)!.path === "/pipeline" ? (JSON.parse(seen.at(-1)!.body) as unknown[]).length : 0;
    res.writeHead(200, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(commands ? Array.from({ length: commands }, () => body) : body));
  };

  it("sends the token and the command, and returns the read-your-writes token it was given on the next request", async () => {
    seen.length = 0;
    answer = (n, _req, res) => reply(res, { result: "PONG" }, { "upstash-sync-token": `sync-${n}` });
    const store = createUpstashHotStore({ config: { url, token: "tok", fetch: createNodeFetch() }, prefix });
    await store.ping();
    await store.ping();
    expect(seen.map((r) => r.headers.authorization)).toEqual(["Bearer tok", "Bearer tok"]);
    expect(seen[0]!.path).toBe("/pipeline");
    expect(JSON.parse(seen[0]!.body)).toEqual([["ping"]]);
    expect(seen[1]!.headers["upstash-sync-token"]).toBe("sync-1");
  });

  it("retries once after a network error, and gives up after its retries", async () => {
    seen.length = 0;
    answer = (n, req, res) => (n === 1 ? req.socket.destroy() : reply(res, { result: "PONG" }));
    const store = createUpstashHotStore({ config: { url, token, fetch: createNodeFetch() }, prefix });
    await store.ping();
    expect(seen).toHaveLength(2);

    // A new fetch, so that no kept-alive socket is reused (node-fetch sends a request on a
    // reused socket that was reset once more itself).
    seen.length = 0;
    answer = (_n, req) => req.socket.destroy();
    const fresh = createUpstashHotStore({ config: { url, token, fetch: createNodeFetch() }, prefix });
    const error = await fresh.ping().catch((e: unknown) => e);
    expect(isStrataError(error) && error.category).toBe("upstream");
    expect(seen).toHaveLength(2); // the request and its one retry
  });

  it("fails a request past its time limit without retrying it", async () => {
    seen.length = 0;
    answer = () => {}; // never answers
    const store = createUpstashHotStore({ config: { url, token, timeoutMs: 100, fetch: createNodeFetch() }, prefix });
    const error = await store.ping().catch((e: unknown) => e);
    expect(isStrataError(error) && error.category).toBe("upstream");
    expect((error as Error).message).toMatch(/no answer within 100 ms/);
    expect(seen).toHaveLength(1);
  });

  it("throws an error answer as the client's transport does, and an answer that is not JSON", async () => {
    answer = (_n, _req, res) => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "ERR wrong number of arguments" }));
    };
    const store = createUpstashHotStore({ config: { url, token, fetch: createNodeFetch() }, prefix });
    const error = await store.ping().catch((e: unknown) => e);
    expect((error as Error).message).toBe("upstash: ERR wrong number of arguments");

    answer = (_n, _req, res) => {
      res.writeHead(502);
      res.end("<html>bad gateway</html>");
    };
    expect(((await store.ping().catch((e: unknown) => e)) as Error).message).toMatch(/^upstash: Unable to parse response body: <html>bad gateway/);
  });
});
