// The Upstash REST bridge against the machine's redis-server: the wire format by hand
// (status codes, base64, pipeline and transaction shapes) and through @upstash/redis.

import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeReply, encodeCommand, RespError, startUpstashBridge, type UpstashBridge } from "./upstash-bridge.ts";

const token = randomUUID();
const p = `bridge-test-${randomUUID().slice(0, 8)}`; // key prefix of this run
let bridge: UpstashBridge;
let redis: Redis;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(bridge.url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

beforeAll(async () => {
  bridge = await startUpstashBridge({ token });
  redis = new Redis({ url: bridge.url, token, enableTelemetry: false });
});

afterAll(async () => {
  if (redis) {
    const keys = await redis.keys(`${p}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await bridge?.close();
});

describe("upstash bridge", () => {
  it("answers 401 with a JSON error to a missing or wrong token", async () => {
    const missing = await fetch(bridge.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: expect.stringMatching(/auth token/) });
    const wrong = await fetch(bridge.url, { method: "POST", headers: { authorization: "Bearer nope" }, body: JSON.stringify(["PING"]) });
    expect(wrong.status).toBe(401);
    const client = new Redis({ url: bridge.url, token: "nope", enableTelemetry: false, enableAutoPipelining: false });
    await expect(client.get(`${p}:x`)).rejects.toThrow(/Unauthorized/);
  });

  it("runs one command and returns { result }, with numbers, nulls and arrays as JSON", async () => {
    expect(await post("/", ["SET", `${p}:a`, "héllo"])).toEqual({ status: 200, body: { result: "OK" } });
    expect(await post("/", ["GET", `${p}:a`])).toEqual({ status: 200, body: { result: "héllo" } });
    expect(await post("/", ["GET", `${p}:missing`])).toEqual({ status: 200, body: { result: null } });
    expect(await post("/", ["INCRBY", `${p}:n`, 5])).toEqual({ status: 200, body: { result: 5 } });
    await post("/", ["ZADD", `${p}:z`, 1, "one", 2.5, "two"]);
    expect(await post("/", ["ZRANGE", `${p}:z`, 0, -1, "WITHSCORES"])).toEqual({ status: 200, body: { result: ["one", "1", "two", "2.5"] } });
  });

  it("base64-encodes every string in a result but OK when asked to", async () => {
    const enc = { "Upstash-Encoding": "base64" };
    expect((await post("/", ["SET", `${p}:b`, "✓ done"], enc)).body).toEqual({ result: "OK" });
    expect((await post("/", ["GET", `${p}:b`], enc)).body).toEqual({ result: b64("✓ done") });
    expect((await post("/", ["PING"], enc)).body).toEqual({ result: b64("PONG") });
    expect((await post("/", ["INCR", `${p}:c`], enc)).body).toEqual({ result: 1 });
    expect((await post("/", ["EVAL", "return {ARGV[1], {ARGV[2]}, 7}", 0, "x", "y"], enc)).body).toEqual({
      result: [b64("x"), [b64("y")], 7],
    });
    // The client asks for base64 by default and decodes it.
    await redis.set(`${p}:json`, { nested: ["résumé", 1] });
    expect(await redis.get(`${p}:json`)).toEqual({ nested: ["résumé", 1] });
  });

  it("answers a failed command with 400 and { error }", async () => {
    expect(await post("/", ["NOSUCHCOMMAND", "x"])).toEqual({ status: 400, body: { error: expect.stringMatching(/^ERR unknown command/) } });
    await post("/", ["SET", `${p}:s`, "text"]);
    expect(await post("/", ["LPUSH", `${p}:s`, "x"])).toEqual({ status: 400, body: { error: expect.stringMatching(/^WRONGTYPE/) } });
    expect((await post("/", "not a command")).status).toBe(400);
    expect((await post("/", ["MULTI"])).body).toEqual({ error: expect.stringMatching(/not supported/) });
    const client = new Redis({ url: bridge.url, token, enableTelemetry: false, enableAutoPipelining: false });
    await expect(client.lpush(`${p}:s`, "x")).rejects.toThrow(/WRONGTYPE/);
  });

  it("runs a pipeline in order, with a failed command as { error } in its place", async () => {
    const res = await post("/pipeline", [
      ["SET", `${p}:pipe`, "1"],
      ["INCR", `${p}:pipe`],
      ["LPUSH", `${p}:pipe`, "x"],
      ["GET", `${p}:pipe`],
    ]);
    expect(res).toEqual({
      status: 200,
      body: [{ result: "OK" }, { result: 2 }, { error: expect.stringMatching(/^WRONGTYPE/) }, { result: "2" }],
    });
    const [a, b] = await redis.pipeline().set(`${p}:pipe2`, "v").get(`${p}:pipe2`).exec();
    expect([a, b]).toEqual(["OK", "v"]);
  });

  it("runs /multi-exec as one transaction and refuses it whole when a command cannot be queued", async () => {
    const ok = await post("/multi-exec", [
      ["SET", `${p}:tx`, "a"],
      ["APPEND", `${p}:tx`, "b"],
      ["LPUSH", `${p}:tx`, "x"], // fails at run time: the rest still runs, as in Redis
      ["GET", `${p}:tx`],
    ]);
    expect(ok).toEqual({ status: 200, body: [{ result: "OK" }, { result: 2 }, { error: expect.stringMatching(/^WRONGTYPE/) }, { result: "ab" }] });

    const aborted = await post("/multi-exec", [["SET", `${p}:tx2`, "a"], ["GET"]]);
    expect(aborted).toEqual({ status: 400, body: { error: expect.stringMatching(/^EXECABORT.*wrong number of arguments/) } });
    expect((await post("/", ["EXISTS", `${p}:tx2`])).body).toEqual({ result: 0 });

    expect(await redis.multi().incr(`${p}:tx3`).incr(`${p}:tx3`).exec()).toEqual([1, 2]);
  });

  it("runs Lua through EVALSHA, with the client falling back to EVAL on NOSCRIPT", async () => {
    const body = `return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${randomUUID()}`;
    const script = redis.createScript<number>(body);
    expect(await script.exec([`${p}:lua`], ["3"])).toBe(3); // NOSCRIPT, then EVAL
    expect(await script.evalsha([`${p}:lua`], ["4"])).toBe(7); // cached now
  });

  it("answers 503 when Redis cannot be reached, and 405 to anything but POST", async () => {
    const dead = await startUpstashBridge({ token, redisUrl: "redis://127.0.0.1:1" });
    try {
      const res = await fetch(dead.url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(["PING"]) });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: expect.stringMatching(/^ERR redis unavailable: .*ECONNREFUSED/) });
      const get = await fetch(dead.url, { headers: { authorization: `Bearer ${token}` } });
      expect(get.status).toBe(405);
    } finally {
      await dead.close();
    }
  });

  it("returns a value larger than one socket read intact", async () => {
    const big = "é".repeat(300_000) + "end";
    await redis.set(`${p}:big`, big);
    expect(await redis.get(`${p}:big`)).toBe(big);
  });

  it("selects the database and authenticates as the Redis URL says", async () => {
    const db5 = await startUpstashBridge({ token, redisUrl: "redis://127.0.0.1:6379/5" });
    const badAuth = await startUpstashBridge({ token, redisUrl: "redis://:wrong-password@127.0.0.1:6379" });
    try {
      const call = (url: string, command: unknown[]) =>
        fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(command) })
          .then(async (r) => ({ status: r.status, body: await r.json() }));
      await call(db5.url, ["SET", `${p}:db5`, "x"]);
      expect((await call(db5.url, ["EXISTS", `${p}:db5`])).body).toEqual({ result: 1 });
      expect((await post("/", ["EXISTS", `${p}:db5`])).body).toEqual({ result: 0 });
      await call(db5.url, ["DEL", `${p}:db5`]);
      expect(await call(badAuth.url, ["PING"])).toEqual({ status: 503, body: { error: expect.stringMatching(/^ERR redis unavailable: AUTH failed/) } });
    } finally {
      await Promise.all([db5.close(), badAuth.close()]);
    }
  });

  it("serves concurrent requests over its one connection without mixing replies", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => post("/", ["ECHO", `reply-${i}`]).then((r) => r.body)),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => ({ result: `reply-${i}` })));
  });
});

describe("RESP codec", () => {
  const decode = (s: string | Buffer) => decodeReply(Buffer.isBuffer(s) ? s : Buffer.from(s), 0);

  it("encodes a command as an array of bulk strings, sized in bytes", () => {
    expect(encodeCommand(["SET", "k", "é\r\n"]).toString()).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\né\r\n\r\n");
  });

  it("decodes RESP2 replies, and reports an incomplete one as null", () => {
    expect(decode("+OK\r\n")).toEqual({ value: "OK", end: 5 });
    expect(decode(":-12\r\n")?.value).toBe(-12);
    expect(decode("$-1\r\n")?.value).toBeNull();
    expect(decode("*-1\r\n")?.value).toBeNull();
    expect(decode("$4\r\na\r\nb\r\n")?.value).toEqual(Buffer.from("a\r\nb"));
    const error = decode("-ERR nope\r\n")?.value;
    expect(error).toBeInstanceOf(RespError);
    expect((error as RespError).message).toBe("ERR nope");
    expect(decode("*2\r\n$1\r\na\r\n*1\r\n:1\r\n")?.value).toEqual([Buffer.from("a"), [1]]);
    expect(decode("*2\r\n$1\r\na\r\n$3\r\nab")).toBeNull();
    expect(decode("$3\r\nab")).toBeNull();
    expect(decode("+OK")).toBeNull();
  });

  it("decodes RESP3 replies into their RESP2 shapes", () => {
    expect(decode("_\r\n")?.value).toBeNull();
    expect(decode("#t\r\n")?.value).toBe(1);
    expect(decode(",1.5\r\n")?.value).toEqual(Buffer.from("1.5"));
    expect(decode("%1\r\n+k\r\n:1\r\n")?.value).toEqual(["k", 1]);
    expect(decode("~2\r\n:1\r\n:2\r\n")?.value).toEqual([1, 2]);
    expect(decode("=8\r\ntxt:abcd\r\n")?.value).toEqual(Buffer.from("abcd"));
    expect(decode("|1\r\n+ttl\r\n:3\r\n:42\r\n")).toEqual({ value: 42, end: 19 });
    expect((decode("!5\r\nERR x\r\n")?.value as RespError).message).toBe("ERR x");
  });
});
