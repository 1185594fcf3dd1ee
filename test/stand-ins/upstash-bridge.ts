// Upstash for tests: an HTTP server that speaks Upstash's REST protocol, as @upstash/redis
// uses it, in front of a real redis-server.
//
// POST /            one command as a JSON array            -> { result } | { error } (400)
// POST /pipeline    an array of commands, run in order     -> [{ result } | { error }, ...]
// POST /multi-exec  an array of commands in MULTI/EXEC     -> [{ result } | { error }, ...]
// `Authorization: Bearer <token>` on every call (401 otherwise); `Upstash-Encoding: base64`
// makes every string in a result base64 of its bytes, except the status reply "OK".
//
// All requests share one Redis connection and each request's commands are written to it
// in one piece, so a MULTI ... EXEC block is contiguous on the wire and atomic, and
// replies come back in request order. Commands that would change the shared connection's
// state (MULTI, WATCH, SELECT, SUBSCRIBE, ...) or block it (BLPOP, ...) are refused. When
// Redis is down or stops answering, the connection is dropped, every request in flight gets
// a 503, and the next request connects again.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { readBody } from "./read-body.ts";

// ---------------------------------------------------------------------------------------
// RESP: the commands we send are arrays of bulk strings; replies may be RESP2 or RESP3.

/** An error reply from Redis. */
export class RespError extends Error {
  override name = "RespError";
}

/**
 * A decoded reply. Bulk strings stay bytes (Buffer) so they can be base64-encoded exactly;
 * simple strings (status replies such as "OK") are JS strings.
 */
export type RespValue = null | number | string | Buffer | RespError | RespValue[];

export function encodeCommand(args: readonly string[]): Buffer {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(out);
}

/**
 * Decodes one reply starting at `start`, or returns null when `buf` does not hold all of it
 * yet. RESP3 types are read as the RESP2 reply Redis would have sent instead: maps and sets
 * as flat arrays, booleans as 1/0, doubles and big numbers as bulk strings.
 */
export function decodeReply(buf: Buffer, start: number): { value: RespValue; end: number } | null {
  if (start >= buf.length) return null;
  const eol = buf.indexOf("\r\n", start);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[start]!);
  const line = buf.toString("utf8", start + 1, eol);
  const next = eol + 2;
  switch (type) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new RespError(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "_":
      return { value: null, end: next };
    case "#":
      return { value: line === "t" ? 1 : 0, end: next };
    case ",":
    case "(":
      return { value: Buffer.from(line), end: next };
    case "$":
    case "=":
    case "!": {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return null;
      const body = buf.subarray(type === "=" ? next + 4 : next, next + length); // "=" starts with a "txt:" format tag
      return { value: type === "!" ? new RespError(body.toString("utf8")) : body, end: next + length + 2 };
    }
    case "*":
    case "~":
    case ">":
    case "%":
    case "|": {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let pos = next;
      for (let i = 0; i < (type === "%" || type === "|" ? 2 * count : count); i++) {
        const item = decodeReply(buf, pos);
        if (!item) return null;
        items.push(item.value);
        pos = item.end;
      }
      // An attribute map annotates the reply that follows it: skip to that reply.
      return type === "|" ? decodeReply(buf, pos) : { value: items, end: pos };
    }
    default:
      throw new RespError(`ERR protocol error: unexpected reply type ${JSON.stringify(type)}`);
  }
}

// ---------------------------------------------------------------------------------------
// One pipelined connection to Redis.

interface Waiter {
  resolve(value: RespValue): void;
  reject(error: Error): void;
}

interface Link {
  socket: Socket;
  waiters: Waiter[];
  buffer: Buffer;
}

class RedisConnection {
  private link: Link | null = null;
  private readonly host: string;
  private readonly port: number;
  private readonly setup: string[][];
  private readonly timeoutMs: number;

  constructor(redisUrl: string, timeoutMs: number) {
    const url = new URL(redisUrl);
    if (url.protocol !== "redis:") throw new Error(`redisUrl must be redis://host:port[/db], got ${redisUrl}`);
    this.host = url.hostname || "127.0.0.1";
    this.port = Number(url.port || 6379);
    this.timeoutMs = timeoutMs;
    this.setup = [];
    if (url.password) {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      this.setup.push(user ? ["AUTH", user, password] : ["AUTH", password]);
    }
    const db = url.pathname.replace(/^\//, "");
    if (db) this.setup.push(["SELECT", db]);
  }

  /** Sends the commands in one write and resolves with their replies, in order. */
  send(commands: string[][]): Promise<RespValue[]> {
    const link = this.link ?? this.open();
    const replies = commands.map(
      () => new Promise<RespValue>((resolve, reject) => link.waiters.push({ resolve, reject })),
    );
    link.socket.write(Buffer.concat(commands.map(encodeCommand)));
    const all = Promise.all(replies);
    // Replies arrive in order on one connection: one that never comes holds back every
    // later one, so a timeout drops the connection and fails everything waiting on it.
    const timer = setTimeout(
      () => this.drop(link, new Error(`redis did not answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    return all.finally(() => clearTimeout(timer));
  }

  close(): void {
    if (this.link) this.drop(this.link, new Error("bridge closed"));
  }

  private open(): Link {
    const socket = connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    const link: Link = { socket, waiters: [], buffer: Buffer.alloc(0) };
    this.link = link;
    socket.on("data", (chunk: Buffer) => this.receive(link, chunk));
    socket.on("error", (e) => this.drop(link, e));
    socket.on("close", () => this.drop(link, new Error("connection to redis closed")));
    for (const command of this.setup) {
      link.waiters.push({
        resolve: (reply) => {
          if (reply instanceof RespError) this.drop(link, new Error(`${command[0]} failed: ${reply.message}`));
        },
        reject: () => {},
      });
      socket.write(encodeCommand(command));
    }
    return link;
  }

  private receive(link: Link, chunk: Buffer): void {
    link.buffer = link.buffer.length ? Buffer.concat([link.buffer, chunk]) : chunk;
    let pos = 0;
    try {
      for (;;) {
        const reply = decodeReply(link.buffer, pos);
        if (!reply) break;
        pos = reply.end;
        const waiter = link.waiters.shift();
        if (!waiter) throw new Error("reply from redis with no command waiting for it");
        waiter.resolve(reply.value);
      }
    } catch (e) {
      this.drop(link, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    link.buffer = link.buffer.subarray(pos);
  }

  private drop(link: Link, error: Error): void {
    if (this.link === link) this.link = null;
    link.socket.destroy();
    const waiters = link.waiters.splice(0);
    for (const w of waiters) w.reject(error);
  }
}

// ---------------------------------------------------------------------------------------
// The REST side.

// Connection state or blocking: on a shared connection these would leak into other requests.
const REFUSED = new Set([
  "multi", "exec", "discard", "watch", "unwatch", "select", "swapdb", "auth", "hello", "reset", "quit",
  "client", "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
  "monitor", "sync", "psync", "replicaof", "slaveof", "shutdown", "wait", "waitaof",
  "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "xread", "xreadgroup",
]);

class BadRequest extends Error {}
class Unavailable extends Error {}

type Json = null | number | string | Json[] | { result?: Json; error?: string };

function toCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest("ERR a command must be a non-empty JSON array");
  const args = value.map((v) => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new BadRequest("ERR command arguments must be strings, numbers or booleans");
  });
  if (REFUSED.has(args[0]!.toLowerCase())) {
    throw new BadRequest(`ERR command '${args[0]}' is not supported over REST by this bridge`);
  }
  return args;
}

function toCommands(value: unknown): string[][] {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest("ERR expected a non-empty JSON array of commands");
  return value.map(toCommand);
}

/** A reply as JSON; with base64 on, every string except the status "OK" is base64 of its bytes. */
function toJson(value: RespValue, base64: boolean): Json {
  if (value === null || typeof value === "number") return value;
  if (value instanceof RespError) return value.message;
  if (Array.isArray(value)) return value.map((v) => toJson(v, base64));
  if (typeof value === "string") return base64 && value !== "OK" ? Buffer.from(value).toString("base64") : value;
  return base64 ? value.toString("base64") : value.toString("utf8");
}

const entry = (value: RespValue, base64: boolean): Json =>
  value instanceof RespError ? { error: value.message } : { result: toJson(value, base64) };

export interface UpstashBridgeOptions {
  /** The Redis behind the bridge (default redis://127.0.0.1:6379). */
  redisUrl?: string;
  /** The bearer token clients must present. */
  token: string;
  /** How long Redis may take to answer before the request fails with 503 (default 2000 ms). */
  commandTimeoutMs?: number;
}

export interface UpstashBridge {
  /** Base URL to give @upstash/redis as `url`. */
  url: string;
  token: string;
  close(): Promise<void>;
}

export async function startUpstashBridge(options: UpstashBridgeOptions): Promise<UpstashBridge> {
  const { token } = options;
  if (!token) throw new Error("startUpstashBridge needs a token");
  const redis = new RedisConnection(options.redisUrl ?? "redis://127.0.0.1:6379", options.commandTimeoutMs ?? 2000);

  async function run(path: string, body: unknown, base64: boolean): Promise<{ status: number; json: Json }> {
    const call = (commands: string[][]) =>
      redis.send(commands).catch((e: Error) => {
        throw new Unavailable(`ERR redis unavailable: ${e.message}`);
      });
    switch (path) {
      case "/": {
        const [reply] = await call([toCommand(body)]);
        return reply instanceof RespError
          ? { status: 400, json: { error: reply.message } }
          : { status: 200, json: { result: toJson(reply!, base64) } };
      }
      case "/pipeline": {
        const replies = await call(toCommands(body));
        return { status: 200, json: replies.map((r) => entry(r, base64)) };
      }
      case "/multi-exec": {
        const commands = toCommands(body);
        const replies = await call([["MULTI"], ...commands, ["EXEC"]]);
        const exec = replies[replies.length - 1]!;
        if (Array.isArray(exec)) return { status: 200, json: exec.map((r) => entry(r, base64)) };
        // EXECABORT: a command was refused while queueing, so none ran. Say which.
        const queued = replies.slice(1, -1).find((r) => r instanceof RespError);
        const reason = exec instanceof RespError ? exec.message : "EXECABORT transaction not executed";
        return { status: 400, json: { error: queued ? `${reason} (${queued.message})` : reason } };
      }
      default:
        throw new BadRequest(`ERR unsupported path ${path}: use /, /pipeline or /multi-exec`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, json: Json) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
    };
    if (req.headers.authorization !== `Bearer ${token}`) {
      req.resume();
      return reply(401, { error: "Unauthorized: invalid or missing auth token" });
    }
    if (req.method !== "POST") {
      req.resume();
      return reply(405, { error: "ERR only POST is supported by this bridge" });
    }
    const path = new URL(req.url ?? "/", "http://bridge").pathname;
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    try {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        throw new BadRequest("ERR failed to parse the request body as JSON");
      }
      const { status, json } = await run(path, body, base64);
      reply(status, json);
    } catch (e) {
      if (e instanceof BadRequest) return reply(400, { error: e.message });
      if (e instanceof Unavailable) return reply(503, { error: e.message });
      reply(500, { error: `ERR bridge: ${(e as Error).message}` });
    }
  }

  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("bridge did not get a TCP port");

  return {
    url: `http://127.0.0.1:${address.port}`,
    token,
    async close() {
      redis.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
