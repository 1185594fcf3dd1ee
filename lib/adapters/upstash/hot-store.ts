// The production hot tier: each session's recent window in Upstash Redis, over its REST API.
//
// A window is one sorted set, `${prefix}:${tenantId}:win:${sessionId}`, scored by seq, so
// Redis keeps the order and trims by rank, and a read is one ZRANGE (one HTTP round trip).
// A list would need a Lua insertion sort to take an out-of-order append; a sorted set only
// needs the old entry of a seq removed before the new one is added.
//
// Every window also holds a marker member scored -inf, so it always sits at rank 0: a
// session with no messages is still a cached (empty) window rather than a miss that sends
// every read to the archive, and "is this window cached?" is the key's existence. Both
// writes are Lua scripts, so the check-then-append and the delete-then-fill are atomic.
//
// Members are compact JSON tuples with a format version first; tenant and session are in the
// key. A member in a format this code cannot read makes the read a miss: the archive answers
// and its repair overwrites the window, so a format change heals itself after a deploy.

import { Redis, type Requester } from "@upstash/redis";
import { StrataError, upstream } from "../../core/errors.ts";
import type { HotStore } from "../../core/ports.ts";
import type { Message, Role } from "../../core/types.ts";
import { fetchRequester } from "./requester.ts";

export interface UpstashRestConfig {
  /** The database's REST URL (UPSTASH_REDIS_REST_URL), e.g. https://<db>.upstash.io. */
  url: string;
  /** Its REST token (UPSTASH_REDIS_REST_TOKEN). */
  token: string;
  /** Per-request time limit, so a stalled database fails the call instead of hanging it (default 1000 ms). */
  timeoutMs?: number;
  /** Retries after a network error, 25 ms apart (default 1). */
  retries?: number;
  /**
   * The fetch requests go through (the Node runtime's, lib/adapters/shared/node-fetch.ts), by
   * this module's transport (requester.ts). Without it the client's own transport and the
   * platform's fetch, as on the edge read path.
   */
  fetch?: typeof fetch;
}

/** The client's class beneath the Node entry's, which takes a transport and options together. */
type CoreRedis = new (client: Requester, opts: { automaticDeserialization: boolean; enableTelemetry: boolean }) => Redis;

export type UpstashHotStoreOptions = ({ client: Redis } | { config: UpstashRestConfig }) & {
  /** Namespace of every key, e.g. the deployment stage. */
  prefix: string;
  /** Idle time after which a window expires, refreshed by every write (default 7 days). */
  ttlSeconds?: number;
};

const FORMAT = 1;
const MARKER = "#"; // never valid JSON, so it cannot be mistaken for a message
const DEFAULT_TTL_SECONDS = 7 * 24 * 3600;

// KEYS[1] window; ARGV[1] ttl, ARGV[2] maxLength, then seq/member pairs.
const APPEND = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', key, ARGV[i], ARGV[i])
  redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', key, 1, -(tonumber(ARGV[2]) + 1))
redis.call('EXPIRE', key, ARGV[1])
return 1
`;

// KEYS[1] window; ARGV[1] ttl, then seq/member pairs (already ordered, unique and trimmed).
const REPLACE = `
local key = KEYS[1]
redis.call('DEL', key)
redis.call('ZADD', key, '-inf', '${MARKER}')
for i = 2, #ARGV, 2 do
  redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', key, ARGV[1])
return 1
`;

type Stored = [
  format: number,
  id: string,
  seq: number,
  userId: string,
  role: Role,
  content: string,
  name: string | null,
  createdAt: string,
  tokens: number,
  metadata?: Record<string, unknown>,
];

function encode(m: Message): string {
  const tuple: Stored = [FORMAT, m.id, m.seq, m.userId, m.role, m.content, m.name, m.createdAt, m.tokens];
  if (Object.keys(m.metadata).length) tuple.push(m.metadata);
  return JSON.stringify(tuple);
}

/** The message, or null when the member is not in a format this code writes. */
function decode(tenantId: string, sessionId: string, raw: unknown): Message | null {
  let t: unknown = raw;
  if (typeof raw === "string") {
    try {
      t = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!Array.isArray(t) || t[0] !== FORMAT || t.length < 9) return null;
  const [, id, seq, userId, role, content, name, createdAt, tokens, metadata] = t as Stored;
  return { tenantId, sessionId, userId, id, seq, role, content, name, createdAt, metadata: metadata ?? {}, tokens };
}

/** The newest `maxLength` messages by seq, ascending, one per seq (the later one in the input wins). */
function newest(messages: Message[], maxLength: number): Message[] {
  const bySeq = new Map<number, Message>();
  for (const m of messages) bySeq.set(m.seq, m);
  const sorted = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return sorted.slice(Math.max(0, sorted.length - maxLength));
}

/** A whole, non-negative count Redis can take as a rank (NaN reads as 0, Infinity as "all"). */
const count = (n: number) => (Number.isNaN(n) ? 0 : Math.min(Math.max(0, Math.floor(n)), 1_000_000_000));

function configError(message: string): StrataError {
  return new StrataError("config", "CONFIG_INVALID", `upstash hot store: ${message}`);
}

function wrap(e: unknown): StrataError {
  if (!(e instanceof Error)) return upstream("upstash", e);
  // UpstashError messages end with the whole command, message text included: keep that out of logs.
  let message = e.message.replace(/, command was: [\s\S]*$/, "");
  const code = (e.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") message += ` (${code})`; // fetch failed (ECONNREFUSED)
  return upstream("upstash", new Error(message, { cause: e }));
}

function clientFrom(config: UpstashRestConfig): Redis {
  const { url, token } = config;
  if (typeof url !== "string" || !/^https?:\/\/[^\s/]+/.test(url)) {
    throw configError(`the REST URL must look like https://<db>.upstash.io, got ${JSON.stringify(url)}: set UPSTASH_REDIS_REST_URL, or unset it to use the in-process hot store`);
  }
  if (typeof token !== "string" || !token.trim()) {
    throw configError("no REST token: set UPSTASH_REDIS_REST_TOKEN to the database's token");
  }
  const timeoutMs = config.timeoutMs ?? 1000;
  const retries = config.retries ?? 1;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw configError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  if (!(Number.isInteger(retries) && retries >= 0)) throw configError(`retries must be an integer ≥ 0, got ${retries}`);
  if (config.fetch) {
    // The Node entry's constructor takes a transport without options; the class it extends
    // takes both, and the options are the ones below (no automatic JSON, no telemetry). The
    // Node entry also answers through its auto-pipelining proxy; so does this one.
    const Core = Object.getPrototypeOf(Redis) as CoreRedis;
    const client = new Core(fetchRequester({ url, token, fetch: config.fetch, timeoutMs, retries }), { automaticDeserialization: false, enableTelemetry: false });
    return (client as unknown as { autoPipeline: () => Redis }).autoPipeline();
  }
  return new Redis({
    url,
    token,
    // The client's default (5 retries, exponential backoff) holds a failing call for
    // seconds; the hot tier is a cache with an archive behind it, so it fails fast instead.
    retry: { retries, backoff: () => 25 },
    signal: () => AbortSignal.timeout(timeoutMs),
    automaticDeserialization: false,
    enableTelemetry: false,
    // Everything this store reads back is JSON text, the marker or PONG: valid UTF-8, so
    // base64 responses buy nothing here, and decoding them (atob plus a byte loop) costs
    // about 0.8 ms per read of 20 × 2.7 KB messages (p50 3.5 → 2.7 ms through the local bridge).
    responseEncoding: false,
  });
}

export function createUpstashHotStore(options: UpstashHotStoreOptions): HotStore {
  const { prefix } = options;
  if (typeof prefix !== "string" || !prefix.trim()) {
    throw configError("a key prefix is required (e.g. the stage name), so deployments sharing a database keep apart");
  }
  const ttl = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!(Number.isInteger(ttl) && ttl > 0)) throw configError(`ttlSeconds must be a positive integer, got ${ttl}`);
  const redis = "client" in options ? options.client : clientFrom(options.config);
  const append = redis.createScript<number>(APPEND);
  const replace = redis.createScript<number>(REPLACE);

  // ":" (and "%") in a tenant id are escaped, so the tenant part ends at the first ":" after
  // the prefix and no two (tenant, session) pairs share a key.
  const key = (tenantId: string, sessionId: string) =>
    `${prefix}:${tenantId.replace(/%/g, "%25").replace(/:/g, "%3A")}:win:${sessionId}`;

  const pairs = (messages: Message[]) => messages.flatMap((m) => [String(m.seq), encode(m)]);

  return {
    adapter: "upstash",

    async ping() {
      try {
        await redis.ping();
      } catch (e) {
        throw wrap(e);
      }
    },

    async appendWindow(tenantId, sessionId, messages, maxLength) {
      if (!messages.length) return;
      const max = count(maxLength);
      try {
        await append.exec([key(tenantId, sessionId)], [String(ttl), String(max), ...pairs(newest(messages, max))]);
      } catch (e) {
        throw wrap(e);
      }
    },

    async readWindow(tenantId, sessionId, limit) {
      const n = count(limit);
      let members: unknown[];
      try {
        // Rank 0 is the marker: for limit 0, asking for it alone still tells a hit from a miss.
        members = n === 0 ? await redis.zrange(key(tenantId, sessionId), 0, 0) : await redis.zrange(key(tenantId, sessionId), -n, -1);
      } catch (e) {
        throw wrap(e);
      }
      if (!members.length) return null;
      const window: Message[] = [];
      for (const raw of members) {
        if (raw === MARKER) continue;
        const m = decode(tenantId, sessionId, raw);
        if (!m) return null;
        window.push(m);
      }
      return window;
    },

    async replaceWindow(tenantId, sessionId, messages, maxLength) {
      try {
        await replace.exec([key(tenantId, sessionId)], [String(ttl), ...pairs(newest(messages, count(maxLength)))]);
      } catch (e) {
        throw wrap(e);
      }
    },

    async dropSession(tenantId, sessionId) {
      try {
        await redis.del(key(tenantId, sessionId));
      } catch (e) {
        throw wrap(e);
      }
    },

    // Upstash is HTTP: there is no connection to release, for a client we made or one we were given.
    async close() {},
  };
}
