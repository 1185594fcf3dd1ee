// LangChain.js chat message histories from @langchain/community, used as their docs show:
// one history object per session, addMessages() on ingest, getMessages() for the recent
// window. Neither history can read only the tail: getMessages() returns the whole session
// (Upstash: LRANGE 0 -1; Postgres: SELECT ... ORDER BY id) and the window is its last 20.
// "upstash" points @upstash/redis at the Upstash REST bridge in front of redis-server;
// "pg" uses a pg Pool on the machine's Postgres. Neither has search: /v1/search answers 501.

import { UpstashRedisChatMessageHistory } from "@langchain/community/stores/message/upstash_redis";
import { PostgresChatMessageHistory } from "@langchain/community/stores/message/postgres";
import type { BaseListChatMessageHistory } from "@langchain/core/chat_history";
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { Redis } from "@upstash/redis";
import pg from "pg";
import type { BenchMessage } from "./data.ts";
import type { Peer } from "./serve-peer.ts";
import { peerEnv } from "./config.ts";

const WINDOW = 20;

const env = (name: string) => peerEnv("langchain", name);

function toLangchain(m: BenchMessage): BaseMessage {
  const fields = { content: m.content, id: m.id, additional_kwargs: { createdAt: m.createdAt } };
  if (m.role === "user") return new HumanMessage({ ...fields, ...(m.name ? { name: m.name } : {}) });
  if (m.role === "tool") return new ToolMessage({ ...fields, tool_call_id: `${m.id}-call`, name: m.name ?? "tool" });
  return new AIMessage(fields);
}

export async function createLangchainPeer(kind: "upstash" | "pg"): Promise<Peer> {
  const prefix = env("BENCH_PREFIX");
  const histories = new Map<string, BaseListChatMessageHistory>();
  let pool: pg.Pool | null = null;
  let client: Redis | null = null;
  if (kind === "pg") pool = new pg.Pool({ connectionString: env("BENCH_PG_URL"), max: 10 });
  else client = new Redis({ url: env("UPSTASH_REDIS_REST_URL"), token: env("UPSTASH_REDIS_REST_TOKEN"), enableTelemetry: false });
  const history = (sessionId: string): BaseListChatMessageHistory => {
    let h = histories.get(sessionId);
    if (!h) {
      h =
        kind === "pg"
          ? new PostgresChatMessageHistory({ pool: pool!, sessionId, tableName: `${prefix}_lc_messages`.replace(/[^a-z0-9_]/gi, "_") })
          : new UpstashRedisChatMessageHistory({ client: client!, sessionId: `${prefix}:lc:${sessionId}` });
      histories.set(sessionId, h);
    }
    return h;
  };
  return {
    async append(sessionId, _userId, messages) {
      await history(sessionId).addMessages(messages.map(toLangchain));
      return messages.length;
    },
    async context(sessionId) {
      const all = await history(sessionId).getMessages();
      return { recent: all.slice(-WINDOW).map((m) => ({ id: m.id, role: m.type, content: m.content })) };
    },
    async close() {
      await pool?.end();
    },
  };
}
