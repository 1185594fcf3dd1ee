// One user's turns as a BM25 corpus, in memory. Postgres' ts_rank has no notion of how
// common a word is in the collection: in a two-person chat a speaker's name is in half the
// turns and ranks as high as the one rare word that names the topic. BM25's inverse
// document frequency weighs a word by how few turns hold it, which is what decides
// keyword recall over chat (bench/retrieval.ts measures the difference).
//
// The corpus also knows where each turn sits in its session (so a hit's neighbouring turns
// are a lookup, not a query), who said it and when: what the search service uses to add
// the reply after a matched question, favour the speaker a question names, and so on.

import { holdsAnswerType } from "./answer-type.ts";
import { terms } from "./text.ts";
import type { ScoredId } from "./types.ts";
import { denseSums, SUM_BLOCK_SHIFT, type DenseSums, type Resident } from "./bm25-sums.ts";
import { descending, ascending, select } from "./order.ts";
import { warmed } from "./warm.ts";

export interface CorpusDoc {
  id: string;
  sessionId: string;
  seq: number;
  /** Speaker name as stored (null when the message had none). */
  name: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
}

export interface Bm25Params {
  /** Term-frequency saturation: how much a second occurrence adds. */
  k1: number;
  /** Length normalisation: 0 ignores length, 1 divides fully by length relative to the mean. */
  b: number;
}

/** Robertson's defaults; chat turns are short and rarely repeat a word, so k1 matters little. */
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75 };

/** A turn as the corpus holds it (doc()): what was added, and what ranking reads of it. */
export interface CorpusTurn extends CorpusDoc {
  /** Its place in the corpus, while it is there (neighbourTurns finds its session's turns from it). */
  readonly slot: number;
  /** The turn asks something ("?"): the turn after it is likely its answer. */
  readonly asks: boolean;
  /** It says when something happened ("last week", "in May"). */
  readonly time: boolean;
  /** It states a number or an amount. */
  readonly quantity: boolean;
}

/** A search's hit, with the turn it is (no lookup by id needed to read it). */
export interface CorpusHit extends ScoredId {
  turn: CorpusTurn;
}

/**
 * A word of the corpus: its text and its postings (per slot, how often that turn says it). A
 * turn holds its words as these records, not as strings: feedback reads each word's count of
 * turns from the record a top hit holds, where a lookup by the word's text read the hit's own
 * copy of the string, the corpus' table and its key (about four cache misses a word in a
 * long-lived user's heap, for the hundred-odd words of a feedback's hits), and a turn keeps no
 * string of its own per word.
 */
interface Term {
  readonly text: string;
  /**
   * Its postings, two numbers each: a turn's slot, then how often that turn says the word; by
   * slot, increasing. As a Map of slot to count, the 100k-turn benchmark user's postings took
   * 160 MB of its heap (about 53 bytes each); as small integers in one array, 16 bytes and a
   * quarter's room. Sorted, they are packed for search (packedPostings) without a sort.
   *
   * A removed turn's posting keeps its slot with a count of 0 (`dead` counts them) until they
   * are half the postings, then all go at once (removePosting): taken out one by one, the
   * postings after each were moved, and removing a session of a 100k-turn user took 48 ms.
   */
  readonly postings: number[];
  dead: number;
}

/** How many turns hold the term. */
const docsOf = (t: Term) => (t.postings.length >> 1) - t.dead;

/** Index (of its slot) in `postings` of the first posting at a slot ≥ `slot` (the length when none). */
function postingAt(postings: readonly number[], slot: number): number {
  let lo = 0;
  let hi = postings.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (postings[2 * mid]! < slot) lo = mid + 1;
    else hi = mid;
  }
  return 2 * lo;
}

/** Records that the turn in `slot` says the term `tf` (≥ 1) times (the slot holds no live posting of it). */
function addPosting(t: Term, slot: number, tf: number): void {
  const postings = t.postings;
  const n = postings.length;
  // A new turn takes a slot past every other, unless a removal freed one.
  if (n === 0 || postings[n - 2]! < slot) {
    postings.push(slot, tf);
    return;
  }
  const at = postingAt(postings, slot);
  if (postings[at] === slot) {
    // The removed turn's posting, dead until now.
    postings[at + 1] = tf;
    t.dead--;
  } else postings.splice(at, 0, slot, tf);
}

/** Takes the slot's posting out of the term's (dead until half of them are). */
function removePosting(t: Term, slot: number): void {
  const postings = t.postings;
  const at = postingAt(postings, slot);
  if (postings[at] !== slot || postings[at + 1] === 0) return;
  postings[at + 1] = 0;
  t.dead++;
  if (2 * t.dead < postings.length >> 1) return;
  let kept = 0;
  for (let i = 0; i < postings.length; i += 2) {
    if (postings[i + 1] === 0) continue;
    postings[kept++] = postings[i]!;
    postings[kept++] = postings[i + 1]!;
  }
  postings.length = kept;
  t.dead = 0;
}

/**
 * A session's turns in the corpus, and the session's id: every turn of the session holds this
 * record and, as its sessionId, this one string. Its neighbours are found from the record with
 * no lookup by the session's id, and a Map keyed by the turns' sessions (the session prior's)
 * finds equal keys by identity rather than by reading each turn's own copy of the id.
 */
interface SessionTurns {
  readonly id: string;
  slots: number[];
  sorted: boolean;
}

interface Entry extends CorpusTurn {
  length: number;
  /** Its distinct words, in the order it first says them. */
  terms: Term[];
  /** Its session's turns (the corpus' record of them while it holds the turn). */
  session: SessionTurns;
}

/** Pseudo-relevance feedback: how many top turns to read, how many terms to add, at what weight. */
export interface FeedbackParams {
  docs: number;
  terms: number;
  /** Weight of the strongest added term relative to a query term (the others scale down from it). */
  weight: number;
  /** Words held by more than this share of the turns are not added (undefined: any word). */
  maxShare?: number;
}

/**
 * A term's postings packed for search: slots in increasing order with their term counts and
 * their turns' lengths, and per distinct term count the shortest turn holding the term that
 * often, from which the most the term can add to any turn's score follows for any length
 * normalisation. A turn added in a slot past the last one is appended (appendPosting), so a
 * chat's next turn does not unpack the postings of every word it says; `slots`, `tfs` and
 * `lens` are views of the first postings of `store`, which has room for more.
 */
interface Packed {
  slots: Int32Array;
  tfs: Float64Array;
  lens: Int32Array;
  store: { slots: Int32Array; tfs: Float64Array; lens: Int32Array };
  boundTfs: Float64Array;
  boundLengths: Float64Array;
  /**
   * Per posting, tf × (k1 + 1) / (tf + norm) of its turn (what every search adds times the
   * term's weight), for the length table of `impactsOf`; computed on first need.
   */
  impacts: Float64Array | null;
  impactsOf: number;
  /** Where the WebAssembly sums (bm25-sums.ts) hold a copy of the slots and impacts, if they do. */
  resident: Resident | null;
}

/**
 * Turn lengths below this take BM25's length terms from a table made per k1, b and average
 * length (Bm25Corpus.lengthTable); longer turns (pasted logs) compute theirs per posting.
 */
const LENGTH_TABLE = 4096;

/**
 * Room a term's postings are packed with: an eighth more than they hold (at least 8). The
 * chat's next turns are appended in it (appendPosting); packed to the posting, a common term's
 * arrays were copied into new ones twice their size by the first turn saying it after a load,
 * so each write allocated about a megabyte at 100k turns, and that garbage, counted as V8's
 * external memory, started a full collection of the heap every few dozen writes.
 */
function packedRoom(n: number): number {
  return n + Math.max(8, n >> 3);
}

/** Appends a posting in a slot past the postings' last; false when the slot is not past it (a reused slot). */
function appendPosting(p: Packed, slot: number, tf: number, length: number): boolean {
  const n = p.slots.length;
  if (n > 0 && slot <= p.slots[n - 1]!) return false;
  let { store } = p;
  if (n === store.slots.length) {
    const cap = Math.max(8, n * 2);
    const grown = { slots: new Int32Array(cap), tfs: new Float64Array(cap), lens: new Int32Array(cap) };
    grown.slots.set(store.slots);
    grown.tfs.set(store.tfs);
    grown.lens.set(store.lens);
    p.store = store = grown;
  }
  store.slots[n] = slot;
  store.tfs[n] = tf;
  store.lens[n] = length;
  p.slots = store.slots.subarray(0, n + 1);
  p.tfs = store.tfs.subarray(0, n + 1);
  p.lens = store.lens.subarray(0, n + 1);
  const at = p.boundTfs.indexOf(tf);
  if (at < 0) {
    p.boundTfs = Float64Array.of(...p.boundTfs, tf);
    p.boundLengths = Float64Array.of(...p.boundLengths, length);
  } else if (length < p.boundLengths[at]!) p.boundLengths[at] = length;
  // The impacts held stay right for the postings before it: impacts() computes the new one's.
  return true;
}

/** One searched term: its postings, its weight (IDF × query weight) and, when pruning, how much it can add. */
interface Cursor {
  p: Packed;
  /** The term's BM25 part per posting (Packed.impacts), for the current norms. */
  impacts: Float64Array;
  w: number;
  bound: number;
  /** Next posting to read, and the end of the current block's postings. */
  at: number;
  end: number;
  /** Read in full when pruning (not left out). */
  essential: boolean;
}

// Slots scored per block of a pruned search: the block's accumulators stay in cache.
const BLOCK = 1024;
// A turn is skipped only when its bound, scaled up by this, is still below the score to beat:
// bounds are summed in another order than scores, so each may round differently (by far less).
const BOUND_SLACK = 1 + 1e-9;

/**
 * The average turn length BM25 normalises by: the corpus's, on a grid of 1/256 of a doubling
 * (steps of 0.27%). Each change of the average makes every searched term's impacts be computed
 * again (Bm25Corpus.impacts), and a write moves a large user's exact average by a few
 * millionths: at 100k turns a common word's 75k impacts, and their copy for the sums, cost the
 * call after every write about a millisecond. On the grid the average moves once in hundreds
 * of writes there, and a score differs from the exact average's by under 0.1% (b × the step's
 * half). It depends on the corpus alone, so processes holding the same turns score them alike.
 */
export function gridAverage(avg: number): number {
  return 2 ** (Math.round(Math.log2(avg) * 256) / 256);
}

/** BM25's length normalisation of a turn of `length` words: k1 × (1 − b + b × length / avg). */
function lengthNorm(k1: number, b: number, avg: number, length: number): number {
  return k1 * (1 - b + (b * length) / avg);
}

/** A posting's BM25 part before its term's weight: tf × (k1 + 1) / (tf + norm), without the product for tf = 1 (the same number). */
function bm25Part(tf: number, k1: number, norm: number): number {
  return tf === 1 ? (k1 + 1) / (1 + norm) : (tf * (k1 + 1)) / (tf + norm);
}

/** First index in `a[from, to)` holding a value ≥ x (`to` when none). */
function lowerBound(a: Int32Array, x: number, from: number, to: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// searchExpanded's per-slot sums (zeroed again before it returns) and the slots it reached:
// one pair for every corpus, searches being synchronous.
let expandedScores = new Float64Array(0);
/** searchExpanded reads every slot's score instead of tracking those reached once its base terms' postings reach 1 / DENSE_SHARE of the slots. */
const DENSE_SHARE = 8;
/** The kernel keeps the blocks' bests while it adds the feedback words unless their postings reach 1 / KEEP_MAXES_SHARE of the slots. */
const KEEP_MAXES_SHARE = 4;
let expandedReached = new Int32Array(0);
/**
 * searchExpanded's dense sums also keep each block of 2^MAX_SHIFT slots' best sum so far
 * (expandedBlockMax, zeroed again with the sums): bestReached then reads only the blocks whose
 * best can still reach the `limit` best, instead of every slot.
 */
const MAX_SHIFT = SUM_BLOCK_SHIFT;
let expandedBlockMax = new Float64Array(0);
let blockMaxCopy = new Float64Array(0);
// bestReached's candidates: slots scoring at least its floor, and a copy of their scores to
// find the next floor in.
let candidateSlots = new Int32Array(256);
let candidateScores = new Float64Array(256);

/**
 * bestReached's floor rise over the `held` candidates (candidateSlots, full): the floor becomes
 * the `limit`-th best of their scores and those below it go. When ties on it keep more than
 * half, the buffers double rather than rise again at once.
 */
function raiseFloor(scores: Float64Array, held: number, limit: number): { held: number; floor: number } {
  const copy = candidateScores.subarray(0, held);
  for (let i = 0; i < held; i++) copy[i] = scores[candidateSlots[i]!]!;
  const floor = select(copy, held - limit);
  let kept = 0;
  for (let i = 0; i < held; i++) {
    const slot = candidateSlots[i]!;
    if (scores[slot]! >= floor) candidateSlots[kept++] = slot;
  }
  if (kept * 2 > candidateSlots.length) {
    const slots = new Int32Array(candidateSlots.length * 2);
    slots.set(candidateSlots.subarray(0, kept));
    candidateSlots = slots;
    candidateScores = new Float64Array(slots.length);
  }
  return { held: kept, floor };
}

/** The words a turn is indexed by: its speaker's name and its content, stemmed, stopwords out. */
export function docTerms(name: string | null, content: string): string[] {
  return terms(name ? `${name} ${content}` : content);
}

export class Bm25Corpus {
  // Slots are reused after removal, so a long-lived corpus does not grow without bound.
  private readonly entries: (Entry | undefined)[] = [];
  private readonly free: number[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly postings = new Map<string, Term>();
  private readonly sessions = new Map<string, SessionTurns>();
  private readonly speakerCounts = new Map<string, number>();
  private totalLength = 0;
  /** Per-slot score accumulator reused by search() (zeroed again before it returns). */
  private scratch = new Float64Array(0);
  /**
   * Searched terms' postings packed into arrays (a Map's iteration cost most of a search);
   * a turn added past the last slot is appended to its terms' entries (appendPosting); a
   * term's entry is dropped when a turn holding it is removed or added in a reused slot, and
   * packed again by the next search that needs it.
   */
  private readonly packed = new Map<string, Packed>();
  /** packSome's place among the terms, between its calls. */
  private packWalk: MapIterator<[string, Term]> | null = null;
  /** Bumped each time the table below is computed anew (Packed.impactsOf). */
  private normVersion = 0;
  /**
   * Per turn length below LENGTH_TABLE, for `normKey`'s k1, b and average length: BM25's length
   * term k1 × (1 − b + b × length / avg) (`norms`), and what a term found once in such a turn
   * scores before its weight, (k1 + 1) / (1 + norm) (`units`: the same number as
   * tf × (k1 + 1) / (tf + norm) for tf = 1, without a division per posting; chat turns rarely
   * repeat a word). Per length rather than per slot: a turn added moves the average, and a
   * table is remade in a few microseconds where every slot's norm took milliseconds at 100k turns.
   */
  private norms = new Float64Array(LENGTH_TABLE);
  private units = new Float64Array(LENGTH_TABLE);
  private normKey = "";
  /** Per slot, its turn's createdAt: what breaks ties between equal scores (TopK), without reaching into each entry. */
  private times = new Float64Array(0);

  /** Turns in the corpus. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Adds a turn, or replaces the turn with the same id. */
  add(doc: CorpusDoc, content: string): void {
    if (this.slotOf.has(doc.id)) this.remove(doc.id);
    const list = docTerms(doc.name, content);
    const tf = new Map<string, number>();
    for (const t of list) tf.set(t, (tf.get(t) ?? 0) + 1);
    const slot = this.free.pop() ?? this.entries.length;
    const held: Term[] = [];
    if (slot >= this.times.length) {
      const grown = new Float64Array(Math.max(1024, this.times.length * 2));
      grown.set(this.times);
      this.times = grown;
    }
    this.times[slot] = doc.createdAt;
    let s = this.sessions.get(doc.sessionId);
    if (!s) this.sessions.set(doc.sessionId, (s = { id: doc.sessionId, slots: [], sorted: true }));
    const last = s.slots[s.slots.length - 1];
    if (last !== undefined && this.entries[last]!.seq > doc.seq) s.sorted = false;
    s.slots.push(slot);
    this.entries[slot] = {
      ...doc,
      sessionId: s.id,
      session: s,
      slot,
      length: list.length,
      terms: held,
      asks: content.includes("?"),
      time: holdsAnswerType(content, "time"),
      quantity: holdsAnswerType(content, "quantity"),
    };
    this.slotOf.set(doc.id, slot);
    this.totalLength += list.length;
    for (const [t, n] of tf) {
      let p = this.postings.get(t);
      if (!p) this.postings.set(t, (p = { text: t, postings: [], dead: 0 }));
      addPosting(p, slot, n);
      held.push(p);
      const packed = this.packed.get(t);
      if (packed && !appendPosting(packed, slot, n, list.length)) this.packed.delete(t);
    }
    if (doc.name) {
      const key = doc.name.toLowerCase();
      this.speakerCounts.set(key, (this.speakerCounts.get(key) ?? 0) + 1);
    }
  }

  /** Removes a turn; unknown ids are ignored. */
  remove(id: string): void {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return;
    const e = this.entries[slot]!;
    for (const p of e.terms) {
      removePosting(p, slot);
      if (docsOf(p) === 0) this.postings.delete(p.text);
      this.packed.delete(p.text);
    }
    const s = e.session;
    s.slots.splice(s.slots.indexOf(slot), 1);
    if (s.slots.length === 0) this.sessions.delete(s.id);
    if (e.name) {
      const key = e.name.toLowerCase();
      const n = (this.speakerCounts.get(key) ?? 1) - 1;
      if (n > 0) this.speakerCounts.set(key, n);
      else this.speakerCounts.delete(key);
    }
    this.totalLength -= e.length;
    this.slotOf.delete(id);
    this.entries[slot] = undefined;
    this.free.push(slot);
  }

  /** Removes every turn of a session. */
  removeSession(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    if (!s) return;
    for (const slot of [...s.slots]) this.remove(this.entries[slot]!.id);
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  doc(id: string): CorpusTurn | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.entries[slot];
  }

  /** Lower-cased speaker names with how many turns each said. */
  speakers(): ReadonlyMap<string, number> {
    return this.speakerCounts;
  }

  /** How many turns hold the (stemmed) term. */
  docFrequency(term: string): number {
    const t = this.postings.get(term);
    return t === undefined ? 0 : docsOf(t);
  }

  /** The postings of the terms together: docFrequency summed over them. */
  private postingsOf(terms: readonly string[]): number {
    let n = 0;
    for (const t of terms) n += this.docFrequency(t);
    return n;
  }

  /**
   * Packs the postings of terms held by at least `minDocs` turns that no search has packed yet,
   * about `maxPostings` postings' worth per call; true once every term was looked at. A search
   * packs a term on first need, which for a common word of a large user costs a search more
   * than the rest of its work on that word: run between requests after a load, this spares the
   * first searches. Each call goes on where the last stopped (terms added meanwhile included).
   */
  packSome(maxPostings: number, minDocs: number): boolean {
    const walk = (this.packWalk ??= this.postings.entries());
    let done = 0;
    while (done < maxPostings) {
      const next = walk.next();
      if (next.done) {
        this.packWalk = null;
        return true;
      }
      const [term, p] = next.value;
      if (docsOf(p) < minDocs || this.packed.has(term)) continue;
      this.packedPostings(term);
      done += docsOf(p);
    }
    return false;
  }

  /** Inverse document frequency of a stemmed term (BM25's, never negative). */
  idf(term: string): number {
    return this.idfOf(this.docFrequency(term));
  }

  /** idf() of a term held by `df` turns. */
  private idfOf(df: number): number {
    const n = this.size;
    return Math.log(1 + (n - df + 0.5) / (df + 0.5));
  }

  /** The term's postings as arrays of slots (increasing) and term counts, with what bounds its contribution. */
  private packedPostings(term: string): Packed | undefined {
    let packed = this.packed.get(term);
    if (packed) return packed;
    const t = this.postings.get(term);
    if (!t) return undefined;
    const p = t.postings;
    const n = docsOf(t);
    const room = packedRoom(n);
    const store = { slots: new Int32Array(room), tfs: new Float64Array(room), lens: new Int32Array(room) };
    const slots = store.slots.subarray(0, n);
    const tfs = store.tfs.subarray(0, n);
    const lens = store.lens.subarray(0, n);
    const shortest = new Map<number, number>();
    for (let j = 0, i = 0; i < n; j += 2) {
      const tf = p[j + 1]!;
      if (tf === 0) continue; // a removed turn's
      const slot = p[j]!;
      const length = this.entries[slot]!.length;
      slots[i] = slot;
      lens[i] = length;
      tfs[i++] = tf;
      const had = shortest.get(tf);
      if (had === undefined || length < had) shortest.set(tf, length);
    }
    packed = {
      slots,
      tfs,
      lens,
      store,
      boundTfs: Float64Array.from(shortest.keys()),
      boundLengths: Float64Array.from(shortest.values()),
      impacts: null,
      impactsOf: -1,
      resident: null,
    };
    this.packed.set(term, packed);
    return packed;
  }

  /** Makes the length table (`norms`, `units`) for k1, b and the average length, unless it is that one already. */
  private lengthTable(k1: number, b: number, avg: number): void {
    const key = `${k1} ${b} ${avg}`;
    if (key === this.normKey) return;
    this.normVersion++;
    for (let length = 0; length < LENGTH_TABLE; length++) {
      const norm = lengthNorm(k1, b, avg, length);
      this.norms[length] = norm;
      this.units[length] = bm25Part(1, k1, norm);
    }
    this.normKey = key;
  }

  /**
   * The best `limit` turns for the query, BM25-scored. `queryTerms` are stemmed terms
   * (repeats count once); `weights` may scale a term's contribution (1 when absent).
   * Ties go to the newer turn.
   */
  search(
    queryTerms: readonly string[],
    options: {
      limit: number;
      sessionId?: string;
      params?: Bm25Params;
      weights?: ReadonlyMap<string, number>;
      /** Only turns this accepts. */
      filter?: (doc: CorpusDoc) => boolean;
      /**
       * Score every turn holding a query term (the reference the pruned search is tested
       * against) instead of skipping turns that cannot reach the best `limit`. Same answer.
       */
      exhaustive?: boolean;
    },
  ): CorpusHit[] {
    const { k1, b } = options.params ?? DEFAULT_BM25;
    const n = this.size;
    if (n === 0 || options.limit <= 0) return [];
    const avg = gridAverage(this.totalLength / n || 1);
    this.lengthTable(k1, b, avg);
    // The searched terms in query order: every turn adds its terms' contributions in this
    // order, whichever way it is scored, so its score is the same number.
    const cursors: Cursor[] = [];
    let prunable = !options.exhaustive;
    for (const term of new Set(queryTerms)) {
      const p = this.packedPostings(term);
      if (!p) continue;
      const w = (options.weights?.get(term) ?? 1) * this.idf(term);
      if (w === 0) continue;
      if (!(w > 0) || !Number.isFinite(w)) prunable = false;
      cursors.push({ p, impacts: this.impacts(p, k1, b, avg), w, bound: 0, at: 0, end: 0, essential: true });
    }
    const heap = new TopK(options.limit, this.times);
    const accept = (slot: number): boolean => {
      const e = this.entries[slot]!;
      return (options.sessionId === undefined || e.sessionId === options.sessionId) && (!options.filter || options.filter(e));
    };
    if (prunable && cursors.length > 1) this.scorePruned(cursors, heap, k1, b, avg, accept);
    else this.scoreAll(cursors, heap, accept);
    return this.hitsOf(heap);
  }

  /** Every turn holding a query term, term by term into one score per slot. */
  private scoreAll(cursors: Cursor[], heap: TopK, accept: (slot: number) => boolean): void {
    // Scores in a dense array by slot (a Map cost most of a search over a 10k-turn user).
    if (this.scratch.length < this.entries.length) this.scratch = new Float64Array(Math.max(this.entries.length, this.scratch.length * 2));
    const scores = this.scratch;
    const touched: number[] = [];
    for (const { p, impacts, w } of cursors) {
      const { slots } = p;
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i]!;
        if (scores[slot] === 0) touched.push(slot);
        scores[slot] = scores[slot]! + w * impacts[i]!;
      }
    }
    for (const slot of touched) {
      const score = scores[slot]!;
      scores[slot] = 0;
      if ((!heap.full || score >= heap.worstScore) && accept(slot)) heap.offer(slot, score);
    }
  }

  /**
   * MaxScore over blocks of slots: each term's bound is the most it adds to any turn (its
   * weight × its best term count and length pair). Once the best `limit` so far are found,
   * the terms of smallest bounds whose bounds sum below the limit-th score cannot lift a turn
   * that holds none of the other terms into them: only the other ("essential") terms' postings
   * are read, and a turn they reach is scored in full (each term's count found by binary
   * search) only when its essential part plus those bounds can still reach the limit-th score.
   * The limit-th score only rises, so a term once left out stays out. A full score is summed
   * in query order as scoreAll sums it: the same number, and the same best `limit`. Where the
   * bounds prune little (every query word common, as in a small vocabulary) most reached
   * turns would need the lookups, and a block is then scored exhaustively instead, as
   * scoreAll does, until more terms are left out.
   */
  private scorePruned(cursors: Cursor[], heap: TopK, k1: number, b: number, avg: number, accept: (slot: number) => boolean): void {
    for (const c of cursors) {
      const { boundTfs, boundLengths } = c.p;
      let most = 0;
      for (let i = 0; i < boundTfs.length; i++) {
        const tf = boundTfs[i]!;
        const v = bm25Part(tf, k1, lengthNorm(k1, b, avg, boundLengths[i]!));
        if (v > most) most = v;
      }
      c.bound = c.w * most;
    }
    // Terms by bound, smallest first; below[i]: the bounds of the first i summed.
    const byBound = [...cursors].sort((x, y) => ascending(x.bound, y.bound));
    const below = new Float64Array(byBound.length + 1);
    for (let i = 0; i < byBound.length; i++) below[i + 1] = below[i]! + byBound[i]!.bound;
    let left = 0; // how many of byBound are left out
    for (const c of byBound) c.essential = true;
    if (this.scratch.length < BLOCK) this.scratch = new Float64Array(BLOCK);
    const acc = this.scratch;
    // The block's slots reached, in a typed array (a JS array emptied and refilled per block
    // cost more than the sums).
    const touched = new Int32Array(BLOCK);
    let reached = 0;
    const end = this.entries.length;
    /** The slot's full score, each term's count found by binary search in its postings of the block. */
    const exact = (slot: number): number => {
      let score = 0;
      for (const c of cursors) {
        const { slots } = c.p;
        const i = lowerBound(slots, slot, c.at, c.end);
        if (i === c.end || slots[i] !== slot) continue;
        score = score + c.w * c.impacts[i]!;
      }
      return score;
    };
    // Of the turns the essential terms reached in the last pruned block, the share scored in
    // full: when most are, looking their terms up costs more than reading every posting, and
    // blocks are scored exhaustively until more terms are left out.
    let fullShare = 0;
    let triedAt = -1;
    for (let lo = 0; lo < end; lo += BLOCK) {
      const hi = Math.min(end, lo + BLOCK);
      for (const c of cursors) c.end = lowerBound(c.p.slots, hi, c.at, c.p.slots.length);
      const pruned = left > 0 && (fullShare < 0.1 || left > triedAt);
      // In query order: every term (exhaustive block), or the essential ones.
      for (const c of cursors) {
        if (pruned && !c.essential) continue;
        const { slots } = c.p;
        const { impacts, w } = c;
        for (let i = c.at; i < c.end; i++) {
          const slot = slots[i]!;
          const at = slot - lo;
          if (acc[at] === 0) touched[reached++] = slot;
          acc[at] = acc[at]! + w * impacts[i]!;
        }
      }
      if (!pruned) {
        // Every term was read in query order: the sums are the full scores.
        for (let t = 0; t < reached; t++) {
          const slot = touched[t]!;
          const score = acc[slot - lo]!;
          acc[slot - lo] = 0;
          if ((!heap.full || score >= heap.worstScore) && accept(slot)) heap.offer(slot, score);
        }
      } else {
        const rest = below[left]!;
        let full = 0;
        for (let t = 0; t < reached; t++) {
          const slot = touched[t]!;
          const partial = acc[slot - lo]!;
          acc[slot - lo] = 0;
          if (heap.full && (partial + rest) * BOUND_SLACK < heap.worstScore) continue;
          if (!accept(slot)) continue;
          full++;
          heap.offer(slot, exact(slot));
        }
        fullShare = reached ? full / reached : 0;
        triedAt = left;
      }
      reached = 0;
      for (const c of cursors) c.at = c.end;
      // Leave out more terms while their bounds still sum below the score to beat.
      if (heap.full) {
        while (left < byBound.length - 1 && below[left + 1]! * BOUND_SLACK < heap.worstScore) byBound[left++]!.essential = false;
      }
    }
  }

  /**
   * Pseudo-relevance feedback (RM3-like): the query's terms plus the `terms` words most
   * characteristic of its first `docs` hits (each hit's distinct words weighed by its score
   * relative to the best, the word's IDF, and one over the hit's length), weighted down so
   * the strongest added word counts `weight` of a query word. In a chat the words around
   * a topic ("adoption" → "agency", "interview") recur in the turns that discuss it, which
   * brings in evidence that shares no word with the question.
   */
  expand(
    queryTerms: readonly string[],
    options: FeedbackParams & { sessionId?: string; params?: Bm25Params },
  ): { terms: string[]; weights: Map<string, number> } {
    const base = [...new Set(queryTerms)];
    const weights = new Map<string, number>();
    if (options.docs <= 0 || options.terms <= 0 || options.weight <= 0) return { terms: base, weights };
    const first = this.search(base, { limit: options.docs, sessionId: options.sessionId, params: options.params });
    return this.feedback(base, first, options);
  }

  /** expand()'s added terms and their weights, from the base query's first hits. */
  private feedback(base: string[], first: readonly CorpusHit[], options: FeedbackParams): { terms: string[]; weights: Map<string, number> } {
    const weights = new Map<string, number>();
    const top = first[0]?.score;
    if (!top) return { terms: base, weights };
    // The base words' records: a hit's words are told from them by identity, not by text.
    const have = new Set<Term>();
    for (const t of base) {
      const p = this.postings.get(t);
      if (p) have.add(p);
    }
    const mass = new Map<Term, number>();
    const maxDocs = options.maxShare === undefined ? Infinity : options.maxShare * this.size;
    // Each word's idf (as idf() computes it), or -1 for a word held too widely: computed once
    // though several of the hits hold it.
    const idfs = new Map<Term, number>();
    for (const hit of first) {
      const e = hit.turn as Entry;
      for (const t of e.terms) {
        if (have.has(t)) continue;
        let idf = idfs.get(t);
        if (idf === undefined) {
          const df = docsOf(t);
          idfs.set(t, (idf = df > maxDocs ? -1 : this.idfOf(df)));
        }
        if (idf < 0) continue;
        mass.set(t, (mass.get(t) ?? 0) + ((hit.score / top) * idf) / Math.max(1, e.length));
      }
    }
    const picked = [...mass.entries()]
      .map(([t, m]) => [t.text, m] as const)
      .sort((a, b) => descending(a[1], b[1]) || (a[0] < b[0] ? -1 : 1))
      .slice(0, options.terms);
    const strongest = picked[0]?.[1] ?? 0;
    if (strongest <= 0) return { terms: base, weights };
    for (const [t, m] of picked) weights.set(t, (options.weight * m) / strongest);
    return { terms: [...base, ...picked.map(([t]) => t)], weights };
  }

  /**
   * expand(), then search() with the expanded query and its weights: the same terms, weights
   * and hits. Every turn's score for the base query is summed per slot, as scoreAll does (the
   * feedback hits are the best of them), and the expanded query's scores are those sums plus
   * the added terms' postings, in the same order of additions as search() (so the same
   * numbers): each posting is read once, instead of the base terms' twice over two pruned
   * searches. With a context call's query (an implicit query of 32 words, most common in a
   * long-lived user's turns) pruning read most postings anyway: at 100k turns this takes
   * ~4 ms where expand() and search() took ~11 (bench/context.ts's user), and short search
   * queries ~2.5 ms instead of ~4.5.
   */
  searchExpanded(
    queryTerms: readonly string[],
    options: FeedbackParams & { limit: number; sessionId?: string; params?: Bm25Params },
  ): { terms: string[]; weights: Map<string, number>; hits: CorpusHit[] } {
    const base = [...new Set(queryTerms)];
    const n = this.size;
    const { k1, b } = options.params ?? DEFAULT_BM25;
    const off = options.docs <= 0 || options.terms <= 0 || options.weight <= 0;
    if (off || n === 0 || options.limit <= 0) {
      const { terms, weights } = off ? { terms: base, weights: new Map<string, number>() } : this.expand(base, options);
      return { terms, weights, hits: this.search(terms, { limit: options.limit, sessionId: options.sessionId, params: options.params, weights }) };
    }
    const avg = gridAverage(this.totalLength / n || 1);
    this.lengthTable(k1, b, avg);
    const end = this.entries.length;
    // Which turns were reached is tracked only when few will be: over most of the corpus, a
    // test per posting of whether its turn was reached already (a branch the CPU cannot
    // predict) cost three times the sums, and reading every slot's score once costs less.
    const reach = this.postingsOf(base);
    const dense = reach * DENSE_SHARE >= end;
    // Dense sums in WebAssembly where it runs (bm25-sums.ts) and the base terms reach enough
    // postings to pay for its copies and passes: the same numbers, and the blocks' bests from a
    // pass over the sums before each top-k scan instead of a test per posting.
    const sums = dense ? denseSums() : null;
    const wasm = sums && reach >= sums.limits.minPostings ? sums : null;
    if (wasm) wasm.reserve(end);
    if (expandedScores.length < end) {
      expandedScores = new Float64Array(Math.max(end, expandedScores.length * 2));
      expandedReached = new Int32Array(expandedScores.length);
      expandedBlockMax = new Float64Array((expandedScores.length >> MAX_SHIFT) + 1);
      blockMaxCopy = new Float64Array(expandedBlockMax.length);
    }
    const scores = expandedScores;
    const blockMax = expandedBlockMax;
    const touched = expandedReached;
    let count = 0;
    /**
     * Adds the term's contributions (weight × its BM25 part) to every slot holding it; with
     * `keepMaxes`, the kernel raises each block's best as it adds (see best()).
     */
    const add = (term: string, weight: number | undefined, keepMaxes = false): void => {
      const p = this.packedPostings(term);
      if (!p) return;
      const w = (weight ?? 1) * this.idf(term);
      if (w === 0) return;
      const { slots } = p;
      const impacts = this.impacts(p, k1, b, avg);
      if (wasm) wasm.add(p, impacts, w, keepMaxes);
      else if (dense) {
        for (let i = 0; i < slots.length; i++) {
          const slot = slots[i]!;
          const s = scores[slot]! + w * impacts[i]!;
          scores[slot] = s;
          const k = slot >> MAX_SHIFT;
          if (s > blockMax[k]!) blockMax[k] = s;
        }
      } else {
        for (let i = 0; i < slots.length; i++) {
          const slot = slots[i]!;
          if (scores[slot] === 0) touched[count++] = slot;
          scores[slot] = scores[slot]! + w * impacts[i]!;
        }
      }
    };
    /** The best `limit` turns by the sums so far; `maxesKept`: the kernel kept the blocks' bests as it added since the last pass. */
    const best = (limit: number, maxesKept: boolean): CorpusHit[] => {
      if (!wasm) return this.bestReached(scores, dense ? null : touched.subarray(0, count), end, limit, options.sessionId, blockMax);
      if (!maxesKept) wasm.blockMaxes(end);
      // The memory may have grown while postings were copied: its views are read after the adds.
      return this.bestReached(wasm.scores, null, end, limit, options.sessionId, wasm.blockMax, wasm);
    };
    try {
      for (const t of base) add(t, undefined);
      const { terms, weights } = this.feedback(base, best(options.docs, false), options);
      const added = terms.slice(base.length);
      // The added words are rarer than the query's own (a 100k-turn user's context call adds
      // about 7k postings to the base's 140k): raising each one's block best as the kernel adds
      // it costs less than a second pass over every block's sums, unless they reach a
      // 1 / KEEP_MAXES_SHARE of the slots.
      const keepMaxes = wasm !== null && this.postingsOf(added) * KEEP_MAXES_SHARE < end;
      for (const t of added) add(t, weights.get(t), keepMaxes);
      return { terms, weights, hits: best(options.limit, keepMaxes) };
    } finally {
      // The kernel's blocks' bests need no zeroing: its pass rewrites every block a scan reads.
      if (wasm) wasm.scores.fill(0, 0, end);
      else if (dense) {
        scores.fill(0, 0, end);
        blockMax.fill(0, 0, (end >> MAX_SHIFT) + 1);
      } else for (let i = 0; i < count; i++) scores[touched[i]!] = 0;
    }
  }

  /**
   * The best `limit` turns by `scores` (per slot; every weight and impact is positive, so a
   * reached turn scores above 0 and one not reached 0): of the slots `reached` names, or of
   * every slot below `end` when it is null. A method rather than a closure made per search:
   * V8 optimised a fresh closure's loop over 100k slots anew on each call.
   *
   * Over 100k slots a heap offer per slot above the heap's worst cost more than the scan: the
   * scan keeps the slots scoring at least a floor, and each time its buffer (at least
   * 4 × `limit`) is full the floor rises to the `limit`-th best score among them and those
   * below it go. A slot below the floor has at least `limit` others scoring at the floor or
   * above, so it cannot be among the best whatever the ties; what is left is put in order by
   * the heap (TopK's total order). Without a session to keep to, every slot is read only in
   * the blocks whose best (`blockMax`, per block of 2^MAX_SHIFT slots, kept by searchExpanded's
   * dense sums) reaches the floor, and the floor starts at the limit-th best of those bests:
   * on the growth user of 100k turns, 10.7k slots a scan on average rather than 100k.
   */
  private bestReached(scores: Float64Array, reached: Int32Array | null, end: number, limit: number, sessionId: string | undefined, blockMax: Float64Array, kernel: DenseSums | null = null): CorpusHit[] {
    if (limit <= 0) return [];
    const entries = this.entries;
    if (candidateSlots.length < 4 * limit) {
      candidateSlots = new Int32Array(4 * limit);
      candidateScores = new Float64Array(4 * limit);
    }
    let buf = candidateSlots;
    let held = 0;
    // Above 0 until the first rise: a slot not reached is not a hit.
    let floor = Number.MIN_VALUE;
    const n = reached ? reached.length : end;
    if (reached === null && sessionId === undefined) {
      // Each block's best is the sum of one slot of its own: the limit-th best of the blocks'
      // bests is a floor (at least `limit` slots score at it or above), and a block whose best
      // is below the floor holds no slot to keep.
      const blocks = (n >> MAX_SHIFT) + 1;
      if (blocks > limit) {
        const copy = blockMaxCopy.subarray(0, blocks);
        copy.set(blockMax.subarray(0, blocks));
        floor = Math.max(floor, select(copy, blocks - limit));
      }
      for (let k = 0; k < blocks; k++) {
        if (blockMax[k]! < floor) continue;
        if (kernel) {
          // The kernel finds the block's slots at the floor as it was (`scores` are its own):
          // the floor may rise on the way through them, and is tested again as below.
          const found = kernel.above(k, n, floor);
          const slots = kernel.found;
          for (let i = 0; i < found; i++) {
            const slot = slots[i]!;
            if (scores[slot]! < floor) continue;
            buf[held++] = slot;
            if (held === buf.length) {
              ({ held, floor } = raiseFloor(scores, held, limit));
              buf = candidateSlots;
            }
          }
          continue;
        }
        const hi = Math.min(n, (k + 1) << MAX_SHIFT);
        for (let slot = k << MAX_SHIFT; slot < hi; slot++) {
          if (scores[slot]! < floor) continue;
          buf[held++] = slot;
          if (held === buf.length) {
            ({ held, floor } = raiseFloor(scores, held, limit));
            buf = candidateSlots;
          }
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        const slot = reached ? reached[i]! : i;
        if (scores[slot]! < floor) continue;
        if (sessionId !== undefined && entries[slot]!.sessionId !== sessionId) continue;
        buf[held++] = slot;
        if (held === buf.length) {
          ({ held, floor } = raiseFloor(scores, held, limit));
          buf = candidateSlots;
        }
      }
    }
    const heap = new TopK(limit, this.times);
    for (let i = 0; i < held; i++) {
      const slot = buf[i]!;
      heap.offer(slot, scores[slot]!);
    }
    return this.hitsOf(heap);
  }

  private hitsOf(heap: TopK): CorpusHit[] {
    return heap.sorted().map((h) => {
      const turn = this.entries[h.slot]!;
      return { id: turn.id, score: h.score, turn };
    });
  }

  /**
   * The term's impacts (Packed.impacts) for the current length table (lengthTable for k1, b and
   * avg): per posting its BM25 part before the term's weight, tf × (k1 + 1) / (tf + norm) with
   * norm = k1 × (1 − b + b × length / avg), read as (k1 + 1) / (1 + norm) from `units` for
   * tf = 1 (the same number without a division). Every scoring path adds weight × impact, so a
   * turn's score is the same number whichever computes it; computed once per term and corpus
   * state instead of once per search, from the postings' own lengths (read in order).
   */
  private impacts(p: Packed, k1: number, b: number, avg: number): Float64Array {
    const { slots, tfs, lens } = p;
    const n = slots.length;
    // Postings appended since (appendPosting) under the same length table: only theirs are
    // computed, after the ones held (at 100k turns a common word holds 75k, and a turn written
    // says it again).
    const held = p.impacts && p.impactsOf === this.normVersion && p.impacts.length <= n ? p.impacts.length : 0;
    if (p.impacts && held === n) return p.impacts;
    const { norms, units } = this;
    const out = p.impacts && p.impacts.buffer.byteLength >= n * 8 ? new Float64Array(p.impacts.buffer, 0, n) : new Float64Array(p.store.slots.length).subarray(0, n);
    if (held > 0 && out.buffer !== p.impacts!.buffer) out.set(p.impacts!);
    for (let i = held; i < n; i++) {
      const tf = tfs[i]!;
      const length = lens[i]!;
      out[i] = length < LENGTH_TABLE ? (tf === 1 ? units[length]! : bm25Part(tf, k1, norms[length]!)) : bm25Part(tf, k1, lengthNorm(k1, b, avg, length));
    }
    p.impacts = out;
    p.impactsOf = this.normVersion;
    return out;
  }

  /**
   * The turns within `radius` places of `id` in its session, nearest first, alternating
   * after/before ("after" first: a question's answer follows it). Empty for unknown ids.
   */
  neighbours(id: string, radius: number): { id: string; offset: number }[] {
    const turn = this.doc(id);
    return turn ? this.neighbourTurns(turn, radius).map((n) => ({ id: n.turn.id, offset: n.offset })) : [];
  }

  /**
   * Reads ahead what neighbourTurns() first reads for each of these turns, its session's record
   * and list, so that the CPU fetches them together rather than one turn after another
   * (warm.ts).
   */
  warmSessions(turns: readonly CorpusTurn[]): void {
    let chars = 0;
    for (let i = 0; i < turns.length; i++) chars += (turns[i] as Entry).session.slots.length;
    warmed.chars += chars;
  }

  /** As neighbours(), from a turn doc() found (no lookup by id); empty for a turn no longer held. */
  neighbourTurns(turn: CorpusTurn, radius: number): { turn: CorpusTurn; offset: number }[] {
    const slot = turn.slot;
    if (this.entries[slot] !== turn || radius <= 0) return [];
    const s = (turn as Entry).session;
    if (!s.sorted) {
      s.slots.sort((x, y) => this.entries[x]!.seq - this.entries[y]!.seq);
      s.sorted = true;
    }
    const at = s.slots.indexOf(slot);
    const out: { turn: CorpusTurn; offset: number }[] = [];
    for (let d = 1; d <= radius; d++) {
      const after = s.slots[at + d];
      if (after !== undefined) out.push({ turn: this.entries[after]!, offset: d });
      const before = s.slots[at - d];
      if (before !== undefined) out.push({ turn: this.entries[before]!, offset: -d });
    }
    return out;
  }

}

/** The best `limit` slots by (score desc, newer first, higher slot first): a total order, so the result does not depend on the order slots are offered in. */
class TopK {
  private readonly slots: number[] = [];
  private readonly scores: number[] = [];
  private readonly limit: number;
  private readonly times: Float64Array;
  constructor(limit: number, times: Float64Array) {
    this.limit = limit;
    this.times = times;
  }

  get full(): boolean {
    return this.slots.length >= this.limit;
  }

  /** The score of the worst of the best so far (meaningful once full). */
  get worstScore(): number {
    return this.scores[0]!;
  }

  private better(xs: number, xSlot: number, ys: number, ySlot: number): boolean {
    if (xs !== ys) return xs > ys;
    const xt = this.times[xSlot]!;
    const yt = this.times[ySlot]!;
    return xt > yt || (xt === yt && xSlot > ySlot);
  }

  offer(slot: number, score: number): void {
    const { slots, scores } = this;
    // Min-heap on `better`: the root is the worst of the best so far.
    if (slots.length < this.limit) {
      let c = slots.length;
      slots.push(slot);
      scores.push(score);
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.better(scores[p]!, slots[p]!, score, slot)) break;
        slots[c] = slots[p]!;
        scores[c] = scores[p]!;
        c = p;
      }
      slots[c] = slot;
      scores[c] = score;
    } else if (this.better(score, slot, scores[0]!, slots[0]!)) {
      let c = 0;
      const size = slots.length;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= size) break;
        const r = l + 1;
        const w = r < size && this.better(scores[l]!, slots[l]!, scores[r]!, slots[r]!) ? r : l;
        if (!this.better(score, slot, scores[w]!, slots[w]!)) break;
        slots[c] = slots[w]!;
        scores[c] = scores[w]!;
        c = w;
      }
      slots[c] = slot;
      scores[c] = score;
    }
  }

  /** Best first. */
  sorted(): { slot: number; score: number }[] {
    const hits = this.slots.map((slot, i) => ({ slot, score: this.scores[i]! }));
    return hits.sort((x, y) => (this.better(x.score, x.slot, y.score, y.slot) ? -1 : this.better(y.score, y.slot, x.score, x.slot) ? 1 : 0));
  }
}
