// The floor: the bare Redis and Postgres round trips Strata's context call cannot do
// without, made with each service's own client and nothing else (no ranking, no packing,
// no tokenizer). Per context call:
//   1. Postgres: the session row by primary key (Strata reads it first: owner, last seq);
//   2. then in parallel
//      - Redis: the session's recent window, ZRANGE of a 20-member sorted set;
//      - Postgres: the latest summary of the session;
//      - Postgres: the user's 10 memories by priority;
//      - Postgres: 40 recalled messages by id (the rows a recall loads; the ids are picked
//        from the user's messages by a hash of the query, since the floor ranks nothing).
// "local" talks to redis-server with ioredis and to Postgres with pg; "managed" reads Redis
// through the Upstash REST bridge with @upstash/redis (Postgres stays on pg: the Neon
// WebSocket/HTTP stand-ins would add the proxy's own cost to the floor).
// The answer is cut to the token budget the way a client without a tokenizer would: about
// four characters a token, the recent window newest first up to 35% of it (Strata's share),
// recalled rows in the rest, so the floor ships about as many bytes as Strata's answer.
// An append is one Postgres transaction (session upsert + multi-row insert) and one
// Redis MULTI (ZADD + ZREMRANGEBYRANK to keep 20).

import { Redis as IoRedis } from "ioredis";
import { Redis as UpstashRedis } from "@upstash/redis";
import pg from "pg";
import type { BenchMessage } from "./data.ts";
import type { Peer } from "./serve-peer.ts";
import { peerEnv } from "./config.ts";

const WINDOW = 20;
const RECALLED = 40;

const env = (name: string) => peerEnv("floor", name);

interface WindowClient {
  push(key: string, entries: { score: number; member: string }[]): Promise<void>;
  read(key: string): Promise<unknown[]>;
  close(): Promise<void>;
}

function localWindow(): WindowClient {
  const redis = new IoRedis(env("BENCH_REDIS_URL"));
  return {
    async push(key, entries) {
      const args: string[] = [];
      for (const e of entries) args.push(String(e.score), e.member);
      await redis.multi().zadd(key, ...args).zremrangebyrank(key, 0, -(WINDOW + 1)).exec();
    },
    async read(key) {
      return (await redis.zrange(key, "0", "-1")).map((s) => JSON.parse(s));
    },
    async close() {
      await redis.quit();
    },
  };
}

function managedWindow(): WindowClient {
  const redis = new UpstashRedis({ url: env("UPSTASH_REDIS_REST_URL"), token: env("UPSTASH_REDIS_REST_TOKEN"), enableTelemetry: false });
  return {
    async push(key, entries) {
      const tx = redis.multi();
      const [first, ...rest] = entries;
      tx.zadd(key, first!, ...rest);
      tx.zremrangebyrank(key, 0, -(WINDOW + 1));
      await tx.exec();
    },
    async read(key) {
      return redis.zrange(key, 0, -1);
    },
    async close() {},
  };
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export async function createFloorPeer(mode: "local" | "managed"): Promise<Peer> {
  const prefix = env("BENCH_PREFIX");
  const pool = new pg.Pool({ connectionString: env("BENCH_PG_URL"), max: 10 });
  const t = (name: string) => `${prefix}_${name}`.replace(/[^a-z0-9_]/gi, "_");
  await pool.query(`
    create table if not exists ${t("sessions")} (id text primary key, user_id text not null, last_seq int not null);
    create table if not exists ${t("messages")} (id text primary key, session_id text not null, user_id text not null, seq int not null,
      role text not null, name text, content text not null, created_at timestamptz not null);
    create table if not exists ${t("summaries")} (session_id text not null, up_to_seq int not null, content text not null, primary key (session_id, up_to_seq));
    create table if not exists ${t("memories")} (id text primary key, user_id text not null, priority int not null, content text not null);
    create index if not exists ${t("memories_user")} on ${t("memories")} (user_id, priority desc);`);
  const win = mode === "local" ? localWindow() : managedWindow();
  const userIds = new Map<string, string[]>();
  return {
    async append(sessionId, userId, messages) {
      const client = await pool.connect();
      let last: number;
      try {
        await client.query("begin");
        const r = await client.query(
          `insert into ${t("sessions")} (id, user_id, last_seq) values ($1, $2, $3)
           on conflict (id) do update set last_seq = ${t("sessions")}.last_seq + excluded.last_seq returning last_seq`,
          [sessionId, userId, messages.length],
        );
        last = r.rows[0].last_seq as number;
        const first = last - messages.length + 1;
        const cols = ["id", "session_id", "user_id", "seq", "role", "name", "content", "created_at"];
        const params: unknown[] = [];
        const rows = messages.map((m, i) => {
          params.push(m.id, sessionId, userId, first + i, m.role, m.name ?? null, m.content, m.createdAt);
          return `(${cols.map((_, j) => `$${i * cols.length + j + 1}`).join(",")})`;
        });
        await client.query(`insert into ${t("messages")} (${cols.join(",")}) values ${rows.join(",")} on conflict (id) do nothing`, params);
        await client.query("commit");
      } catch (e) {
        await client.query("rollback");
        throw e;
      } finally {
        client.release();
      }
      const first = last - messages.length + 1;
      await win.push(`${prefix}:win:${sessionId}`, messages.slice(-WINDOW).map((m, i, a) => ({ score: first + messages.length - a.length + i, member: JSON.stringify({ ...m, sessionId }) })));
      let ids = userIds.get(userId);
      if (!ids) userIds.set(userId, (ids = []));
      for (const m of messages) ids.push(m.id);
      return messages.length;
    },
    async context(sessionId, userId, query, budget) {
      const s = await pool.query(`select id, user_id, last_seq from ${t("sessions")} where id = $1`, [sessionId]);
      const owner = (s.rows[0]?.user_id as string | undefined) ?? userId;
      const ids = userIds.get(owner) ?? [];
      const h = hash(query);
      const recalledIds = ids.length ? Array.from({ length: Math.min(RECALLED, ids.length) }, (_, i) => ids[(h + i * 7919) % ids.length]!) : [];
      const [recent, summary, memories, recalled] = await Promise.all([
        win.read(`${prefix}:win:${sessionId}`),
        pool.query(`select content, up_to_seq from ${t("summaries")} where session_id = $1 order by up_to_seq desc limit 1`, [sessionId]),
        pool.query(`select id, content, priority from ${t("memories")} where user_id = $1 order by priority desc limit 10`, [owner]),
        pool.query(`select id, session_id, seq, role, name, content, created_at from ${t("messages")} where id = any($1)`, [recalledIds]),
      ]);
      let room = budget * 4;
      const recentRoom = room * 0.35;
      const kept: unknown[] = [];
      let used = 0;
      for (const m of [...(recent as { content: string }[])].reverse()) {
        if (used + m.content.length > recentRoom) break;
        kept.unshift(m);
        used += m.content.length;
      }
      room -= used;
      const recalledKept = (recalled.rows as { content: string }[]).filter((m) => {
        if (m.content.length > room) return false;
        room -= m.content.length;
        return true;
      });
      return { recent: kept, summary: summary.rows[0] ?? null, memories: memories.rows, recalled: recalledKept };
    },
    async close() {
      await win.close();
      await pool.end();
    },
  };
}
