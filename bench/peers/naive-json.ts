// The naive baseline: each session kept as one JSON file ({ userId, messages }), read and
// parsed whole on every request. An append reads, parses, pushes and writes the file back
// (per session, appends are serialised so none is lost). The context counterpart is the last
// 20 messages of the parsed file; search reads every session file of the user and ranks
// messages by how many of the query's words they contain.

import { mkdir, readFile, writeFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { BenchMessage } from "./data.ts";
import type { Peer } from "./serve-peer.ts";

const WINDOW = 20;

interface SessionFile {
  userId: string;
  messages: BenchMessage[];
}

export async function createNaiveJsonPeer(dir: string): Promise<Peer> {
  if (!dir) throw new Error("naive-json needs --dir");
  await mkdir(dir, { recursive: true });
  const file = (sessionId: string) => join(dir, `${encodeURIComponent(sessionId)}.json`);
  const userSessions = new Map<string, Set<string>>();
  const locks = new Map<string, Promise<unknown>>();
  const read = async (sessionId: string): Promise<SessionFile | null> => {
    try {
      return JSON.parse(await readFile(file(sessionId), "utf8")) as SessionFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  };
  return {
    async append(sessionId, userId, messages) {
      const prev = locks.get(sessionId) ?? Promise.resolve();
      const next = prev.then(async () => {
        const s = (await read(sessionId)) ?? { userId, messages: [] };
        s.messages.push(...messages);
        const tmp = `${file(sessionId)}.tmp`;
        await writeFile(tmp, JSON.stringify(s));
        await rename(tmp, file(sessionId));
      });
      locks.set(sessionId, next.catch(() => {}));
      await next;
      let set = userSessions.get(userId);
      if (!set) userSessions.set(userId, (set = new Set()));
      set.add(sessionId);
      return messages.length;
    },
    async context(sessionId) {
      const s = await read(sessionId);
      return { recent: s ? s.messages.slice(-WINDOW) : [] };
    },
    async search(userId, query, limit) {
      const terms = [...new Set(query.toLowerCase().split(/\W+/).filter((w) => w.length > 2))];
      const hits: { m: BenchMessage; sessionId: string; score: number }[] = [];
      for (const sessionId of userSessions.get(userId) ?? []) {
        const s = await read(sessionId);
        for (const m of s?.messages ?? []) {
          const text = m.content.toLowerCase();
          let score = 0;
          for (const t of terms) if (text.includes(t)) score++;
          if (score) hits.push({ m, sessionId, score });
        }
      }
      hits.sort((a, b) => b.score - a.score);
      return hits.slice(0, limit).map((h) => ({ ...h.m, sessionId: h.sessionId, score: h.score }));
    },
    async close() {},
  };
}
