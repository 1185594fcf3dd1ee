// The embedded hot tier: each session's recent window in an in-process LRU. It is a
// cache of the archive and nothing more, so it forgets whole sessions when full and
// appends only to windows it already holds: a partial window would look complete.
//
// Messages are cloned and frozen on the way in, and reads hand out fresh arrays of those
// frozen objects, so no caller can change what another caller reads.

import type { HotStore } from "../../core/ports.ts";
import type { Message } from "../../core/types.ts";

export interface MemoryHotStoreOptions {
  /** Sessions kept before the least recently used is dropped (default 10,000). */
  maxSessions?: number;
}

type Window = readonly Message[];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function frozenCopy(message: Message): Message {
  return deepFreeze(structuredClone(message));
}

/** Merges by seq (incoming wins on a tie), ascending, keeping the newest `maxLength`. */
function mergeWindow(current: Window, incoming: Message[], maxLength: number): Window {
  const bySeq = new Map<number, Message>();
  for (const m of current) bySeq.set(m.seq, m);
  for (const m of incoming) bySeq.set(m.seq, frozenCopy(m));
  const merged = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const keep = Math.max(0, Math.floor(maxLength));
  return Object.freeze(merged.slice(Math.max(0, merged.length - keep)));
}

export function createMemoryHotStore(options: MemoryHotStoreOptions = {}): HotStore {
  const maxSessions = options.maxSessions ?? 10_000;
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new RangeError(`maxSessions must be a positive integer, got ${maxSessions}`);
  }
  // A Map iterates in insertion order: re-inserting on use makes its first key the LRU.
  const windows = new Map<string, Window>();
  const key = (tenantId: string, sessionId: string) => `${tenantId}\u0000${sessionId}`;

  function touch(k: string): Window | undefined {
    const w = windows.get(k);
    if (w !== undefined) {
      windows.delete(k);
      windows.set(k, w);
    }
    return w;
  }

  function put(k: string, w: Window): void {
    windows.delete(k);
    windows.set(k, w);
    while (windows.size > maxSessions) {
      const oldest = windows.keys().next().value as string;
      windows.delete(oldest);
    }
  }

  return {
    adapter: "memory-hot",
    async ping() {},

    async appendWindow(tenantId, sessionId, messages, maxLength) {
      const k = key(tenantId, sessionId);
      const current = touch(k);
      if (current === undefined) return;
      put(k, mergeWindow(current, messages, maxLength));
    },

    async readWindow(tenantId, sessionId, limit) {
      const w = touch(key(tenantId, sessionId));
      if (w === undefined) return null;
      const n = Math.max(0, Math.floor(limit));
      return n === 0 ? [] : w.slice(Math.max(0, w.length - n));
    },

    async replaceWindow(tenantId, sessionId, messages, maxLength) {
      put(key(tenantId, sessionId), mergeWindow([], messages, maxLength));
    },

    async dropSession(tenantId, sessionId) {
      windows.delete(key(tenantId, sessionId));
    },

    async close() {
      windows.clear();
    },
  };
}
