// The embedded graph's read index: each user's entities, mentions and relations in process
// memory, loaded from the graph tables (lib/adapters/sql/graph-store.ts) on the user's first
// read and then kept in step by this process's own writes, which withGraphIndex() sends to
// the SQL store first and then applies here. Why: on PGlite every graph statement queues on
// its one thread, and a context call's `facts` and `messagesMentioning` (the last user turn
// as the query: hundreds of terms, most of the user's entities matched) took 20–90 ms there;
// here they are a few map lookups and a sort.
//
// Without `shared`, only for an archive one process owns (PGlite): other processes' writes
// never reach this memory. Answers are the SQL store's, row for row, order and tie-breaks included:
//  - text order is the archive's collation, C (code point order), not JavaScript's `<`;
//  - a message's score sums the same weights as the SQL, each a multiple of 2^-40 so that the
//    sum is exact in any order; the weights are computed by the archive (`ln` in PGlite's libm
//    and V8's Math.log differ in the last bit for about 1% of integers), a table of them read
//    once and extended when a larger mention count appears;
//  - a replayed write is idempotent, as the SQL is: a mention or evidence row already present
//    counts once, one absent is not removed twice. A load reads the tables a page at a time
//    (read()), takes each count to be the number of rows it read, and applies every write
//    that lands while it reads again to what it read, whether a page saw the write or not.
// Whole users are evicted, least recently used first, past a budget of rows; a user just loaded
// is held only once it has cost more than the users it would push out (evict.ts).
//
// With `shared` (the managed wiring: API and worker Lambdas write one archive) other
// processes' writes never pass through here, so every read first reads the user's graph
// version (one primary-key select of graph_versions, migration 6; reads arriving while a check
// is queued share it), unless the caller passes one it read after its request began (`asOf`:
// the context call reads it with the session, Archive.readContext, and a search with the
// user's version, Archive.readVersions), which then stands for it:
// no select is made when the graph held is at that version or past it; behind it, the caller
// may also pass what merges added since the version held (the context call asks for them in
// the same statement, catchUpFrom), which are applied without a select. Unchanged: the answer
// comes from memory. Moved by a few merges, with no
// delete since the version held: one statement reads, in one snapshot, the version again and
// the mention and evidence rows stamped above the held version, each with its entity's or
// relation's current row, and applies them (merges only ever add such rows and raise those
// counts, so that is exactly what changed). A user not held, a delete since (reset_version
// above the version held), a version gone backwards or more than `maxCatchUp` merges since:
// the user is loaded whole, version included, in one statement, in the background, and reads
// are answered by the SQL store until it is in (the same answers: a 10k-message user is
// ~100k rows, seconds through the Neon driver, longer than a context call's tier limit).
// This process's own writes are not applied here: the next read's check finds them.

import { StrataError, upstream } from "../../core/errors.ts";
import type { GraphMerge, GraphStore } from "../../core/ports.ts";
import type { Fact, GraphVersion, SessionScoredId } from "../../core/types.ts";
import type { SqlClient } from "../sql/client.ts";
import { graphDeltaOf, graphDeltaRows, MENTION_WEIGHT, nameWords, normaliseName, resolveEntities, resolveRelations } from "../sql/graph-store.ts";
import { createRetention } from "./evict.ts";
import { perKey } from "../../core/serialised.ts";
import { eachInSlices, loadSlicer, loadStatementTurn } from "../../core/request-gate.ts";
import { descending, kthLargest } from "../../core/order.ts";

export interface GraphIndexOptions {
  /** The archive the graph tables live in (read on a user's first read). */
  sql: SqlClient;
  /** Mention and evidence rows kept in memory across users before whole users are evicted (default 1,600,000). */
  maxRows?: number;
  /** How long a user's load builds before it gives the event loop a turn (default LOAD_SLICE_MS, request-gate.ts; 0: after every row). */
  loadSliceMs?: number;
  /** Mention or evidence rows a user's load reads a select (default 10,000), and entities five times as many. */
  loadPageRows?: number;
  /**
   * How a load past one slice of entities reads them (tests): "blocks", ranges of the table's
   * blocks; "hash", slices by a hash of the id; "auto" (default), blocks when the user holds
   * enough of the table.
   */
  loadEntitiesBy?: "auto" | "blocks" | "hash";
  /** Other processes write the same graph tables: check the user's graph version before each read. */
  shared?: boolean;
  /**
   * Shared mode: the most merges since the version held that a read catches up on before it
   * answers (default 16); further behind, the user is loaded whole in the background instead.
   */
  maxCatchUp?: number;
}

/** The graph store with its read index; `loads()` resolves once no whole load runs in the background (tests). */
export type IndexedGraphStore = GraphStore & { loads(): Promise<void> };

// A row costs roughly 270 bytes here with its share of the entities, relations and maps (the
// 100k-message benchmark user: 1.08M rows in 289 MB, about 10.7 rows a message). The default
// holds about as many messages as the keyword index's 150,000 turns (keyword-index.ts), some
// 430 MB. At 1M rows a 100k-message user was past the budget alone: in shared mode each load
// of another user evicted it, and each of its next calls was answered by the SQL store while
// it loaded whole again, so serving it beside any other user thrashed (675 ms a call at the
// median, BENCHMARKS.md, fifty-ninth round). Past this budget, a user just loaded is held only
// once it has cost more than the users it would push out (evict.ts): of two users used in turn
// the larger is held, and the other's calls are answered by the SQL store without a load (shared
// mode) or from a load of their own (embedded).
const DEFAULT_MAX_ROWS = 1_600_000;
// How many evidence message ids a fact carries (as FACT_EVIDENCE in the SQL store).
const FACT_EVIDENCE = 3;
// Shared mode: merges a read catches up on before answering (a merge is one extract run, at
// most 100 messages); further behind, a whole load in the background.
const DEFAULT_MAX_CATCH_UP = 16;
// Weights read with the first load: mention counts up to this need no further statement.
const WEIGHTS_PREFETCH = 4096;
// Mention or evidence rows a page of a user's load reads (read(), VERSION_PAGE), and entities
// a slice of its names (ENTITY_SLICE) per this many pages of rows.
const GRAPH_PAGE_ROWS = 10_000;
const ENTITY_SLICE_PAGES = 5;

/** Compares as the archive's C collation does: by code point (UTF-16 `<` puts U+E000..U+FFFF after astral characters). */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

interface Entity {
  id: string;
  /** The normalised name, read back out of the id as the SQL does. */
  norm: string;
  name: string;
  words: string[];
  /** The word of its name it is found by (see UserGraph.byKeyWord); null for a name without words. */
  keyWord: string | null;
  /** The two words it is found by (UserGraph.byKeyPair); null for a name of fewer than two distinct words. */
  keyPair: string | null;
  mentions: number;
  /** The ids of the messages its mention rows name (Members: most entities have one). */
  messages: Members<string> | undefined;
  /**
   * The ordinals (UserGraph.ordinals) of `messages`, in no order: null until a read needs
   * them, then appended as mentions are added, null again after one is deleted. Most entities
   * are never read; an empty array for each, grown by its first mention, took 150 bytes.
   */
  ords: number[] | null;
}

interface Relation {
  key: string;
  from: string;
  type: string;
  to: string;
  weight: number;
  /** The ids of the messages its evidence rows name (Members: most relations have one). */
  evidence: Members<string> | undefined;
  /**
   * The FACT_EVIDENCE greatest evidence ids (code point order, greatest first): null until
   * describe() finds them, then kept as evidence is added, null again once one of them is
   * deleted. A strong relation has tens of thousands of evidence rows in a long-lived
   * user's graph: sorting them all for every fact cost most of a context call.
   */
  latest: string[] | null;
}

/**
 * The members a key of one of UserGraph's indexes (or an entity's messages, a relation's
 * evidence) holds: the one member itself, as most keys of a long-lived user's graph hold one (a
 * normalised name, a pair of words, an entity's relations), an array of a few, or a Set of more.
 * The 100k-message benchmark user has 284k entities and 382k relations; a Set for every key of
 * every index took 91 MB of its 771 MB graph.
 *
 * Strings are held once: an entity's words, a relation's ends and type, and a row's message
 * id are the strings UserGraph already holds for them (`words`, the entity's id, `types`, the
 * ordinal's id), not each row's own copy as read. With those copies, a Set per entity and
 * relation, and an empty array for each one's ordinals and latest evidence, the 100k user's
 * graph held 653 MB of a heap of 1.1 GB; as here, 289 MB (bench/index-heap.ts).
 */
type Members<T> = T | readonly T[] | Set<T>;
const NO_MEMBERS: readonly never[] = [];
/**
 * The most members an array holds (Members): past it, a Set. A Set of a few members took about
 * 330 bytes (its object and its table), an array of them 48 + 8 per member; the 100k-message
 * user's graph had 370k such Sets, most in messageEntities, messageRelations and ends.
 */
const ARRAY_MEMBERS = 7; // below PACK_MEMBERS: a pair key matched() packs is a Set

/** `held` with `v` added: an array from the second member on (a new one: arrays in Members are never changed), a Set past ARRAY_MEMBERS. */
function joined<T>(held: Members<T> | undefined, v: T): Members<T> {
  if (held === undefined) return v;
  if (held instanceof Set) return held.add(v);
  if (Array.isArray(held)) {
    const list = held as readonly T[];
    if (list.includes(v)) return list;
    if (list.length >= ARRAY_MEMBERS) return new Set(list).add(v);
    // Sized exactly: a spread or a push leaves room for 16 more.
    const next = new Array<T>(list.length + 1);
    for (let i = 0; i < list.length; i++) next[i] = list[i]!;
    next[list.length] = v;
    return next;
  }
  return held === v ? held : [held as T, v];
}

/** `held` without `v`: the last member itself once one is left, undefined once none is. */
function without<T>(held: Members<T> | undefined, v: T): Members<T> | undefined {
  if (held instanceof Set) {
    held.delete(v);
    return held.size === 1 ? (held.values().next().value as T) : held;
  }
  if (Array.isArray(held)) {
    const list = held as readonly T[];
    if (!list.includes(v)) return list;
    if (list.length === 2) return list[0] === v ? list[1]! : list[0]!;
    const rest = new Array<T>(list.length - 1);
    let n = 0;
    for (const m of list) if (m !== v) rest[n++] = m;
    return rest;
  }
  return held === v ? undefined : held;
}

function holds<T>(held: Members<T> | undefined, v: T): boolean {
  if (held instanceof Set) return held.has(v);
  if (Array.isArray(held)) return (held as readonly T[]).includes(v);
  return held !== undefined && held === v;
}

function countOf<T>(held: Members<T> | undefined): number {
  if (held === undefined) return 0;
  if (held instanceof Set) return held.size;
  return Array.isArray(held) ? (held as readonly T[]).length : 1;
}

/** The members, in the order they were added. */
function membersOf<T>(held: Members<T> | undefined): Iterable<T> {
  if (held === undefined) return NO_MEMBERS;
  if (held instanceof Set || Array.isArray(held)) return held as Iterable<T>;
  return [held as T];
}

/** Entities with their names' words as numbers (UserGraph.wordIds): entity k's are words[starts[k] … starts[k + 1] − 1]. */
interface PackedEntities {
  entities: Entity[];
  starts: Int32Array;
  words: Int32Array;
}

// Keys kept are joined, not concatenated: a concatenation is a tree of string pieces, flattened
// into a copy when it is first hashed, and a key kept (a relation's, an entity's pair) then held
// both. A key only looked up is concatenated (matched()'s pairs: 14% faster).
const relKey = (from: string, type: string, to: string) => [from, type, to].join("\u0000");
/** Two words as one key, whichever comes first. */
const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);
/** pairKey's key, joined (to keep). */
const keptPairKey = (a: string, b: string) => (a < b ? [a, b] : [b, a]).join("\u0000");
/** A pair key of fewer entities than this is checked entity by entity, without packing (UserGraph.packedPairs). */
const PACK_MEMBERS = 8;
/** Up to this many terms, matched() looks entities up by pairs of them (n(n − 1)/2 lookups); past it, by each term. */
const PAIR_TERMS = 64;
const normOf = (id: string) => id.slice(id.indexOf(":") + 1);

function byStrength(a: Relation, b: Relation): number {
  return descending(a.weight, b.weight) || compareText(a.from, b.from) || compareText(a.type, b.type) || compareText(a.to, b.to);
}

/**
 * Adds `r` to `best`, the `limit` strongest so far in byStrength order, if it is among them, and
 * says whether it was. A relation weaker than the last kept is turned away on its weight alone,
 * which is what most of a pass over a long-lived user's relations does.
 */
function keepStrongest(best: Relation[], r: Relation, limit: number): boolean {
  if (best.length === limit) {
    const last = best[limit - 1]!;
    if (r.weight < last.weight || byStrength(r, last) >= 0) return false;
  }
  let i = best.length;
  while (i > 0 && byStrength(r, best[i - 1]!) < 0) i--;
  best.splice(i, 0, r);
  if (best.length > limit) best.pop();
  return true;
}

/** Takes `r` out of `best` (keepStrongest's list) and, when `keep`, puts it where it now ranks: it was added or gained weight. */
function placeAgain(best: Relation[], r: Relation, limit: number, keep: boolean): void {
  const at = best.indexOf(r);
  if (at >= 0) best.splice(at, 1);
  if (keep) keepStrongest(best, r, limit);
}

/** One user's graph. Every mutation mirrors a statement of the SQL store. */
class UserGraph {
  readonly entities = new Map<string, Entity>();
  /**
   * Entities by one word of their name, and by their normalised name: the only ones a term can
   * match. A name's words must all be among the terms for it to match, so one word of it finds
   * it: the word fewest entities held when it was added. Indexed by every word, a term such as
   * "src" or "app" (in every stack frame entity of a long-lived coding user, tens of thousands)
   * had each of those entities' words checked on every read.
   */
  private readonly byKeyWord = new Map<string, Members<Entity>>();
  /**
   * Entities of two or more distinct words by the two of them fewest entities held when it was
   * added (pairKey), and those of one word by it: both must be among the terms, so a query of
   * n terms looks up its n(n − 1)/2 pairs and n words (matched()). In a long-lived user's
   * graph one word keys thousands of entities (the 100k-message benchmark user: 45k entities
   * over a vocabulary of a few hundred words), and checking each on every read cost more than
   * the rest of the graph tier; a pair keys a few.
   */
  private readonly byKeyPair = new Map<string, Members<Entity>>();
  /**
   * The entities of a pair key of PACK_MEMBERS or more (byKeyPair) with their words as numbers
   * (wordIds), one after another: matched() checks a pair's entities against the terms in
   * these arrays, touching only the entities that match. Checked entity by entity, each was
   * several reads at random places of a heap of gigabytes (the entity, its words, each word):
   * at 100k messages a common pair keys hundreds of entities, and the check cost ~0.4 ms of a
   * context call. Packed when the user is loaded (packPairs); a link or unlink at the key
   * drops its packing, and the next query that needs it packs it again.
   */
  private readonly packedPairs = new Map<string, PackedEntities>();
  /** A number for every word an entity's name has held (never reused: a packed pair may still hold it). */
  private readonly wordIds = new Map<string, number>();
  /** Each word by its number (wordIds): the one string every entity's words hold for it. */
  private readonly words: string[] = [];
  /** Each relation type, the one string every relation of that type holds. */
  private readonly types = new Map<string, string>();
  /** matched()'s marks of the terms' word ids, cleared again after each use. */
  private termMarks = new Uint8Array(0);
  private readonly bySingleWord = new Map<string, Members<Entity>>();
  /** How many entities hold each word. */
  private readonly wordCounts = new Map<string, number>();
  private readonly byNorm = new Map<string, Members<Entity>>();
  readonly relations = new Map<string, Relation>();
  /** Relations by either end. */
  private readonly ends = new Map<string, Members<Relation>>();
  /** What each message put here, for deletes by message. */
  private readonly messageEntities = new Map<string, Members<string>>();
  private readonly messageRelations = new Map<string, Members<string>>();
  /** A small number for each message with a mention held (see rankMentioning). */
  readonly ordinals = new Ordinals();
  /** strongestRelations' last answer and the limit it was for, until a relation is added, dropped or weakened. */
  private strongest: { limit: number; relations: Relation[] } | null = null;
  /**
   * Per entity id, the strongest relations at that end (byStrength order) for the limit they
   * were picked for, kept as strongestRelations' answer is: relationsTouching merges these
   * instead of every relation of the matched entities (a common word's entity has thousands).
   */
  private readonly strongestAt = new Map<string, { limit: number; relations: Relation[] }>();
  /**
   * matched()'s last terms and answer, until an entity is added or dropped or its mentions
   * change (setMentions): a context call asks it twice with the same terms, for the facts
   * about the query and for the messages that mention what it names.
   */
  private lastMatched: { key: string; entities: readonly Entity[] } | null = null;
  /** Mention and evidence rows held. */
  rows = 0;
  /** Shared mode: the graph version (migration 6) this reflects. */
  version = 0;

  private static link<T>(map: Map<string, Members<T>>, k: string, v: T): void {
    const s = map.get(k);
    const t = joined(s, v);
    if (t !== s) map.set(k, t);
  }

  private static unlink<T>(map: Map<string, Members<T>>, k: string, v: T): void {
    const s = map.get(k);
    if (s === undefined) return;
    const t = without(s, v);
    if (t === undefined) map.delete(k);
    else if (t !== s) map.set(k, t);
  }

  /** What link() put under `k`, in the order it was linked. */
  private static members<T>(map: Map<string, Members<T>>, k: string): Iterable<T> {
    return membersOf(map.get(k));
  }

  /** The word's one string (words), numbered (wordIds) if it is new. */
  private wordText(w: string): string {
    const id = this.wordIds.get(w);
    if (id !== undefined) return this.words[id]!;
    this.wordIds.set(w, this.words.length);
    this.words.push(w);
    return w;
  }

  addEntity(id: string, name: string, words: string[], mentions: number): Entity {
    // Its distinct words, fewest held first; of words held equally often, the longer (less
    // likely a common query word), then in code point order.
    words = words.map((w) => this.wordText(w));
    const distinct = [...new Set(words)].map((w) => ({ w, n: this.wordCounts.get(w) ?? 0 }));
    distinct.sort((a, b) => a.n - b.n || b.w.length - a.w.length || compareText(a.w, b.w));
    for (const { w, n } of distinct) this.wordCounts.set(w, n + 1);
    const keyWord = distinct[0]?.w ?? null;
    const keyPair = distinct.length >= 2 ? keptPairKey(distinct[0]!.w, distinct[1]!.w) : null;
    const e: Entity = { id, norm: normOf(id), name, words, keyWord, keyPair, mentions, messages: undefined, ords: null };
    this.entities.set(id, e);
    this.lastMatched = null;
    if (keyWord !== null) UserGraph.link(this.byKeyWord, keyWord, e);
    if (keyPair !== null) {
      UserGraph.link(this.byKeyPair, keyPair, e);
      this.packedPairs.delete(keyPair);
    } else if (keyWord !== null) UserGraph.link(this.bySingleWord, keyWord, e);
    UserGraph.link(this.byNorm, e.norm, e);
    return e;
  }

  private dropEntity(e: Entity): void {
    this.entities.delete(e.id);
    this.lastMatched = null;
    if (e.keyWord !== null) UserGraph.unlink(this.byKeyWord, e.keyWord, e);
    if (e.keyPair !== null) {
      UserGraph.unlink(this.byKeyPair, e.keyPair, e);
      this.packedPairs.delete(e.keyPair);
    } else if (e.keyWord !== null) UserGraph.unlink(this.bySingleWord, e.keyWord, e);
    for (const w of new Set(e.words)) {
      const n = this.wordCounts.get(w)! - 1;
      if (n > 0) this.wordCounts.set(w, n);
      else this.wordCounts.delete(w);
    }
    UserGraph.unlink(this.byNorm, e.norm, e);
    for (const m of membersOf(e.messages)) {
      UserGraph.unlink(this.messageEntities, m, e.id);
      if (!this.messageEntities.has(m)) this.ordinals.release(m);
    }
    this.rows -= countOf(e.messages);
  }

  /** A mention row, of a message of `sessionId`; false when it was there already (`on conflict do nothing`). */
  addMention(e: Entity, messageId: string, sessionId: string): boolean {
    if (holds(e.messages, messageId)) return false;
    const o = this.ordinals.of(messageId, sessionId);
    messageId = this.ordinals.ids[o]!; // the one string held for it
    e.messages = joined(e.messages, messageId);
    if (e.ords) e.ords.push(o);
    UserGraph.link(this.messageEntities, messageId, e.id);
    this.rows++;
    return true;
  }

  addRelation(from: string, type: string, to: string, weight: number): Relation {
    // The strings held for the ends and the type, not the caller's copies.
    from = this.entities.get(from)?.id ?? from;
    to = this.entities.get(to)?.id ?? to;
    let held = this.types.get(type);
    if (held === undefined) this.types.set(type, (held = type));
    type = held;
    const r: Relation = { key: relKey(from, type, to), from, type, to, weight, evidence: undefined, latest: null };
    this.relations.set(r.key, r);
    UserGraph.link(this.ends, from, r);
    UserGraph.link(this.ends, to, r);
    this.strengthened(r);
    return r;
  }

  private dropRelation(r: Relation): void {
    this.relations.delete(r.key);
    UserGraph.unlink(this.ends, r.from, r);
    UserGraph.unlink(this.ends, r.to, r);
    for (const m of membersOf(r.evidence)) UserGraph.unlink(this.messageRelations, m, r.key);
    this.rows -= countOf(r.evidence);
    this.weakened(r);
  }

  addEvidence(r: Relation, messageId: string): boolean {
    if (holds(r.evidence, messageId)) return false;
    messageId = this.ordinals.held(messageId) ?? messageId; // the one string held for it, if mentioned
    r.evidence = joined(r.evidence, messageId);
    const latest = r.latest;
    if (latest && (latest.length < FACT_EVIDENCE || compareText(messageId, latest[latest.length - 1]!) > 0)) {
      let i = latest.length;
      while (i > 0 && compareText(messageId, latest[i - 1]!) > 0) i--;
      latest.splice(i, 0, messageId);
      if (latest.length > FACT_EVIDENCE) latest.pop();
    }
    UserGraph.link(this.messageRelations, messageId, r.key);
    this.rows++;
    return true;
  }

  /**
   * One merge batch for this user, as the MERGE statement: new mentions first, then each
   * entity gains as many mentions as were new (created, with the batch's first surface form,
   * if it was not there), then new evidence and relation weights likewise.
   */
  merge(items: GraphMerge[]): void {
    const surfaces = new Map<string, string>();
    const sessions = new Map<string, string>();
    const newMentions = new Map<string, string[]>();
    const newEvidence = new Map<string, { from: string; type: string; to: string; messages: string[] }>();
    for (const item of items) {
      sessions.set(item.messageId, item.sessionId);
      const { ids, entities } = resolveEntities(item.extraction.entities);
      for (const { id, surface } of entities) {
        if (!surfaces.has(id)) surfaces.set(id, surface);
        const e = this.entities.get(id);
        if (e && holds(e.messages, item.messageId)) continue;
        const list = newMentions.get(id) ?? [];
        if (!list.includes(item.messageId)) list.push(item.messageId);
        newMentions.set(id, list);
      }
      for (const { fromId, type, toId } of resolveRelations(item.extraction.relations, ids)) {
        const k = relKey(fromId, type, toId);
        const held = this.relations.get(k);
        if (held && holds(held.evidence, item.messageId)) continue;
        const entry = newEvidence.get(k) ?? { from: fromId, type, to: toId, messages: [] };
        if (!entry.messages.includes(item.messageId)) entry.messages.push(item.messageId);
        newEvidence.set(k, entry);
      }
    }
    for (const [id, messages] of newMentions) {
      let e = this.entities.get(id);
      if (e) this.setMentions(e, e.mentions + messages.length);
      else {
        const surface = surfaces.get(id)!;
        e = this.addEntity(id, surface, nameWords(surface), messages.length);
      }
      for (const m of messages) this.addMention(e, m, sessions.get(m)!);
    }
    for (const [k, { from, type, to, messages }] of newEvidence) {
      let r = this.relations.get(k);
      if (r) {
        r.weight += messages.length;
        this.strengthened(r);
      } else r = this.addRelation(from, type, to, messages.length);
      for (const m of messages) this.addEvidence(r, m);
    }
  }

  /**
   * Shared mode: what merges of other processes added since the version held, as read in one
   * snapshot: mention rows with their entity's current row, evidence rows with their
   * relation's current weight. Merges only add such rows and raise those counts, and an
   * entity's name and words never change once it is stored, so this is exactly what changed.
   */
  catchUp(mentions: { entity: string; message: string; session: string; name: string; words: string[]; mentions: number }[], evidence: { from: string; type: string; to: string; message: string; weight: number }[]): void {
    for (const m of mentions) {
      let e = this.entities.get(m.entity);
      if (e) this.setMentions(e, m.mentions);
      else e = this.addEntity(m.entity, m.name, m.words, m.mentions);
      this.addMention(e, m.message, m.session);
    }
    for (const v of evidence) {
      let r = this.relations.get(relKey(v.from, v.type, v.to));
      if (r) {
        const gained = v.weight >= r.weight;
        r.weight = v.weight;
        if (gained) this.strengthened(r);
        else this.weakened(r);
      } else r = this.addRelation(v.from, v.type, v.to, v.weight);
      this.addEvidence(r, v.message);
    }
  }

  /** As DELETE_BY_MESSAGES: rows of these messages go, and entities and relations whose count they used up. */
  deleteMessages(messageIds: Iterable<string>): void {
    const lost = new Map<Entity, number>();
    const weakened = new Map<Relation, number>();
    for (const m of messageIds) {
      for (const id of UserGraph.members(this.messageEntities, m)) {
        const e = this.entities.get(id)!;
        e.messages = without(e.messages, m);
        e.ords = null;
        this.rows--;
        lost.set(e, (lost.get(e) ?? 0) + 1);
      }
      this.messageEntities.delete(m);
      this.ordinals.release(m);
      for (const k of UserGraph.members(this.messageRelations, m)) {
        const r = this.relations.get(k)!;
        r.evidence = without(r.evidence, m);
        if (r.latest?.includes(m)) r.latest = null;
        this.rows--;
        weakened.set(r, (weakened.get(r) ?? 0) + 1);
      }
      this.messageRelations.delete(m);
    }
    for (const [e, n] of lost) {
      if (e.mentions <= n) this.dropEntity(e);
      else this.setMentions(e, e.mentions - n);
    }
    for (const [r, n] of weakened) {
      if (r.weight <= n) this.dropRelation(r);
      else {
        r.weight -= n;
        this.weakened(r);
      }
    }
  }

  private setMentions(e: Entity, mentions: number): void {
    e.mentions = mentions;
    this.lastMatched = null;
  }

  /** As the MATCHED CTE: entities with mentions whose words are all among the terms, or whose normalised name is one; in id order. */
  matched(terms: Set<string>): readonly Entity[] {
    const key = [...terms].join("\u0000");
    if (this.lastMatched?.key === key) return this.lastMatched.entities;
    const entities = this.match(terms);
    this.lastMatched = { key, entities };
    return entities;
  }

  private match(terms: Set<string>): Entity[] {
    const out = new Set<Entity>();
    const offer = (e: Entity) => {
      if (e.mentions > 0 && !out.has(e) && e.words.length > 0 && e.words.every((w) => terms.has(w))) out.add(e);
    };
    for (const t of terms) for (const e of UserGraph.members(this.byNorm, t)) if (e.mentions > 0) out.add(e);
    if (terms.size <= PAIR_TERMS) {
      const list = [...terms];
      if (this.termMarks.length < this.wordIds.size) this.termMarks = new Uint8Array(Math.max(this.wordIds.size, 2 * this.termMarks.length));
      const marks = this.termMarks;
      const ids: number[] = [];
      for (const t of list) {
        const id = this.wordIds.get(t);
        if (id !== undefined) ids.push(id);
      }
      for (const id of ids) marks[id] = 1;
      try {
        for (let i = 0; i < list.length; i++) {
          for (const e of UserGraph.members(this.bySingleWord, list[i]!)) offer(e);
          for (let j = i + 1; j < list.length; j++) {
            const key = pairKey(list[i]!, list[j]!);
            const members = this.byKeyPair.get(key);
            if (members === undefined) continue;
            // Most pair keys hold one entity: offered as it is, with no array made for it.
            if (!(members instanceof Set || Array.isArray(members))) {
              offer(members as Entity);
              continue;
            }
            if (!(members instanceof Set) || members.size < PACK_MEMBERS) {
              for (const e of members as Iterable<Entity>) offer(e);
              continue;
            }
            // Only an entity all of whose words are marked can match: offer() checks it in full.
            const { entities, starts, words } = this.packedPair(key, members);
            for (let k = 0; k < entities.length; k++) {
              let all = true;
              for (let w = starts[k]!; w < starts[k + 1]!; w++) {
                if (marks[words[w]!] === 0) {
                  all = false;
                  break;
                }
              }
              if (all) offer(entities[k]!);
            }
          }
        }
      } finally {
        for (const id of ids) marks[id] = 0;
      }
    } else {
      // Many terms: more pairs than entities their words key.
      for (const t of terms) for (const e of UserGraph.members(this.byKeyWord, t)) offer(e);
    }
    return [...out].sort((a, b) => compareText(a.id, b.id));
  }

  /** Packs every pair key of PACK_MEMBERS entities or more (a load does, so that no query pays for it). */
  packPairs(): void {
    for (const [key, members] of this.byKeyPair) if (members instanceof Set && members.size >= PACK_MEMBERS) this.packedPair(key, members);
  }

  /** The pair key's entities (`members`, PACK_MEMBERS or more) packed for matched() (packedPairs). */
  private packedPair(key: string, members: Set<Entity>): PackedEntities {
    let p = this.packedPairs.get(key);
    if (p) return p;
    const entities = [...members];
    const starts = new Int32Array(entities.length + 1);
    let n = 0;
    for (const e of entities) n += e.words.length;
    const words = new Int32Array(n);
    n = 0;
    for (let k = 0; k < entities.length; k++) {
      for (const w of entities[k]!.words) words[n++] = this.wordIds.get(w)!;
      starts[k + 1] = n;
    }
    this.packedPairs.set(key, (p = { entities, starts, words }));
    return p;
  }

  /** The entity's messages as ordinals. */
  ordsOf(e: Entity): readonly number[] {
    return (e.ords ??= Array.from(membersOf(e.messages), (m) => this.ordinals.of(m)));
  }

  /**
   * Keeps strongestRelations' answer current as `r` is added or gains weight: it can only rise
   * among the strongest, so the others kept stay kept. A drop or a loss of weight starts the
   * answer anew on the next call.
   */
  private strengthened(r: Relation): void {
    const s = this.strongest;
    if (s) placeAgain(s.relations, r, s.limit, r.weight > 0);
    // relationsTouching keeps relations of any weight, as the SQL's join does.
    for (const end of r.from === r.to ? [r.from] : [r.from, r.to]) {
      const at = this.strongestAt.get(end);
      if (at) placeAgain(at.relations, r, at.limit, true);
    }
  }

  /** `r` lost weight or went: the answers it may have been in start anew on their next call. */
  private weakened(r: Relation): void {
    this.strongest = null;
    this.strongestAt.delete(r.from);
    this.strongestAt.delete(r.to);
  }

  /**
   * The `limit` strongest relations of positive weight (byStrength order), in one pass over
   * them rather than a sort of all: every turn written adds or strengthens relations, and a
   * context call after it sorted tens of thousands of them in a long-lived user's graph.
   */
  strongestRelations(limit: number): Relation[] {
    if (this.strongest?.limit === limit) return this.strongest.relations;
    const best: Relation[] = [];
    if (limit > 0) for (const r of this.relations.values()) if (r.weight > 0) keepStrongest(best, r, limit);
    this.strongest = { limit, relations: best };
    return best;
  }

  /** The `limit` strongest relations at either end of the entities (byStrength order), without sorting them all. */
  relationsTouching(entities: readonly Entity[], limit: number): Relation[] {
    // A relation among the `limit` strongest touching any of the entities has fewer than
    // `limit` stronger ones at its own end, so it is among the strongest at that end.
    // Each end's list is in byStrength order, so once a relation of the list is turned away (the
    // answer is full and it is not stronger than the last kept), none after it is stronger
    // either: the rest of the list is not read.
    // A query's words match many entities in a long-lived user's graph (each with its own
    // list), and reading every relation of every list read one cold object after another.
    const seen = new Set<Relation>();
    const best: Relation[] = [];
    for (const e of entities) {
      for (const r of this.strongestAtEnd(e.id, limit)) {
        if (seen.has(r)) continue;
        seen.add(r);
        if (!keepStrongest(best, r, limit)) break;
      }
    }
    return best;
  }

  /** The `limit` strongest relations at the entity's end (byStrength order), kept current (strongestAt). */
  private strongestAtEnd(id: string, limit: number): Relation[] {
    const held = this.strongestAt.get(id);
    if (held?.limit === limit) return held.relations;
    const best: Relation[] = [];
    for (const r of UserGraph.members(this.ends, id)) keepStrongest(best, r, limit);
    this.strongestAt.set(id, { limit, relations: best });
    return best;
  }

  /** The FACT_EVIDENCE greatest ids in code point order, greatest first, in one pass. */
  private static greatest(ids: Iterable<string>): string[] {
    const out: string[] = [];
    for (const id of ids) {
      if (out.length === FACT_EVIDENCE && compareText(id, out[out.length - 1]!) <= 0) continue;
      let i = out.length;
      while (i > 0 && compareText(id, out[i - 1]!) > 0) i--;
      out.splice(i, 0, id);
      if (out.length > FACT_EVIDENCE) out.pop();
    }
    return out;
  }

  describe(relations: Relation[]): Fact[] {
    return relations.map((r) => ({
      // The SQL's subquery answers null for an end without an entity row.
      subject: this.entities.get(r.from)?.name ?? (null as unknown as string),
      predicate: r.type,
      object: this.entities.get(r.to)?.name ?? (null as unknown as string),
      weight: r.weight,
      messageIds: [...(r.latest ??= UserGraph.greatest(membersOf(r.evidence)))],
    }));
  }
}

/**
 * Small numbers for the message ids a user's mentions hold, reused once a message's last
 * mention goes: rankMentioning sums scores by them, and reads ids, keys and sessions by them.
 */
export class Ordinals {
  /** Ids by ordinal (undefined when free). */
  readonly ids: (string | undefined)[] = [];
  /**
   * Per ordinal, its id's idOrderKey: rankMentioning orders messages of equal score by these,
   * reading an id's text only when two keys are equal. At 100k messages, ties on score are the
   * rule, and comparing the ids themselves read thousands of strings spread over the heap a call.
   */
  keys = new Float64Array(16);
  /**
   * Per ordinal, its message's session when the caller said it (mentions carry it): ranked
   * messages carry it to the search, whose session prior then looks none of them up.
   */
  readonly sessions: (string | undefined)[] = [];
  private readonly byId = new Map<string, number>();
  private readonly free: number[] = [];

  of(id: string, sessionId?: string): number {
    let o = this.byId.get(id);
    if (o === undefined) {
      o = this.free.pop() ?? this.ids.length;
      this.ids[o] = id;
      this.sessions[o] = sessionId;
      if (o >= this.keys.length) {
        const grown = new Float64Array(Math.max(2 * this.keys.length, o + 1));
        grown.set(this.keys);
        this.keys = grown;
      }
      this.keys[o] = idOrderKey(id);
      this.byId.set(id, o);
    }
    return o;
  }

  /** The id's one string held here, if it has an ordinal. */
  held(id: string): string | undefined {
    const o = this.byId.get(id);
    return o === undefined ? undefined : this.ids[o];
  }

  release(id: string): void {
    const o = this.byId.get(id);
    if (o === undefined) return;
    this.byId.delete(id);
    this.ids[o] = undefined;
    this.sessions[o] = undefined;
    this.free.push(o);
  }
}

// idOrderKey's digits: the first KEY_UNITS code units of an id in base KEY_BASE (130^7 < 2^53,
// so the key is an exact integer).
const KEY_UNITS = 7;
const KEY_BASE = 130;

/**
 * A number that orders ids as compareText does wherever two numbers differ: the first
 * KEY_UNITS code units as digits, an ASCII unit u as u + 1, the end of the id as 0, and any
 * other unit as 129 with every digit after it 0. Two ids first differ in a digit only where
 * the ids agree before it; there an ended id is a prefix of the other (it comes first), two
 * ASCII units compare as themselves, and an ASCII unit comes before any other unit in code
 * point order too. Equal keys say nothing: the ids are then compared whole.
 */
export function idOrderKey(id: string): number {
  let key = 0;
  let open = true;
  for (let i = 0; i < KEY_UNITS; i++) {
    let digit = 0;
    if (open && i < id.length) {
      const u = id.charCodeAt(i);
      if (u < 128) digit = u + 1;
      else {
        digit = 129;
        open = false;
      }
    }
    key = key * KEY_BASE + digit;
  }
  return key;
}

// rankMentioning's table of the messages a call reached, by open addressing (0: free; i + 1:
// the i-th message reached), and per message reached, its ordinal and its sum so far. Sized
// by the call's postings, not the user's messages: at 100k messages a call adds about a
// thousand postings, and a dense array per ordinal (800 KB of sums and 100 KB of marks) put
// each of them on a cache line of its own, cold since the call before.
let table = new Int32Array(0);
let reachedOrds = new Int32Array(0);
let reachedSums = new Float64Array(0);
// Per message reached at the floor or above, its id's order key (Ordinals.keys), for the ties.
let reachedKeys = new Float64Array(0);

/**
 * The best `limit` messages by the sum of the weights of the lists that hold them (score
 * descending, then id descending in code point order, as the SQL's `order by`). Each list
 * holds ordinals (indexes into `ids`); every message of every list is scored by adding to its
 * entry in a hash table of the messages reached, and the best `limit` are kept in a heap, an id
 * compared only on equal scores. Reading the lists rarest first with Set lookups by id and an
 * early stop (an earlier way) rarely stopped early at 100k messages, ties on score being the
 * rule, and its lookups cost ~20 ms a call there. Weights are multiples of 2^-40
 * (MENTION_WEIGHT), so every sum is exact in any order and the answer is the full scan's, ties
 * included.
 */
export function rankMentioning(lists: readonly { ords: ArrayLike<number>; weight: number }[], ordinals: Pick<Ordinals, "ids" | "keys" | "sessions">, limit: number): SessionScoredId[] {
  const { ids, keys, sessions } = ordinals;
  if (limit <= 0 || lists.length === 0) return [];
  let postings = 0;
  for (const { ords } of lists) postings += ords.length;
  if (postings === 0) return [];
  // At most half full: a power of two of at least twice the postings.
  const bits = Math.max(4, 32 - Math.clz32(2 * postings - 1));
  const size = 1 << bits;
  const mask = size - 1;
  const shift = 32 - bits;
  if (table.length < size) table = new Int32Array(size);
  if (reachedOrds.length < postings) {
    reachedOrds = new Int32Array(Math.max(postings, 2 * reachedOrds.length));
    reachedSums = new Float64Array(reachedOrds.length);
    reachedKeys = new Float64Array(reachedOrds.length);
  }
  const slots = table;
  const ords = reachedOrds;
  const sums = reachedSums;
  let count = 0;
  for (const list of lists) {
    const held = list.ords;
    const weight = list.weight;
    for (let i = 0; i < held.length; i++) {
      const o = held[i]!;
      // Fibonacci hashing: the high bits of the ordinal times 2^32 / φ.
      let h = Math.imul(o, 0x9e3779b1) >>> shift;
      for (;;) {
        const e = slots[h]!;
        if (e === 0) {
          slots[h] = ++count;
          ords[count - 1] = o;
          sums[count - 1] = weight;
          break;
        }
        if (ords[e - 1] === o) {
          sums[e - 1] = sums[e - 1]! + weight;
          break;
        }
        h = (h + 1) & mask;
      }
    }
  }
  slots.fill(0, 0, size);
  // The limit-th best score: every message above it is in, and of those on it, the greatest
  // ids fill the rest.
  const floor = count > limit ? kthLargest(sums, count, limit) : -Infinity;
  // The keys of the messages that can be kept (at the floor or above), read in one loop before
  // any is compared: at 100k messages each key is a cache miss of its own in an array of 800
  // KB, and read by the heap's comparisons below (a couple of hundred ties a call) each miss
  // waited for the comparison before it. Read with no dependency between them, the misses
  // overlap. (The graph tier read 0.966–0.969 of its time, bench/search.ts --switch.)
  const reachedKey = reachedKeys;
  for (let i = 0; i < count; i++) if (sums[i]! >= floor) reachedKey[i] = keys[ords[i]!]!;
  /** Message a's id against message b's (indexes of messages reached at the floor or above), in code point order: by their keys, by the ids when the keys are equal. */
  const idOrder = (a: number, b: number): number => {
    const x = reachedKey[a]!;
    const y = reachedKey[b]!;
    return x < y ? -1 : x > y ? 1 : compareText(ids[ords[a]!]!, ids[ords[b]!]!);
  };
  // The messages above the floor, then of those on it the ones with the greatest ids: a
  // min-heap by id of the latter, the least at the root. Both hold indexes of messages reached.
  const out: number[] = [];
  const ties: number[] = [];
  let room = limit;
  for (let i = 0; i < count; i++) if (sums[i]! > floor) room--;
  for (let i = 0; i < count; i++) {
    const v = sums[i]!;
    if (v > floor) out.push(i);
    else if (v === floor && room > 0) {
      if (ties.length < room) {
        let c = ties.length;
        ties.push(i);
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (idOrder(ties[p]!, i) <= 0) break;
          ties[c] = ties[p]!;
          c = p;
        }
        ties[c] = i;
      } else if (idOrder(i, ties[0]!) > 0) {
        let c = 0;
        for (;;) {
          const l = 2 * c + 1;
          if (l >= ties.length) break;
          const r = l + 1;
          const m = r < ties.length && idOrder(ties[r]!, ties[l]!) < 0 ? r : l;
          if (idOrder(ties[m]!, i) >= 0) break;
          ties[c] = ties[m]!;
          c = m;
        }
        ties[c] = i;
      }
    }
  }
  for (const i of ties) out.push(i);
  out.sort((a, b) => descending(sums[a]!, sums[b]!) || idOrder(b, a));
  return out.map((i): SessionScoredId => {
    const o = ords[i]!;
    const sessionId = sessions[o];
    return sessionId === undefined ? { id: ids[o]!, score: sums[i]! } : { id: ids[o]!, score: sums[i]!, sessionId };
  });
}

/** rankMentioning over lists of ids (the tests' reference comparisons). */
export function topMentioning(lists: readonly { messages: ReadonlySet<string>; weight: number }[], limit: number): SessionScoredId[] {
  const ordinals = new Ordinals();
  return rankMentioning(lists.map((l) => ({ ords: Array.from(l.messages, (m) => ordinals.of(m)), weight: l.weight })), ordinals, limit);
}

interface Load {
  promise: Promise<UserGraph>;
  /** Writes that landed while the tables were read, replayed on what was read. */
  writes: ((g: UserGraph) => void)[];
  /** Set when the user's graph was deleted meanwhile: what the load read is not kept. */
  cancelled: boolean;
}

// Shared mode's statements (migration 6). Each reads in one snapshot, so what it answers is
// the graph as of one moment together with the version that moment carries.
const VERSION_HEAD = "select version, reset_version from graph_versions where tenant_id = $1 and user_id = $2";

/** One row of WHOLE or DELTA: `k` says which table it comes from ('v' is the version row). */
interface GraphRow {
  k: "v" | "e" | "m" | "s" | "r" | "x";
  a: string | null;
  b: string | null;
  c: string | null;
  d: string | null;
  w: string[] | null;
  n: unknown;
  r: unknown;
  /** WHOLE: the ids of the messages an entity's mention rows, a relation's evidence rows, or a session's mention rows name (JSON). */
  ids?: unknown;
}

// Each entity's mention rows, and each relation's evidence rows, come as one row with their
// message ids in one JSON array, not one row per mention and evidence row. The bench's
// 100k-message user (45k entities, 488k mentions, 50k relations, 450k evidence rows) took
// 8–10 s to load that way through the Neon stand-in, most of it the driver's and the
// endpoint's work per row, not the bytes or Postgres (a JSON array is parsed natively, in one
// call): measured back to back on a busy machine, 24–26 s and 15 s of CPU the old way, 9–13 s
// and 5–7 s of CPU this way, at two thirds of the peak RSS. The ids are matched to their
// entity or relation here, not joined in SQL: without statistics (PGlite, or
// tables just filled) the planner took the grouped rows for one and joined them in a nested
// loop, which at 1k messages took 10 s. Rows without their entity or relation row are left out,
// as the SQL store cannot match them either.
const WHOLE = `
select 'v' as k, null::text as a, null::text as b, null::text as c, null::text as d, null::text[] as w, version as n, reset_version as r, null::json as ids
  from graph_versions where tenant_id = $1 and user_id = $2
union all
select 'e', id, name, null, null, words, mentions, null, null from entities where tenant_id = $1 and user_id = $2
union all
select 'm', entity_id, null, null, null, null, null, null, json_agg(message_id)
  from mentions where tenant_id = $1 and user_id = $2 group by entity_id
union all
select 's', session_id, null, null, null, null, null, null, json_agg(distinct message_id)
  from mentions where tenant_id = $1 and user_id = $2 group by session_id
union all
select 'r', from_id, type, to_id, null, null, weight, null, null from relations where tenant_id = $1 and user_id = $2
union all
select 'x', from_id, type, to_id, null, null, null, null, json_agg(message_id)
  from relation_evidence where tenant_id = $1 and user_id = $2 group by from_id, type, to_id`;

// A user's embedded load (read()): a page of a graph table's rows above graph version $3,
// as one JSON array per column (PGlite hands a result over row by row, each field parsed in
// JavaScript: one row for the page costs a fraction of one a row). The page ends with the
// version of its ($4 + 1)th row (`cut`: null when fewer rows are left), whole: the next page
// reads above it. Both scans follow the (tenant, user, graph_version) index, and the rows'
// heap order is about the order they were stored in, so a page is read in sequence (pages of
// 10,000 mention rows took about 40 ms for the bench's 100k-message user, where a page of
// entities with their mention rows, looked up by entity, took 600 ms).
const VERSION_PAGE = (table: string, columns: string[]) => `
with cut as (
  select graph_version as v from ${table} where tenant_id = $1 and user_id = $2 and graph_version > $3
  order by graph_version offset $4 limit 1
)
select ${columns.map((c, i) => `json_agg(${c})::text as c${i}`).join(", ")}, (select v from cut) as cut
  from ${table} where tenant_id = $1 and user_id = $2 and graph_version > $3
    and graph_version <= coalesce((select v from cut), 9223372036854775807)`;

// The user's entities' names, in slices by a hash of their id ($4 of $3): each slice reads
// the user's rows in heap order (by id they are read at random, 70 ms per 1,000 entities at
// 100k messages) and holds PGlite a fraction as long as the whole (0.5–1.2 s at 100k).
const ENTITY_SLICE = `
select json_agg(id)::text as c0, json_agg(name)::text as c1, json_agg(words)::text as c2
  from entities where tenant_id = $1 and user_id = $2 and (hashtext(id) & 2147483647) % $3::int = $4::int`;

// Blocks of the entities table, and a range of them read in sequence (a TID range scan:
// no index can serve the statement, and a range holds PGlite about as long as a page of mention
// rows), the user's rows of it with the count of all its rows.
const TABLE_BLOCKS = `select pg_relation_size('entities'::regclass) / current_setting('block_size')::bigint as blocks`;
const ENTITY_BLOCKS = `
select (json_agg(id) filter (where tenant_id = $1 and user_id = $2))::text as c0,
       (json_agg(name) filter (where tenant_id = $1 and user_id = $2))::text as c1,
       (json_agg(words) filter (where tenant_id = $1 and user_id = $2))::text as c2,
       count(*) as n
  from entities where ctid >= format('(%s,0)', $3::bigint)::tid and ctid < format('(%s,0)', $4::bigint)::tid`;
// Entity rows a block is taken to hold until a range has been read (about 150 bytes a row).
const ENTITY_ROWS_A_BLOCK = 50;
// Entities by id: those no range read.
const ENTITY_BY_ID = `
select json_agg(id)::text as c0, json_agg(name)::text as c1, json_agg(words)::text as c2
  from entities where tenant_id = $1 and user_id = $2 and id = any($3::text[])`;

/** A column as json_agg gave it: its elements, or none (null: no rows). */
function jsonColumn(text: unknown): unknown[] {
  if (text === null || text === undefined) return [];
  return (typeof text === "string" ? JSON.parse(text) : text) as unknown[];
}

// The version row, then the rows stamped above the version held ($3) unless a delete came
// since (then nothing but the version row: the caller loads the user whole).
const DELTA = `
select 'v' as k, null::text as a, null::text as b, null::text as c, null::text as d, null::text[] as w, version as n, reset_version as r
  from graph_versions where tenant_id = $1 and user_id = $2
union all${graphDeltaRows({ tenant: "$1", user: "$2", since: "$3" })}`;

/** A WHOLE row's message ids: a JSON array, parsed by the driver or not (null: no rows). */
function messageIds(ids: unknown): string[] {
  if (ids === null || ids === undefined) return [];
  const list = typeof ids === "string" ? (JSON.parse(ids) as unknown[]) : (ids as unknown[]);
  return list.map(String);
}

/** The version and reset version a WHOLE or DELTA answer carries (no row: never written since migration 6). */
function versionOf(rows: GraphRow[]): { version: number; reset: number } {
  const v = rows.find((row) => row.k === "v");
  return v ? { version: Number(v.n), reset: Number(v.r) } : { version: 0, reset: 0 };
}

function cleanTerms(terms: string[]): string[] {
  return [...new Set(terms.map(normaliseName).filter((t) => t.length > 0))];
}

/**
 * The SQL graph store with an in-process read index: merge and the deletes go to the store
 * first, then to the index; messagesMentioning and facts are answered from the index.
 */
export function withGraphIndex(store: GraphStore, options: GraphIndexOptions): IndexedGraphStore {
  const { sql } = options;
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  if (!(maxRows >= 0)) throw new StrataError("config", "CONFIG_INVALID", `maxRows must be ≥ 0, got ${maxRows}`);
  const shared = options.shared ?? false;
  const maxCatchUp = options.maxCatchUp ?? DEFAULT_MAX_CATCH_UP;
  if (!(maxCatchUp >= 0)) throw new StrataError("config", "CONFIG_INVALID", `maxCatchUp must be ≥ 0, got ${maxCatchUp}`);
  const adapter = `${store.adapter}+memory${shared ? " (shared)" : ""}`;
  // Mention or evidence rows a page of an embedded load reads (read()), at least 1.
  const pageRows = Math.max(1, Math.floor(options.loadPageRows ?? GRAPH_PAGE_ROWS));
  // Loaded users, least recently used first (a Map keeps insertion order).
  const loaded = new Map<string, UserGraph>();
  const loading = new Map<string, Load>();
  const key = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;
  // 1 / (1 + ln(greatest(k, 1))) as float8, by mention count k, as the archive computes it.
  const weights: number[] = [];

  async function query<T>(client: SqlClient, text: string, params: unknown[]): Promise<T[]> {
    try {
      return await client.query<T>(text, params);
    } catch (e) {
      throw upstream(adapter, e);
    }
  }

  /** A load's statement, on its turn (loadStatementTurn): one row, as json_agg gives a page. */
  async function loadQuery(text: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    await loadStatementTurn();
    return query<Record<string, unknown>>(sql, text, params);
  }

  async function readWeights(client: SqlClient, counts: number[]): Promise<void> {
    const missing = [...new Set(counts)].filter((k) => weights[k] === undefined);
    if (missing.length === 0) return;
    const rows = await query<{ k: number; w: number }>(
      client,
      `select k, ${MENTION_WEIGHT("k")} as w from unnest($1::int[]) k`,
      [missing],
    );
    for (const r of rows) weights[Number(r.k)] = Number(r.w);
  }

  /**
   * Reads `table`'s rows of the user a page at a time in graph-version order (VERSION_PAGE),
   * as one array per column; `each` takes each page before the next is read.
   */
  async function readByVersion(table: string, columns: string[], tenantId: string, userId: string, each: (columns: unknown[][]) => Promise<void>): Promise<void> {
    for (let after = -1; ; ) {
      const [row] = await loadQuery(VERSION_PAGE(table, columns), [tenantId, userId, after, pageRows - 1]);
      await each(columns.map((_, i) => jsonColumn(row?.[`c${i}`])));
      if (row?.cut === null || row?.cut === undefined) return;
      after = Number(row.cut);
    }
  }

  /**
   * Reads the user's entities (about `count`) and hands each select's rows to `take`, as one
   * array per column (id, name, words). One select when they fit in a slice (ENTITY_SLICE,
   * 1 of 1); past it, the table a range of blocks at a time (ENTITY_BLOCKS), each range
   * read in sequence and sized to about `pageRows` rows, when the user holds enough of the
   * table that reading it all costs less than a hash slice per ENTITY_SLICE_PAGES pages (each
   * of which reads all the user's rows); otherwise in hash slices. A row updated during the
   * read may move to a block read before or past the last: the caller looks up what no
   * select read.
   */
  async function readEntities(tenantId: string, userId: string, count: number, take: (columns: unknown[][]) => Promise<void>): Promise<void> {
    const slices = Math.max(1, Math.ceil(count / (ENTITY_SLICE_PAGES * pageRows)));
    const bySlice = async () => {
      for (let j = 0; j < slices; j++) {
        const [row] = await loadQuery(ENTITY_SLICE, [tenantId, userId, slices, j]);
        await take([jsonColumn(row?.c0), jsonColumn(row?.c1), jsonColumn(row?.c2)]);
      }
    };
    const mode = options.loadEntitiesBy ?? "auto";
    if (mode === "hash" || (mode === "auto" && slices === 1)) return bySlice();
    const [size] = await query<{ blocks: unknown }>(sql, TABLE_BLOCKS, []);
    const blocks = Number(size?.blocks ?? 0);
    let [read, rows, step] = [0, 0, Math.ceil(pageRows / ENTITY_ROWS_A_BLOCK)];
    while (read < blocks) {
      const to = Math.min(blocks, read + step);
      const [row] = await loadQuery(ENTITY_BLOCKS, [tenantId, userId, read, to]);
      await take([jsonColumn(row?.c0), jsonColumn(row?.c1), jsonColumn(row?.c2)]);
      const first = read === 0;
      rows += Number(row?.n ?? 0);
      read = to;
      const perBlock = Math.max(1, rows / read);
      // After the first range, the table's rows estimated from those read: a hash slice reads
      // all the user's rows, so when the table holds more than `slices` times them, slices.
      if (mode === "auto" && first && perBlock * blocks > slices * count) return bySlice();
      // The next range sized to about pageRows rows, growing at most fourfold a range.
      step = Math.max(1, Math.min(4 * step, Math.ceil(pageRows / perBlock)));
    }
  }

  async function read(tenantId: string, userId: string): Promise<UserGraph> {
    if (weights.length === 0) await readWeights(sql, Array.from({ length: WEIGHTS_PREFETCH }, (_, i) => i + 1));
    // Not one snapshot of the four tables (one transaction held PGlite, and the server's thread
    // with it, 4.3 s for the bench's 100k-message user: BENCHMARKS.md, sixty-second round) but
    // selects a page long, each page taken in slices (loadSlicer) before the next is read:
    //  - the mention and evidence rows in graph-version order (VERSION_PAGE): a merge stamps
    //    its rows above every version stored, so a merge landing meanwhile is read by a later
    //    page or not at all; a row deleted and stored again may be read twice, and counts once;
    //  - then the entities' names (readEntities), by ranges of the table's blocks or in slices
    //    of the ids by hash, and by id those no select read.
    // Counts are not read: an entity's mention count and a relation's weight are its rows'
    // number, as MERGE and DELETE_BY_MESSAGES keep them. So a count always agrees with the rows
    // held, and every write that lands during the load is replayed on what it read (load()):
    // a row already held counts once, one absent is not removed. An entity whose row was read
    // before a delete took its last mention and a merge stored it again under another surface
    // form loses the rows the delete replayed takes, and the merge replayed stores it again.
    // One slicer for the whole load: a select's time counts toward the slice it falls in (a
    // slicer for each page let pages of fast rows run one after another without a turn).
    const slice = loadSlicer(options.loadSliceMs);
    const entityRows = new Map<string, string[]>(); // entity id -> [message, session, message, session, ...]
    await readByVersion("mentions", ["entity_id", "message_id", "session_id"], tenantId, userId, ([es, ms, ss]) =>
      eachInSlices(es!.length, slice, (i) => {
        const id = String(es![i]);
        let list = entityRows.get(id);
        if (!list) entityRows.set(id, (list = []));
        list.push(String(ms![i]), String(ss![i]));
      }),
    );
    const relationRows = new Map<string, { from: string; type: string; to: string; messages: string[] }>();
    await readByVersion("relation_evidence", ["from_id", "type", "to_id", "message_id"], tenantId, userId, ([fs, ts, os, ms]) =>
      eachInSlices(fs!.length, slice, (i) => {
        const [from, type, to] = [String(fs![i]), String(ts![i]), String(os![i])];
        const k = relKey(from, type, to);
        let r = relationRows.get(k);
        if (!r) relationRows.set(k, (r = { from, type, to, messages: [] }));
        r.messages.push(String(ms![i]));
      }),
    );
    const g = new UserGraph();
    // Each entity is built once, from the first of its rows read (a row updated meanwhile may
    // be read at its old place and its new); entities without mention rows read are left out:
    // none is stored, unless a merge stored it after the rows were read, and that merge is
    // replayed. Rows without their entity's row are left out, as the SQL store cannot match
    // them either.
    const take = ([ids, names, words]: unknown[][]) =>
      eachInSlices(ids!.length, slice, (i) => {
        const id = String(ids![i]);
        const list = entityRows.get(id);
        if (!list) return;
        entityRows.delete(id);
        const sessions = new Map<string, string>();
        for (let k = 0; k < list.length; k += 2) sessions.set(list[k]!, list[k + 1]!);
        const e = g.addEntity(id, String(names![i]), ((words![i] as unknown[] | null) ?? []).map(String), sessions.size);
        for (const [m, session] of sessions) g.addMention(e, m, session);
      });
    await readEntities(tenantId, userId, entityRows.size, take);
    // Entities whose row no slice read (updated into a block read before, or past the last):
    // looked up by id, as a slice read later would have read them.
    const rest = [...entityRows.keys()];
    for (let from = 0; from < rest.length; from += pageRows) {
      const [row] = await loadQuery(ENTITY_BY_ID, [tenantId, userId, rest.slice(from, from + pageRows)]);
      await take([jsonColumn(row?.c0), jsonColumn(row?.c1), jsonColumn(row?.c2)]);
    }
    g.packPairs();
    const relations = [...relationRows.values()];
    await eachInSlices(relations.length, slice, (i) => {
      const { from, type, to, messages } = relations[i]!;
      const distinct = new Set(messages);
      const r = g.addRelation(from, type, to, distinct.size);
      for (const m of distinct) g.addEvidence(r, m);
    });
    return g;
  }

  const retention = createRetention<UserGraph>([{ size: (g) => g.rows, limit: maxRows }]);
  /** Holds `k`, just loaded, if the budget allows (evict.ts). */
  const admit = (k: string) => retention.admit(loaded, k);

  /** Shared mode: the user's graph whole, with the version it reflects. */
  async function readWhole(tenantId: string, userId: string): Promise<UserGraph> {
    const rows = await query<GraphRow>(sql, WHOLE, [tenantId, userId]);
    if (weights.length === 0) await readWeights(sql, Array.from({ length: WEIGHTS_PREFETCH }, (_, i) => i + 1));
    // Built in slices (loadSlicer), with turns of the event loop between them for the
    // instance's other requests: the graph is no reader's until it is registered, at the
    // version its statement read.
    const slice = loadSlicer(options.loadSliceMs);
    const g = new UserGraph();
    g.version = versionOf(rows).version;
    await eachInSlices(rows.length, slice, (i) => {
      const row = rows[i]!;
      if (row.k === "e") g.addEntity(String(row.a), String(row.b), (row.w ?? []).map(String), Number(row.n));
      else if (row.k === "r") g.addRelation(String(row.a), String(row.b), String(row.c), Number(row.n));
    });
    g.packPairs();
    // Each mentioned message's session, from the rows that group the messages by session.
    const sessions = new Map<string, string>();
    await eachInSlices(rows.length, slice, (i) => {
      const row = rows[i]!;
      if (row.k === "s") for (const m of messageIds(row.ids)) sessions.set(m, String(row.a));
    });
    await eachInSlices(rows.length, slice, (i) => {
      const row = rows[i]!;
      if (row.k === "m") {
        const e = g.entities.get(String(row.a));
        if (e) for (const m of messageIds(row.ids)) g.addMention(e, m, sessions.get(m)!);
      } else if (row.k === "x") {
        const r = g.relations.get(relKey(String(row.a), String(row.b), String(row.c)));
        if (r) for (const m of messageIds(row.ids)) g.addEvidence(r, m);
      }
    });
    return g;
  }

  /** Shared mode: brings `g` up to the user's version by the rows merged since; false when a delete came since. */
  async function catchUp(g: UserGraph, tenantId: string, userId: string): Promise<boolean> {
    const rows = await query<GraphRow>(sql, DELTA, [tenantId, userId, g.version]);
    const { version, reset } = versionOf(rows);
    if (reset > g.version || version < g.version) return false;
    const { mentions, evidence } = graphDeltaOf(g.version, rows);
    g.catchUp(mentions, evidence);
    g.version = version;
    return true;
  }

  // Shared mode: one refresh per user at a time, and the refresh queued behind another and not
  // yet begun, which reads arriving meanwhile join: its version read starts after each of them
  // arrived, so it sees every write acknowledged before any of them, with one read instead of
  // one each (as the keyword index's shared mode).
  /** Runs a refresh after every earlier refresh of the same user. */
  const serialised = perKey();
  const waiting = new Map<string, Promise<UserGraph | null>>();


  // Shared mode: whole loads running in the background, by user.
  const wholeLoads = new Map<string, Promise<void>>();

  /** Shared mode: loads the user whole in the background (once at a time per user) and registers it. */
  function loadInBackground(k: string, tenantId: string, userId: string): void {
    // A user the budget would not hold (evict.ts) is answered from the store without a load.
    if (wholeLoads.has(k) || retention.refuses(loaded, k)) return;
    const run = readWhole(tenantId, userId).then(
      (g) => {
        // Whatever registered meanwhile, this is consistent with its version, and every read
        // checks the version before it answers from it.
        loaded.delete(k);
        loaded.set(k, g);
        admit(k);
      },
      () => undefined, // the next read that needs it starts another
    );
    const done = run.finally(() => wholeLoads.get(k) === done && wholeLoads.delete(k));
    wholeLoads.set(k, done);
  }

  /**
   * Shared mode: the user's graph as of a version read begun after the call, or null when it
   * is not held current (a whole load is then under way): the caller answers from the store.
   */
  function sharedGraph(k: string, tenantId: string, userId: string, asOf?: GraphVersion): Promise<UserGraph | null> {
    if (asOf) {
      // A graph already at or past the caller's version answers at once (versions never go
      // back, and whatever a refresh in flight adds is newer than the caller needs); else it
      // is brought up to that version, with no version read of its own.
      const have = loaded.get(k);
      if (have && have.version >= asOf.version) {
        loaded.delete(k);
        loaded.set(k, have);
        return Promise.resolve(have);
      }
      return serialised(k, () => (asOf.delta ? applyDelta(k, tenantId, userId, asOf) : refresh(k, tenantId, userId, asOf, true)));
    }
    const queued = waiting.get(k);
    if (queued) return queued;
    const run: Promise<UserGraph | null> = serialised(k, async () => {
      // Begun: a read arriving from now on needs a version read of its own.
      if (waiting.get(k) === run) waiting.delete(k);
      const [head] = await query<{ version: unknown; reset_version: unknown }>(sql, VERSION_HEAD, [tenantId, userId]);
      return refresh(k, tenantId, userId, head ? { version: Number(head.version), reset: Number(head.reset_version) } : { version: 0, reset: 0 }, false);
    });
    // `serialised` begins it a tick later at the earliest, so it is registered before it begins.
    waiting.set(k, run);
    return run;
  }

  /**
   * Shared mode: the user's graph brought up to `head` by the rows it carries (GraphVersion.delta,
   * read in the caller's first statement), when the graph held is still at the version they
   * were read after; otherwise as refresh() does. Runs serialised per user.
   */
  async function applyDelta(k: string, tenantId: string, userId: string, head: GraphVersion): Promise<UserGraph | null> {
    const g = loaded.get(k);
    const delta = head.delta!;
    if (g && (g.version >= head.version || g.version === delta.since)) {
      const grows = g.version < head.version;
      if (grows) {
        g.catchUp(delta.mentions, delta.evidence);
        g.version = head.version;
      }
      loaded.delete(k);
      loaded.set(k, g);
      // Grown past the budget by others' merges: the least recently used others go.
      if (grows) retention.enforce(loaded, k);
      return g;
    }
    return refresh(k, tenantId, userId, head, true);
  }

  /**
   * Shared mode: the user's graph brought up to `head` (a version read after the caller's
   * request began), or null when it is not held current (a whole load is then under way).
   * `behind`: the head may be older than what is held (the caller read it before a refresh
   * since moved the graph on); otherwise a version below the one held has gone backwards.
   * Runs serialised per user.
   */
  async function refresh(k: string, tenantId: string, userId: string, head: GraphVersion, behind: boolean): Promise<UserGraph | null> {
    const { version, reset } = head;
    const g = loaded.get(k);
    const held = g?.version;
    // Current, or a few merges only since the version held (then read what they added).
    const current =
      g !== undefined &&
      (version === g.version ||
        (behind && version < g.version) ||
        (version > g.version && version - g.version <= maxCatchUp && reset <= g.version && (await catchUp(g, tenantId, userId))));
    if (!current) {
      loadInBackground(k, tenantId, userId);
      return null;
    }
    loaded.delete(k);
    loaded.set(k, g);
    // Caught up on others' merges: past the budget, the least recently used others go (as
    // this process's own merges do in embedded mode).
    if (g.version !== held) retention.enforce(loaded, k);
    return g;
  }

  async function load(k: string, entry: Load, tenantId: string, userId: string): Promise<UserGraph> {
    const g = await read(tenantId, userId);
    if (loading.get(k) === entry) loading.delete(k);
    if (entry.cancelled) return new UserGraph();
    for (const write of entry.writes) write(g);
    loaded.delete(k);
    loaded.set(k, g);
    admit(k);
    return g;
  }

  function graph(tenantId: string, userId: string, asOf?: GraphVersion): Promise<UserGraph | null> {
    const k = key(tenantId, userId);
    retention.use(k);
    if (shared) return sharedGraph(k, tenantId, userId, asOf);
    const have = loaded.get(k);
    if (have) {
      loaded.delete(k);
      loaded.set(k, have);
      return Promise.resolve(have);
    }
    let entry = loading.get(k);
    if (!entry) {
      const fresh: Load = { writes: [], cancelled: false, promise: Promise.resolve(new UserGraph()) };
      loading.set(k, fresh);
      fresh.promise = load(k, fresh, tenantId, userId);
      fresh.promise.catch(() => loading.get(k) === fresh && loading.delete(k));
      entry = fresh;
    }
    return entry.promise;
  }

  function apply(k: string, write: (g: UserGraph) => void): void {
    const g = loaded.get(k);
    if (g) write(g);
    loading.get(k)?.writes.push(write);
  }

  /** Forgets what the index holds for these users, so their next read loads them again. */
  function drop(keys: Iterable<string>): void {
    for (const k of keys) {
      loaded.delete(k);
      const l = loading.get(k);
      if (!l) continue;
      // What it read may predate the delete: it must not register, and the next read loads anew.
      l.cancelled = true;
      loading.delete(k);
    }
  }

  function tenantKeys(tenantId: string): string[] {
    const prefix = `${tenantId}\u0000`;
    return [...new Set([...loaded.keys(), ...loading.keys()])].filter((k) => k.startsWith(prefix));
  }

  return {
    adapter,

    ping: () => store.ping(),

    // Shared mode: a graph held is brought up to date by the rows the caller's first statement
    // reads after its version (GraphVersion.delta) instead of a catch-up read of its own.
    ...(shared
      ? {
          catchUpFrom(tenantId: string, userId: string) {
            const g = loaded.get(key(tenantId, userId));
            return g ? { since: g.version, maxMerges: maxCatchUp } : null;
          },
        }
      : {}),

    async merge(items) {
      if (shared) return store.merge(items); // the next read's version check finds it
      const byUser = new Map<string, GraphMerge[]>();
      for (const item of items) {
        const k = key(item.tenantId, item.userId);
        const list = byUser.get(k) ?? [];
        list.push(item);
        byUser.set(k, list);
      }
      try {
        await store.merge(items);
      } catch (e) {
        // Whether the statement committed is not known: the index must not guess.
        drop(byUser.keys());
        throw e;
      }
      for (const [k, list] of byUser) apply(k, (g) => g.merge(list));
      // A user grown past the budget by these merges stays; the least recently used others go.
      for (const k of byUser.keys()) if (loaded.has(k)) retention.enforce(loaded, k);
    },

    async messagesMentioning({ tenantId, userId, terms, limit, asOf }) {
      const wanted = cleanTerms(terms);
      if (wanted.length === 0 || limit <= 0) return [];
      const g = await graph(tenantId, userId, asOf);
      if (!g) return store.messagesMentioning({ tenantId, userId, terms, limit });
      const matched = g.matched(new Set(wanted));
      if (matched.length === 0) return [];
      if (matched.some((e) => weights[Math.max(e.mentions, 1)] === undefined)) {
        await readWeights(sql, matched.map((e) => Math.max(e.mentions, 1)));
      }
      return rankMentioning(
        matched.map((e) => ({ ords: g.ordsOf(e), weight: weights[Math.max(e.mentions, 1)]! })),
        g.ordinals,
        Math.floor(limit),
      );
    },

    async facts({ tenantId, userId, terms, limit, asOf }) {
      if (limit <= 0) return [];
      const wanted = cleanTerms(terms);
      if (terms.length > 0 && wanted.length === 0) return [];
      const g = await graph(tenantId, userId, asOf);
      if (!g) return store.facts({ tenantId, userId, terms, limit });
      const n = Math.floor(limit);
      if (n <= 0) return [];
      const picked = wanted.length > 0 ? g.relationsTouching(g.matched(new Set(wanted)), n) : g.strongestRelations(n);
      return g.describe(picked);
    },

    counts: (tenantId, userId) => store.counts(tenantId, userId),

    async deleteByMessages(tenantId, messageIds) {
      if (messageIds.length === 0 || shared) return store.deleteByMessages(tenantId, messageIds);
      try {
        await store.deleteByMessages(tenantId, messageIds);
      } catch (e) {
        drop(tenantKeys(tenantId));
        throw e;
      }
      const ids = [...new Set(messageIds)];
      for (const k of tenantKeys(tenantId)) apply(k, (g) => g.deleteMessages(ids));
    },

    async deleteByUser(tenantId, userId) {
      try {
        await store.deleteByUser(tenantId, userId);
      } finally {
        drop([key(tenantId, userId)]);
      }
    },

    async loads() {
      while (wholeLoads.size) await Promise.all(wholeLoads.values());
    },

    async close() {
      await this.loads();
      loaded.clear();
      await store.close();
    },
  };
}
