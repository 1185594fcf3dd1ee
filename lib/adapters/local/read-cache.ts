// The embedded archive's two context reads that change least, from memory: a session's latest
// summary and a user's memories. A context call reads both; on PGlite each is a statement on
// its one thread (1.5–3 ms in the context call, queued behind the others), while they change
// only when a summary or memory is written or something is forgotten.
//
// Only for an archive one process owns (PGlite): every write then passes through this wrapper.
// Any write that can change a summary or a memory (saveSummary, deleteSummaries, saveMemories,
// deleteMemoriesFrom, sweepExpired, forget) drops everything cached, before and after it runs;
// a read that overlapped a write keeps its answer to itself. A cached memory list also lapses
// when the first of its memories expires, so an expired memory is never handed out.
//
// The session row (owner, last seq), which every context call reads first, is cached the same
// way: an ingest (the only write that creates a session or moves its last seq) drops every
// cached session before and after it runs, and so does every write that drops the rest (a
// forget deletes sessions). The ingest then keeps the session as it left it (its answer says),
// when no other ingest or write is running that could have moved it since: the context call a
// chat makes right after posting a turn then finds its session here, rather than reading it on
// PGlite's one thread behind that turn's derived work.

import type { Archive } from "../../core/ports.ts";
import type { Memory, Session, Summary } from "../../core/types.ts";

/** Entries kept per cache before the oldest are dropped (they are small: one row or ten). */
const MAX_ENTRIES = 10_000;

/** A session's key in the session and summary caches. */
const sessionKey = (tenantId: string, sessionId: string) => `${tenantId}\u0000${sessionId}`;

interface CachedMemories {
  memories: Memory[];
  /** Epoch ms when the first of them expires (Infinity: none does). */
  lapses: number;
}

export function withReadCache(archive: Archive, options: { maxEntries?: number } = {}): Archive {
  const maxEntries = options.maxEntries ?? MAX_ENTRIES;
  const summaries = new Map<string, Summary | null>();
  const memories = new Map<string, CachedMemories>();
  const sessions = new Map<string, Session | null>();
  // Bumped by every write before and after it runs; a read stores its answer only when no
  // write began or ended while it ran and none is running.
  let generation = 0;
  let writing = 0;
  // The same for sessions, which ingests change too.
  let sessionGeneration = 0;
  let ingesting = 0;
  const dropSessions = () => {
    sessionGeneration++;
    sessions.clear();
  };

  const put = <V>(map: Map<string, V>, key: string, value: V) => {
    map.delete(key);
    map.set(key, value);
    if (map.size > maxEntries) map.delete(map.keys().next().value!);
  };
  const drop = () => {
    generation++;
    summaries.clear();
    memories.clear();
    dropSessions();
  };

  function write<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return async (...args: A) => {
      writing++;
      drop();
      try {
        return await fn(...args);
      } finally {
        writing--;
        drop();
      }
    };
  }

  return Object.assign(Object.create(archive) as Archive, {
    // The one-statement read of the context call would bypass the caches below: without it
    // the context call reads the session, the summary and the memories from here.
    readContext: undefined,
    async getSession(tenantId: string, sessionId: string) {
      const key = sessionKey(tenantId, sessionId);
      if (sessions.has(key)) {
        const hit = sessions.get(key)!;
        return hit && { ...hit };
      }
      const at = sessionGeneration;
      const session = await archive.getSession(tenantId, sessionId);
      if (at === sessionGeneration && ingesting === 0 && writing === 0) put(sessions, key, session && { ...session });
      return session;
    },

    async ingest(...args: Parameters<Archive["ingest"]>) {
      ingesting++;
      dropSessions();
      let after: Session | null = null;
      try {
        const result = await archive.ingest(...args);
        after = result.session;
        return result;
      } finally {
        ingesting--;
        dropSessions();
        if (after && ingesting === 0 && writing === 0) put(sessions, sessionKey(after.tenantId, after.id), { ...after });
      }
    },

    async latestSummary(tenantId: string, sessionId: string) {
      const key = sessionKey(tenantId, sessionId);
      if (summaries.has(key)) return summaries.get(key)!;
      const at = generation;
      const summary = await archive.latestSummary(tenantId, sessionId);
      if (at === generation && writing === 0) put(summaries, key, summary);
      return summary;
    },

    async listMemories(tenantId: string, userId: string, query: Parameters<Archive["listMemories"]>[2]) {
      const key = `${tenantId}\u0000${userId}\u0000${query.limit}\u0000${query.kinds?.join(",") ?? ""}`;
      const hit = memories.get(key);
      if (hit && hit.lapses > Date.now()) return [...hit.memories];
      const at = generation;
      const list = await archive.listMemories(tenantId, userId, query);
      if (at === generation && writing === 0) {
        const lapses = Math.min(Infinity, ...list.map((m) => (m.expiresAt ? Date.parse(m.expiresAt) : Infinity)));
        put(memories, key, { memories: list, lapses });
      }
      return [...list];
    },

    saveSummary: write(archive.saveSummary.bind(archive)),
    deleteSummaries: write(archive.deleteSummaries.bind(archive)),
    saveMemories: write(archive.saveMemories.bind(archive)),
    deleteMemoriesFrom: write(archive.deleteMemoriesFrom.bind(archive)),
    sweepExpired: write(archive.sweepExpired.bind(archive)),
    forget: write(archive.forget.bind(archive)),
  });
}
