// The embedded keyword index: a BM25 corpus per user in process memory, built from the
// archive's messages table on that user's first search and kept in step by the archive's
// writes (withKeywordIndex wraps the Archive so every committed ingest and forget reaches
// it). Why not in SQL: BM25 needs each term's document frequency over the user's turns,
// which Postgres full-text does not keep; computing it per query in PGlite costs more than
// the whole search budget, while the in-memory corpus answers in well under a millisecond
// for a user's 700 turns. Whole users are evicted, least recently used first, past a
// budget of turns; an evicted user reloads (one select) on the next search.
//
// With `shared` (the managed wiring, where many processes write one archive) every search
// first reads the user's version (one primary-key select, see migration 4): when another
// process stored messages since the version the index holds, it loads just the rows stamped
// above it; when one forgot some, or the user was forgotten and came back, it reloads the
// user whole. Without `shared` the process owns the archive and its own writes keep the
// index current, so no check is made.

import { Bm25Corpus } from "../../core/bm25.ts";
import { StrataError, upstream } from "../../core/errors.ts";
import type { KeywordIndex } from "../../core/keyword-index.ts";
import type { Archive } from "../../core/ports.ts";
import type { Message } from "../../core/types.ts";
import type { SqlClient } from "../sql/client.ts";

export interface LocalKeywordIndexOptions {
  sql: SqlClient;
  /** Turns kept in memory across users before whole users are evicted (default 150,000). */
  maxTurns?: number;
  /** Other processes write the same archive: check the user's version before each search. */
  shared?: boolean;
}

/** What a loaded corpus reflects of the archive: the user's row (its creation) and version. */
interface Held {
  epoch: string;
  version: number;
}

type Head = { messages_version: unknown; forgot_version: unknown; created_at: unknown };

// A loaded turn costs about 1.5 KB of heap (its term counts and postings), so the default
// holds about 230 MB, the same order as the vector index's budget.
const DEFAULT_MAX_TURNS = 150_000;

interface Load {
  promise: Promise<Bm25Corpus>;
  /** Writes that landed while the select ran, replayed on what it read. */
  writes: ((c: Bm25Corpus) => void)[];
  /** Set when the user was forgotten meanwhile: what the select read is not kept. */
  cancelled: boolean;
}

type Row = { id: string; session_id: string; seq: number; name: string | null; content: string; created_at: unknown };

const millis = (v: unknown): number => (v instanceof Date ? v.getTime() : new Date(String(v)).getTime());
const ROW_COLUMNS = "id, session_id, seq, name, content, created_at";

function addRows(corpus: Bm25Corpus, rows: Row[]): void {
  for (const r of rows) {
    corpus.add({ id: String(r.id), sessionId: String(r.session_id), seq: Number(r.seq), name: r.name == null ? null : String(r.name), createdAt: millis(r.created_at) }, String(r.content));
  }
}

export function createLocalKeywordIndex(options: LocalKeywordIndexOptions): KeywordIndex {
  const { sql } = options;
  const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
  if (!(maxTurns >= 0)) throw new StrataError("config", "CONFIG_INVALID", `maxTurns must be ≥ 0, got ${maxTurns}`);
  const adapter = "local-bm25";
  // Loaded users, least recently used first (a Map keeps insertion order).
  const loaded = new Map<string, Bm25Corpus>();
  const loading = new Map<string, Load>();
  const key = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;
  // Shared mode: the archive version each loaded corpus reflects, and one refresh per user at a time.
  const held = new WeakMap<Bm25Corpus, Held>();
  const queues = new Map<string, Promise<unknown>>();
  // Shared mode: per user, the refresh queued behind another and not yet begun. Searches that
  // arrive meanwhile join it: its version read starts after each of them arrived, so it sees
  // every write acknowledged before any of them, with one read instead of one each.
  const waiting = new Map<string, Promise<Bm25Corpus>>();

  async function query<T>(text: string, params: unknown[]): Promise<T[]> {
    try {
      return await sql.query<T>(text, params);
    } catch (e) {
      throw upstream(adapter, e);
    }
  }

  /** Runs `fn` after every earlier refresh of the same user. */
  function serialised<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const before = queues.get(k) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(k, tail);
    void tail.then(() => queues.get(k) === tail && queues.delete(k));
    return run;
  }

  /** The user's corpus as of a version read now: what other processes wrote is loaded first. */
  function sharedCorpus(k: string, tenantId: string, userId: string): Promise<Bm25Corpus> {
    const queued = waiting.get(k);
    if (queued) return queued;
    const run: Promise<Bm25Corpus> = serialised(k, async () => {
      // Begun: a search arriving from now on needs a read of its own.
      if (waiting.get(k) === run) waiting.delete(k);
      const [head] = await query<Head>("select messages_version, forgot_version, created_at from users where tenant_id = $1 and id = $2", [tenantId, userId]);
      if (!head) {
        loaded.delete(k);
        return new Bm25Corpus();
      }
      const epoch = String(millis(head.created_at));
      const version = Number(head.messages_version);
      const have = loaded.get(k);
      const at = have ? held.get(have) : undefined;
      if (have && at && at.epoch === epoch && Number(head.forgot_version) <= at.version) {
        loaded.delete(k);
        loaded.set(k, have);
        if (version > at.version) {
          // Rows stamped above the held version: stamps commit in order per user, so these are
          // exactly the messages stored since. Rows of a later version may come along; they are
          // read again next time (adding a turn again replaces it).
          addRows(have, await query<Row>(`select ${ROW_COLUMNS} from messages where tenant_id = $1 and user_id = $2 and user_version > $3`, [tenantId, userId, at.version]));
          held.set(have, { epoch, version });
        }
        return have;
      }
      const corpus = new Bm25Corpus();
      addRows(corpus, await query<Row>(`select ${ROW_COLUMNS} from messages where tenant_id = $1 and user_id = $2`, [tenantId, userId]));
      held.set(corpus, { epoch, version });
      loaded.delete(k);
      loaded.set(k, corpus);
      enforceBudget(k);
      return corpus;
    });
    // `serialised` begins it a tick later at the earliest, so it is registered before it begins.
    waiting.set(k, run);
    return run;
  }

  function enforceBudget(keep: string): void {
    let total = 0;
    for (const c of loaded.values()) total += c.size;
    for (const [k, c] of loaded) {
      if (total <= maxTurns) break;
      if (k === keep) continue;
      loaded.delete(k);
      total -= c.size;
    }
  }

  function apply(k: string, write: (c: Bm25Corpus) => void): void {
    const c = loaded.get(k);
    if (c) write(c);
    loading.get(k)?.writes.push(write);
  }

  async function load(k: string, entry: Load, tenantId: string, userId: string): Promise<Bm25Corpus> {
    const rows = await query<Row>(`select ${ROW_COLUMNS} from messages where tenant_id = $1 and user_id = $2`, [tenantId, userId]);
    const corpus = new Bm25Corpus();
    addRows(corpus, rows);
    if (loading.get(k) === entry) loading.delete(k);
    if (entry.cancelled) return new Bm25Corpus();
    for (const write of entry.writes) write(corpus);
    loaded.delete(k);
    loaded.set(k, corpus);
    enforceBudget(k);
    return corpus;
  }

  return {
    adapter,

    async corpus(tenantId, userId) {
      const k = key(tenantId, userId);
      if (options.shared) return sharedCorpus(k, tenantId, userId);
      const have = loaded.get(k);
      if (have) {
        loaded.delete(k);
        loaded.set(k, have);
        return have;
      }
      let entry = loading.get(k);
      if (!entry) {
        const fresh: Load = { writes: [], cancelled: false, promise: Promise.resolve(new Bm25Corpus()) };
        loading.set(k, fresh);
        fresh.promise = load(k, fresh, tenantId, userId);
        fresh.promise.catch(() => loading.get(k) === fresh && loading.delete(k));
        entry = fresh;
      }
      return entry.promise;
    },

    add(messages: Message[]) {
      for (const m of messages) {
        apply(key(m.tenantId, m.userId), (c) =>
          c.add({ id: m.id, sessionId: m.sessionId, seq: m.seq, name: m.name, createdAt: Date.parse(m.createdAt) }, m.content),
        );
      }
    },

    remove({ tenantId, userId, messageIds = [], sessionIds = [], wholeUser = false }) {
      const prefix = `${tenantId}\u0000`;
      const keys = userId ? [key(tenantId, userId)] : [...new Set([...loaded.keys(), ...loading.keys()])].filter((k) => k.startsWith(prefix));
      for (const k of keys) {
        if (wholeUser) {
          loaded.delete(k);
          // A load in flight may have read the rows before the delete: it must not register.
          const l = loading.get(k);
          if (l) l.cancelled = true;
          continue;
        }
        apply(k, (c) => {
          for (const id of messageIds) c.remove(id);
          for (const s of sessionIds) c.removeSession(s);
        });
      }
    },

    async close() {
      loaded.clear();
    },
  };
}

/**
 * The archive with the keyword index kept in step: messages a committed ingest inserted are
 * added, and a committed forget removes what it removed. Everything else passes through.
 */
export function withKeywordIndex(archive: Archive, index: KeywordIndex): Archive {
  return Object.assign(Object.create(archive) as Archive, {
    async ingest(request: Parameters<Archive["ingest"]>[0]) {
      const result = await archive.ingest(request);
      if (result.inserted.length) index.add(result.inserted);
      return result;
    },
    async forget(input: Parameters<Archive["forget"]>[0]) {
      const out = await archive.forget(input);
      const p = out.job.payload as { scope: string; messageIds: string[]; sessionIds: string[]; userId: string | null };
      if (input.scope === "user") index.remove({ tenantId: input.tenantId, userId: input.id, wholeUser: true });
      else index.remove({ tenantId: input.tenantId, userId: p.userId, messageIds: p.messageIds, sessionIds: input.scope === "session" ? p.sessionIds : [] });
      return out;
    },
  });
}
