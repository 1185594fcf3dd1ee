// The embedded keyword index: a BM25 corpus per user in process memory, built from the
// archive's messages table on that user's first search and kept in step by the archive's
// writes (withKeywordIndex wraps the Archive so every committed ingest and forget reaches
// it). Why not in SQL: BM25 needs each term's document frequency over the user's turns,
// which Postgres full-text does not keep; computing it per query in PGlite costs more than
// the whole search budget, while the in-memory corpus answers in well under a millisecond
// for a user's 700 turns. Whole users are evicted, least recently used first, past a
// budget of turns; an evicted user reloads (one select) on the next search. A user just
// loaded is held only once it has cost more than the users it would push out (evict.ts);
// until then it answers from the turns loaded for its search.
//
// With `shared` (the managed wiring, where many processes write one archive) every search
// first reads the user's version (one primary-key select, see migration 4): when another
// process stored messages since the version the index holds, it loads just the rows stamped
// above it; when one forgot some, or the user was forgotten and came back, it reloads the
// user whole. A caller that already read the user's version after its request began (the
// context call reads it with the session, Archive.readContext; a search with the graph's,
// Archive.readVersions, core/services/versions.ts) passes it as `asOf`: no select
// is made for the check, and none at all when the corpus held is at that version or past it.
// Without `shared` the process owns the archive and its own writes keep the index current,
// so no check is made.
//
// The select that builds a corpus reads every row of the user anyway, so the index also keeps
// each message whole (`messages()`): search hydrates its recalled turns from it instead of a
// second select of the same rows, which on PGlite queued behind every other statement of the
// request (48 ms median of a context call, bench/strata-load.ts). The text costs memory, so
// the eviction budget counts its characters as well as turns. What the index holds is as
// current as the corpus: a forget removes both, and in shared mode the version check of
// corpus() covers both.

import { Bm25Corpus } from "../../core/bm25.ts";
import { StrataError, upstream } from "../../core/errors.ts";
import type { KeywordIndex } from "../../core/keyword-index.ts";
import { eachInSlices, loadSlicer, loadStatementTurn, sliceScheduler } from "../../core/request-gate.ts";
import type { Archive } from "../../core/ports.ts";
import type { Message, UserVersion } from "../../core/types.ts";
import { MESSAGE_COLUMNS, messageJson, toMessage, toUserVersion, USER_VERSION_COLUMNS } from "../sql/archive.ts";
import type { SqlClient } from "../sql/client.ts";
import { readPages } from "../sql/pages.ts";
import { createRetention, type Budget } from "./evict.ts";
import { perKey } from "../../core/serialised.ts";

export interface LocalKeywordIndexOptions {
  sql: SqlClient;
  /** Turns kept in memory across users before whole users are evicted (default 150,000). */
  maxTurns?: number;
  /** Characters of message text kept across users before whole users are evicted (default 200 million). */
  maxChars?: number;
  /** Other processes write the same archive: check the user's version before each search. */
  shared?: boolean;
  /**
   * Runs the next slice of a loaded user's warming on a later turn of the event loop (default
   * the next one, setImmediate; none where there is no setImmediate). The embedded server's
   * scheduler runs it between requests (request-gate.ts, sliceScheduler).
   */
  scheduleSlice?: (run: () => void) => void;
  /** How long a user's load builds before it gives the event loop a turn (default LOAD_SLICE_MS, request-gate.ts; 0: after every row). */
  loadSliceMs?: number;
  /** Rows a user's load reads a select (default LOAD_PAGE_ROWS, sql/pages.ts). */
  loadPageRows?: number;
}

/** What a loaded corpus reflects of the archive: the user's row (its creation) and version. */
interface Held {
  epoch: string;
  version: number;
}

// A loaded turn costs about 1.5 KB of heap (its term counts and postings), so the default
// holds about 230 MB, the same order as the vector index's budget.
const DEFAULT_MAX_TURNS = 150_000;
// Message text is held as the rows arrive (one byte a character for ASCII text): 200 M
// characters is 55k turns of a coding session (3.6 KB each), 500k turns of chat (400 bytes).
const DEFAULT_MAX_CHARS = 200_000_000;

/** One user's turns as held: the BM25 corpus, and each message whole (for hydration). */
interface Turns {
  corpus: Bm25Corpus;
  messages: Map<string, Message>;
  /** Characters of content held. */
  chars: number;
}

const emptyTurns = (): Turns => ({ corpus: new Bm25Corpus(), messages: new Map(), chars: 0 });

// Warming a loaded user (Bm25Corpus.packSome): postings packed per event-loop turn (a few
// milliseconds), of terms held by at least this many turns; rarer ones cost a search little.
const WARM_SLICE = 200_000;
const WARM_MIN_DOCS = 32;

function addTurn(t: Turns, m: Message): void {
  const before = t.messages.get(m.id);
  if (before) t.chars -= before.content.length;
  t.corpus.add({ id: m.id, sessionId: m.sessionId, seq: m.seq, name: m.name, createdAt: Date.parse(m.createdAt) }, m.content);
  t.messages.set(m.id, m);
  t.chars += m.content.length;
}

function removeTurn(t: Turns, id: string): void {
  t.corpus.remove(id);
  const m = t.messages.get(id);
  if (!m) return;
  t.messages.delete(id);
  t.chars -= m.content.length;
}

function removeSessionTurns(t: Turns, sessionId: string): void {
  t.corpus.removeSession(sessionId);
  for (const [id, m] of t.messages) {
    if (m.sessionId !== sessionId) continue;
    t.messages.delete(id);
    t.chars -= m.content.length;
  }
}

interface Load {
  promise: Promise<Turns>;
  /** Writes that landed while the select ran, replayed on what it read. */
  writes: ((t: Turns) => void)[];
  /** Set when the user was forgotten meanwhile: what the select read is not kept. */
  cancelled: boolean;
}

type Row = Record<string, unknown>;


// A page of a user's load: `limit` messages in stored order (by stamp, an ingest's one session,
// then seq; messages_user_version), after the key given ($3, $4, $5) or from the first, as one
// JSON array of rows with their user_version (PGlite hands a result over row by row, each field
// parsed in JavaScript: one row of JSON for the page held PGlite 123 ms a 5,000-message page of
// the bench's 100k-message user, against 288 ms as rows; BENCHMARKS.md, sixty-fourth round).
const PAGE = (after: boolean, limit: number) => `
select json_agg(${messageJson(`${MESSAGE_COLUMNS}, user_version`)} order by m.user_version, m.session_id, m.seq)::text as page
  from (select ${MESSAGE_COLUMNS}, user_version from messages where tenant_id = $1 and user_id = $2${
    after ? " and user_version >= $3 and (user_version, session_id, seq) > ($3, $4, $5)" : ""
  } order by user_version, session_id, seq limit ${limit}) m`;

function addRows(t: Turns, rows: Row[]): void {
  for (const r of rows) addTurn(t, toMessage(r));
}

export function createLocalKeywordIndex(options: LocalKeywordIndexOptions): KeywordIndex {
  const { sql } = options;
  const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
  if (!(maxTurns >= 0)) throw new StrataError("config", "CONFIG_INVALID", `maxTurns must be ≥ 0, got ${maxTurns}`);
  const maxChars = options.maxChars ?? DEFAULT_MAX_CHARS;
  if (!(maxChars >= 0)) throw new StrataError("config", "CONFIG_INVALID", `maxChars must be ≥ 0, got ${maxChars}`);
  const adapter = "local-bm25";
  const later = options.scheduleSlice ?? (typeof setImmediate === "function" ? sliceScheduler(undefined) : undefined);
  // Loaded users, least recently used first (a Map keeps insertion order).
  const loaded = new Map<string, Turns>();
  const loading = new Map<string, Load>();
  const key = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;
  // Shared mode: the archive version each loaded user reflects, and one refresh per user at a time.
  const held = new WeakMap<Turns, Held>();
  /** Runs a refresh after every earlier refresh of the same user. */
  const serialised = perKey();
  // Shared mode: per user, the refresh queued behind another and not yet begun. Searches that
  // arrive meanwhile join it: its version read starts after each of them arrived, so it sees
  // every write acknowledged before any of them, with one read instead of one each.
  const waiting = new Map<string, Promise<Turns>>();

  async function query<T>(text: string, params: unknown[]): Promise<T[]> {
    try {
      return await sql.query<T>(text, params);
    } catch (e) {
      throw upstream(adapter, e);
    }
  }


  /** Whether a loaded corpus holds at least what the archive held at version `v`. */
  function covers(at: Held | undefined, v: UserVersion): boolean {
    return !!at && at.epoch === v.epoch && v.forgotVersion <= at.version && v.messagesVersion <= at.version;
  }

  /**
   * The user's corpus as of a version read now, or as of `asOf` (a version the caller read
   * after its request began): what other processes wrote is loaded first.
   */
  function sharedTurns(k: string, tenantId: string, userId: string, asOf?: UserVersion | null): Promise<Turns> {
    if (asOf !== undefined) {
      // A corpus already at or past the caller's version answers at once: whatever a refresh
      // in flight adds is newer than the caller needs.
      const have = loaded.get(k);
      if (asOf && have && covers(held.get(have), asOf)) {
        loaded.delete(k);
        loaded.set(k, have);
        return Promise.resolve(have);
      }
      return serialised(k, () => refresh(k, tenantId, userId, asOf));
    }
    const queued = waiting.get(k);
    if (queued) return queued;
    const run: Promise<Turns> = serialised(k, async () => {
      // Begun: a search arriving from now on needs a read of its own.
      if (waiting.get(k) === run) waiting.delete(k);
      const [head] = await query<Row>(`select ${USER_VERSION_COLUMNS} from users where tenant_id = $1 and id = $2`, [tenantId, userId]);
      return refresh(k, tenantId, userId, head ? toUserVersion(head) : null);
    });
    // `serialised` begins it a tick later at the earliest, so it is registered before it begins.
    waiting.set(k, run);
    return run;
  }

  /** Brings the user's corpus up to `head` (read after the request began; null: no such user). Runs serialised per user. */
  async function refresh(k: string, tenantId: string, userId: string, head: UserVersion | null): Promise<Turns> {
    if (!head) {
      loaded.delete(k);
      return emptyTurns();
    }
    const { epoch, messagesVersion: version } = head;
    const have = loaded.get(k);
    const at = have ? held.get(have) : undefined;
    if (have && at && at.epoch === epoch && head.forgotVersion <= at.version) {
      loaded.delete(k);
      loaded.set(k, have);
      if (version > at.version) {
        // Rows stamped above the held version: stamps commit in order per user, so these are
        // exactly the messages stored since. Rows of a later version may come along; they are
        // read again next time (adding a turn again replaces it).
        addRows(have, await query<Row>(`select ${MESSAGE_COLUMNS} from messages where tenant_id = $1 and user_id = $2 and user_version > $3`, [tenantId, userId, at.version]));
        held.set(have, { epoch, version });
      }
      return have;
    }
    const turns = emptyTurns();
    const rows = await query<Row>(`select ${MESSAGE_COLUMNS} from messages where tenant_id = $1 and user_id = $2`, [tenantId, userId]);
    // Built in slices (loadSlicer), with turns of the event loop for the instance's other
    // requests (this user's wait, serialised behind it): the corpus is no reader's until it is
    // registered below, at the version read before the select. A write this process makes
    // meanwhile goes to the corpus held before; its version is above this one, so the next
    // check reads it.
    await eachInSlices(rows.length, loadSlicer(options.loadSliceMs), (i) => addTurn(turns, toMessage(rows[i]!)));
    held.set(turns, { epoch, version });
    loaded.delete(k);
    loaded.set(k, turns);
    admit(k);
    warm(k, turns);
    return turns;
  }

  const budgets: Budget<Turns>[] = [
    { size: (t) => t.corpus.size, limit: maxTurns },
    { size: (t) => t.chars, limit: maxChars },
  ];
  const retention = createRetention(budgets);
  const enforceBudget = (keep: string) => retention.enforce(loaded, keep);
  /** Holds `k`, just loaded, if the budget allows (evict.ts). */
  const admit = (k: string) => retention.admit(loaded, k);

  function apply(k: string, write: (t: Turns) => void): void {
    const c = loaded.get(k);
    if (c) {
      write(c);
      // A user grown to twice the turns of their last warming is warmed again: words
      // common now were rare then.
      if (c.corpus.size >= 2 * (warmedAt.get(c) ?? Infinity)) warm(k, c);
    }
    loading.get(k)?.writes.push(write);
  }

  // Per loaded user, the turns they had when last warmed (or being warmed).
  const warmedAt = new WeakMap<Turns, number>();
  /**
   * Packs the postings of a loaded user's common words between requests, a slice per
   * event-loop turn, while the user stays loaded (Bm25Corpus.packSome): a search packs a
   * word on first need, and at 100k turns that was a tenth of a cold context call.
   */
  function warm(k: string, turns: Turns): void {
    // Node's; an edge isolate (workerd) has no setImmediate and lives for a request or a few:
    // there a search packs what it needs, as before.
    if (!later) return;
    warmedAt.set(turns, Math.max(1, turns.corpus.size));
    const step = () => {
      if (loaded.get(k) !== turns) return;
      if (!turns.corpus.packSome(WARM_SLICE, WARM_MIN_DOCS)) later(step);
    };
    later(step);
  }

  async function load(k: string, entry: Load, tenantId: string, userId: string): Promise<Turns> {
    // A page at a time (sql/pages.ts; in the order they were stored: by stamp, an ingest's one
    // session, then seq; messages_user_version), each page added in slices (loadSlicer): no
    // statement holds PGlite (and, in its thread, every request) for long. Writes landing
    // meanwhile go to entry.writes and are replayed below; a row a later page also reads
    // (stored meanwhile) is added again, which replaces it.
    const turns = emptyTurns();
    // One slicer for the whole load, so a select's time counts toward the slice it falls in.
    const slice = loadSlicer(options.loadSliceMs);
    await readPages<Row>(
      async (after, limit) => {
        await loadStatementTurn();
        const [row] = await query<{ page: string | null }>(PAGE(after !== null, limit), after ? [tenantId, userId, after.user_version, after.session_id, after.seq] : [tenantId, userId]);
        return row?.page ? (JSON.parse(row.page) as Row[]) : [];
      },
      (page) => eachInSlices(page.length, slice, (i) => addTurn(turns, toMessage(page[i]!))),
      options.loadPageRows,
    );
    if (loading.get(k) === entry) loading.delete(k);
    if (entry.cancelled) return emptyTurns();
    for (const write of entry.writes) write(turns);
    loaded.delete(k);
    loaded.set(k, turns);
    admit(k);
    warm(k, turns);
    return turns;
  }

  async function turnsOf(tenantId: string, userId: string, asOf?: UserVersion | null): Promise<Turns> {
    const k = key(tenantId, userId);
    retention.use(k);
    if (options.shared) return sharedTurns(k, tenantId, userId, asOf);
    const have = loaded.get(k);
    if (have) {
      loaded.delete(k);
      loaded.set(k, have);
      return have;
    }
    let entry = loading.get(k);
    if (!entry) {
      const fresh: Load = { writes: [], cancelled: false, promise: Promise.resolve(emptyTurns()) };
      loading.set(k, fresh);
      fresh.promise = load(k, fresh, tenantId, userId);
      fresh.promise.catch(() => loading.get(k) === fresh && loading.delete(k));
      entry = fresh;
    }
    return entry.promise;
  }

  return {
    adapter,
    checksVersion: options.shared === true,

    async corpus(tenantId, userId, asOf) {
      return (await turnsOf(tenantId, userId, asOf)).corpus;
    },

    messages(tenantId, userId, ids) {
      const out = new Map<string, Message>();
      const t = loaded.get(key(tenantId, userId));
      if (!t) return out;
      for (const id of ids) {
        const m = t.messages.get(id);
        if (m) out.set(id, m);
      }
      return out;
    },

    add(messages: Message[], version?: UserVersion) {
      const touched = new Set<string>();
      for (const m of messages) {
        const k = key(m.tenantId, m.userId);
        apply(k, (t) => addTurn(t, m));
        touched.add(k);
      }
      for (const k of touched) if (loaded.has(k)) enforceBudget(k);
      // Shared mode: this process's own commit moved the user's version by one from the one
      // held, so the corpus now holds every row up to it, and the next context call (which
      // reads that version with its session) needs no read of the rows above the old one.
      // Versions commit in order per user; any other gap (another process wrote between)
      // leaves the held version as it was, and the next call reads what it lacks.
      if (options.shared && version && touched.size === 1) {
        const have = loaded.get([...touched][0]!);
        const at = have ? held.get(have) : undefined;
        if (have && at && at.epoch === version.epoch && version.forgotVersion <= at.version && version.messagesVersion === at.version + 1) {
          held.set(have, { epoch: at.epoch, version: version.messagesVersion });
        }
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
        apply(k, (t) => {
          for (const id of messageIds) removeTurn(t, id);
          for (const s of sessionIds) removeSessionTurns(t, s);
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
      if (result.inserted.length) index.add(result.inserted, result.userVersion);
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
