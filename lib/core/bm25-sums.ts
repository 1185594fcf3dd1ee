// BM25's dense sums in WebAssembly (bm25-sums.wat): the loop of Bm25Corpus.searchExpanded that
// adds every posting of a query's words into one score per turn, the per-block bests its
// top-k scan skips by, and that scan's test of a block's scores against its floor.
//
// Over a long-lived user that loop is the largest part of a context call that grows with the
// user: a growth query's common words are held by a third of the turns each, and at 100k
// turns it adds about 140k postings a call. In JavaScript each posting costs about 3 ns
// (bounds checks on four arrays, and a test of the block's best per posting); in WebAssembly
// the sums take about a third of that, and the blocks' bests come after them from one pass
// of two-lane maxima over the scores (measured in BENCHMARKS.md, nineteenth round).
//
// WebAssembly reads only its own memory, so the postings it adds are copied there. A common
// word's (DEFAULT_LIMITS.residentMin postings or more) once per state of its postings: its slots and impacts
// stay resident in an arena after the scores and are copied again only when its impacts are
// computed anew (a write to the user changes them) or the arena was emptied to make room. The
// arena holds at most DEFAULT_LIMITS.arenaBytes beyond what its largest term needs; when a term does not fit
// it starts empty again. A rarer word's postings are copied for each sum (a memory copy of
// tens of kilobytes at most): a long-lived user's queries bring many such words, mostly once.
//
// The sums are the same numbers as the JavaScript loop's: the same multiply, then add, of
// doubles, posting by posting in the same order. Where WebAssembly cannot be compiled (an edge
// runtime that forbids compiling code at run time, a runtime without SIMD), searchExpanded
// keeps its JavaScript loop.

import { BM25_SUMS_WASM } from "./bm25-sums.wasm.ts";

/** What the arena keeps of a term's postings: where they are and which state they copy. */
export interface Resident {
  /** Byte offset of the slots (n int32), then at `impactsAt` the impacts (n float64). */
  slotsAt: number;
  impactsAt: number;
  /** The impacts array copied (a term's impacts computed anew are a new array). */
  of: Float64Array;
  /** The arena's generation it was copied in (it was emptied since when this differs). */
  generation: number;
}

/** A term's postings as BM25 packs them, with the arena's note of them. */
export interface SummedPostings {
  slots: Int32Array;
  resident: Resident | null;
}

/** Slots per block of `blockMaxes` (bm25.ts's MAX_SHIFT; the kernel's 2048-byte blocks). */
export const SUM_BLOCK_SHIFT = 8;
const BLOCK_SLOTS = 1 << SUM_BLOCK_SHIFT;
const PAGE = 65_536;

/** When a term's postings stay in the arena, and how large it grows (tests make them small). */
export interface SumLimits {
  /**
   * Fewest postings of a query's base terms for the kernel to sum them: below, the JavaScript
   * loop costs no more than the copies and the passes (a 1k-turn user's context call read
   * 1.010 of the JavaScript loop's time with the kernel, a 100k-turn user's 0.939).
   */
  minPostings: number;
  /** Terms of fewer postings are copied for each sum instead of kept in the arena. */
  residentMin: number;
  /** Most bytes of postings the arena keeps beyond the largest term's, before it starts over. */
  arenaBytes: number;
  /**
   * The arena's bytes written when the memory is laid out (see touch); the rest of its room is
   * mapped by the system as terms arrive. The memory itself is laid out with the whole arena's
   * room (`arenaBytes`) at once.
   */
  arenaFirstBytes: number;
}

export const DEFAULT_LIMITS: SumLimits = { minPostings: 8192, residentMin: 8192, arenaBytes: 64 << 20, arenaFirstBytes: 16 << 20 };

interface Exports {
  memory: WebAssembly.Memory;
  add(slots: number, impacts: number, n: number, w: number, scores: number): void;
  addMax(slots: number, impacts: number, n: number, w: number, scores: number, maxes: number): void;
  blockMaxes(scores: number, blocks: number, out: number): void;
  above(scores: number, from: number, to: number, floor: number, out: number): number;
}

/**
 * The dense sums over one memory: per slot a score (`scores`), per block of 256 slots its best
 * (`blockMax`, after `blockMaxes`), and the arena of resident postings. One for every corpus,
 * searches being synchronous. Views are remade when the memory grows: read `scores` and
 * `blockMax` after the last `add` of a search, not before its first.
 */
export class DenseSums {
  scores = new Float64Array(0);
  blockMax = new Float64Array(0);
  /** The slots `above` found, its answer's count of them from the start. */
  found = new Int32Array(0);
  private readonly kernel: Exports;
  /** Slots the score region has room for (a multiple of the block). */
  private capacity = 0;
  private blockMaxAt = 0;
  /** Where `above` writes the slots it finds (room for one block's). */
  private foundAt = 0;
  /** Where the postings of a term of fewer than `residentMin` are copied for one sum. */
  private scratchAt = 0;
  private arenaStart = 0;
  private arenaTop = 0;
  private generation = 0;
  /** How many times postings were copied into the arena, and it was emptied for want of room (tests). */
  copies = 0;
  resets = 0;
  /** How many terms' postings the kernel summed, of them how many keeping the blocks' bests, and how many passes found the bests (tests). */
  adds = 0;
  maxesKept = 0;
  passes = 0;

  readonly limits: SumLimits;

  constructor(kernel: Exports, limits: SumLimits = DEFAULT_LIMITS) {
    this.kernel = kernel;
    this.limits = limits;
  }

  /**
   * Room for `slots` scores, all 0 (as every search leaves them), and for the arena. Growing the
   * score region lays the memory out anew, and the arena starts empty.
   */
  reserve(slots: number): void {
    // One slot more than asked: blockMaxes reads (end >> SUM_BLOCK_SHIFT) + 1 whole blocks.
    if (slots < this.capacity) return;
    const capacity = Math.ceil(Math.max(slots + 1, this.capacity * 2) / BLOCK_SLOTS) * BLOCK_SLOTS;
    this.blockMaxAt = capacity * 8;
    this.foundAt = this.blockMaxAt + (capacity / BLOCK_SLOTS) * 8;
    this.scratchAt = this.foundAt + BLOCK_SLOTS * 4;
    this.arenaStart = this.scratchAt + this.limits.residentMin * 12;
    this.capacity = capacity;
    // The arena's whole room with it, so that the memory does not grow as terms arrive. V8
    // counts this memory as external, and each 64 MB more of that starts a full collection of
    // the heap: laid out at 16 MB and grown by the first writes' copies after a 100k-turn
    // user's load, it started one whose marking held the server's thread for about a second.
    this.ensureBytes(this.arenaStart + Math.max(this.limits.arenaBytes, this.limits.arenaFirstBytes));
    this.arenaTop = this.arenaStart;
    this.generation++;
    this.views();
    this.scores.fill(0);
    this.blockMax.fill(0);
    this.touch(this.scratchAt, this.arenaStart + this.limits.arenaFirstBytes);
  }

  /**
   * Writes one byte of each 4 KB page from `from` to `to`, so that the system maps them now. A
   * page of new memory is mapped on its first write, and on this machine (a virtual one) that
   * cost about 3–7 µs a page: a common word's first copy into new pages (140k postings, 1.7 MB)
   * took 1.2–3 ms against 0.15 ms into pages written before (BENCHMARKS.md, twentieth round).
   * Done when the memory is laid out (the first search of a user that needs the kernel), not
   * in the searches whose words happen to be copied first. The bytes hold nothing yet: the
   * scratch region is written before each use, and the arena starts empty.
   */
  private touch(from: number, to: number): void {
    const bytes = new Uint8Array(this.kernel.memory.buffer);
    const end = Math.min(to, bytes.length);
    for (let at = from; at < end; at += 4096) bytes[at] = 0;
  }

  /**
   * scores[slot] += w × impacts[i] for each posting, the postings copied to the arena first if
   * need be. With `keepMaxes`, each posting's block best (`blockMax`, as blockMaxes left it)
   * is raised to its new sum as well, so that the blocks' bests stay those of the sums.
   */
  add(p: SummedPostings, impacts: Float64Array, w: number, keepMaxes = false): void {
    const n = p.slots.length;
    if (n === 0) return;
    this.adds++;
    if (n < this.limits.residentMin) {
      // A rarer word (most of a query's feedback words): copied to the scratch region for this
      // sum only. Kept, the many such words of a long-lived user's queries would fill the arena.
      const { buffer } = this.kernel.memory;
      new Int32Array(buffer, this.scratchAt, n).set(p.slots);
      new Float64Array(buffer, this.scratchAt + this.limits.residentMin * 4, n).set(impacts);
      this.sum(this.scratchAt, this.scratchAt + this.limits.residentMin * 4, n, w, keepMaxes);
      return;
    }
    let r = p.resident;
    if (!r || r.generation !== this.generation || r.of !== impacts) r = p.resident = this.copy(p.slots, impacts);
    this.sum(r.slotsAt, r.impactsAt, n, w, keepMaxes);
  }

  private sum(slotsAt: number, impactsAt: number, n: number, w: number, keepMaxes: boolean): void {
    if (keepMaxes) {
      this.maxesKept++;
      this.kernel.addMax(slotsAt, impactsAt, n, w, 0, this.blockMaxAt);
    } else this.kernel.add(slotsAt, impactsAt, n, w, 0);
  }

  /** blockMax[k] = the best score of block k, for k up to end >> SUM_BLOCK_SHIFT (end at most the slots reserved). */
  blockMaxes(end: number): void {
    this.passes++;
    this.kernel.blockMaxes(0, (end >> SUM_BLOCK_SHIFT) + 1, this.blockMaxAt);
  }

  /**
   * The slots of block `block` (up to `end`) scoring at least `floor` (above 0), in order:
   * `found[0, answer)`. Eight scores are tested at a time, where a loop of one test a slot
   * read them one by one.
   */
  above(block: number, end: number, floor: number): number {
    const from = block << SUM_BLOCK_SHIFT;
    // Whole runs of eight: the slots past `end` score 0, below the floor.
    const to = Math.min(from + BLOCK_SLOTS, (end + 7) & ~7);
    return this.kernel.above(0, from, to, floor, this.foundAt);
  }

  private copy(slots: Int32Array, impacts: Float64Array): Resident {
    const n = slots.length;
    const slotBytes = (n * 4 + 7) & ~7;
    const bytes = slotBytes + n * 8;
    if (this.arenaTop + bytes > this.arenaStart + Math.max(this.limits.arenaBytes, bytes)) {
      // Full: start over. Terms copied before are copied again on their next search.
      this.arenaTop = this.arenaStart;
      this.generation++;
      this.resets++;
    }
    const slotsAt = this.arenaTop;
    this.ensureBytes(slotsAt + bytes);
    const { buffer } = this.kernel.memory;
    new Int32Array(buffer, slotsAt, n).set(slots);
    new Float64Array(buffer, slotsAt + slotBytes, n).set(impacts);
    this.arenaTop = slotsAt + bytes;
    this.copies++;
    return { slotsAt, impactsAt: slotsAt + slotBytes, of: impacts, generation: this.generation };
  }

  /** Grows the memory to at least `bytes` (remaking the views: growing detaches the old ones). */
  private ensureBytes(bytes: number): void {
    const { memory } = this.kernel;
    const have = memory.buffer.byteLength;
    if (bytes <= have) return;
    // At least doubling: V8 counts the memory as external, and its growth can start a
    // collection of the whole heap (growing by each term's size and by a quarter, a server
    // holding a 100k-turn user spent a millisecond a call collecting).
    memory.grow(Math.ceil(Math.max(bytes - have, have) / PAGE));
    this.views();
  }

  private views(): void {
    const { buffer } = this.kernel.memory;
    this.scores = new Float64Array(buffer, 0, this.capacity);
    this.blockMax = new Float64Array(buffer, this.blockMaxAt, this.capacity / BLOCK_SLOTS);
    this.found = new Int32Array(buffer, this.foundAt, BLOCK_SLOTS);
  }
}

let instance: DenseSums | null | undefined;

/** The shared DenseSums, or null where WebAssembly (with SIMD) cannot be compiled here. */
export function denseSums(): DenseSums | null {
  if (instance === undefined) instance = compile();
  return instance;
}

function compile(limits?: SumLimits): DenseSums | null {
  try {
    if (typeof WebAssembly !== "object") return null;
    const binary = Uint8Array.from(atob(BM25_SUMS_WASM), (c) => c.charCodeAt(0));
    const exports = new WebAssembly.Instance(new WebAssembly.Module(binary), {}).exports as unknown as Exports;
    return new DenseSums(exports, limits);
  } catch {
    return null;
  }
}

/** For tests and benchmarks: sums in WebAssembly (a fresh instance, with these limits), or in JavaScript (null). */
export function setDenseSums(use: "wasm" | "js", limits?: SumLimits): DenseSums | null {
  instance = use === "js" ? null : compile(limits);
  return instance;
}
