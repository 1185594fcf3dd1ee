// The embedded vector index: exact cosine search over an in-process matrix per user, with
// PGlite's `vectors` table as the source of truth it is rebuilt from.
//
// Why not search in SQL: this PGlite release ships no pgvector, and an exact scan in SQL
// (real[] and a dot product over unnest) takes 150 ms for a user's 1k vectors and near 3 s
// for 20k, on the one WebAssembly thread the archive also needs; a scan of the user's
// contiguous Float32Array takes 1 ms and 17 ms (bench/vector-index.ts). Every
// query is scoped to one user, so a user's vectors are the whole search space: they are
// loaded on that user's first query with one select, kept in step by every write (table
// first, then memory), and whole users are evicted, least recently used first, once the
// matrices outgrow the memory budget; an evicted user reloads on the next query. A user just
// loaded is held only once it has cost more than the users it would push out (evict.ts);
// until then it is scanned exactly from the matrix loaded for its query.

import { StrataError, upstream } from "../../core/errors.ts";
import { warmed } from "../../core/warm.ts";
import type { VectorIndex, VectorKind, VectorMatch, VectorRecord } from "../../core/ports.ts";
import type { SqlClient } from "../sql/client.ts";
import { createRetention } from "./evict.ts";
import { IvfIndex, listCount, rowKey, trainCentroids } from "./ivf.ts";
import { Reorder } from "./reorder.ts";
import { blockStride, createScanThread, lanesOf, rowPlace, sumsHere, sumsOf, type Lanes, type ScanRequest, type ScanThread } from "./vector-scan.ts";
import { descending, kthLargest } from "../../core/order.ts";
import { eachInSlices, loadSlicer, loadStatementTurn, sliceScheduler } from "../../core/request-gate.ts";
import { readPages } from "../sql/pages.ts";

export interface LocalVectorIndexOptions {
  sql: SqlClient;
  /**
   * Memory the loaded matrices may use before whole users are evicted (default 1 GiB: a user of
   * 100k 512-dimension vectors takes 205 MB, in blocks of 16 MB at the default block size).
   */
  memoryBudgetBytes?: number;
  /**
   * Users with fewer rows than this are searched exactly; larger ones from an inverted-file
   * index (ivf.ts) once it is built, exactly until then (default 20000, or the
   * STRATA_VECTOR_EXACT_ROWS environment variable; 0 puts every user on the index).
   */
  exactBelowRows?: number;
  /**
   * Lists an approximate search scores at the least, as a fraction of the user's lists
   * (default 0.025, and never fewer than 8).
   */
  probeFraction?: number;
  /**
   * A query's sums run on a second thread (vector-scan.ts) from this many multiply-adds (rows
   * scored × the query's non-zero dimensions) on; fewer run in the caller's thread, where
   * they cost less than the messages. Default 131072: a 10k-row user's exact scan is about a
   * million, a 100k-row user's approximate one (≈2.5k candidate rows) a few hundred thousand,
   * a 1k-row user's exact scan under a hundred thousand. Infinity keeps every scan in the
   * caller's thread.
   */
  offloadMinWork?: number;
  /**
   * Rows of a matrix block (a power of two; default 8192): a user's matrix grows by a block of
   * this many rows at a time once it holds that many (UserMatrix).
   */
  matrixBlockRows?: number;
  /**
   * Values (rows × dimensions) a background build moves per event-loop turn as it reorders a
   * large user's rows (default 262144, a few milliseconds); tests set it small.
   */
  reorderSliceValues?: number;
  /**
   * Runs a background build's next slice on a later turn of the event loop (default the next
   * one, setImmediate). The embedded server's scheduler runs it between requests
   * (request-gate.ts, sliceScheduler).
   */
  scheduleSlice?: (run: () => void) => void;
  /** The scan thread's script; default vector-scan-thread.ts beside vector-scan.ts (a bundler may move it). */
  scanThreadScript?: URL;
  /** The scan thread itself (tests hold its answers back); default one started on first need. close() ends it. */
  scanThread?: ScanThread;
  /** How long a user's load builds before it gives the event loop a turn (default LOAD_SLICE_MS, request-gate.ts; 0: after every row). */
  loadSliceMs?: number;
  /** Rows a user's load reads a select (default LOAD_PAGE_ROWS, sql/pages.ts). */
  loadPageRows?: number;
}

const DEFAULT_EXACT_BELOW = 20_000;
const DEFAULT_PROBE_FRACTION = 0.025;
const DEFAULT_OFFLOAD_MIN_WORK = 131_072;
const DEFAULT_BLOCK_ROWS = 8192;
const MIN_PROBE = 8;
// An index for at most this many rows is built on the spot (a few milliseconds); a larger
// one in slices between event-loop turns while the exact scan answers.
const BUILD_INLINE_ROWS = 5_000;
// Rows placed out of their lists' order since the rows were last laid out (added at the end,
// or moved into a removed row's place) after which the rows are laid out again, without
// retraining: a thirty-second of the matrix, and at least this many. The scan reads a row out
// of place at a cache miss per dimension, where a list's rows laid out together share their
// lines. A user grown by ingest to 100k rows (trained at 80k, laid out at 94.5k, the next
// training due at 160k) had its vector tier take about 1.5 times what it took once restarted
// with the same rows laid out. Laid out again after an eighth, the call took 0.98 of the old
// code's time at 100k and 0.83 at 75k; after a thirty-second, 0.86 of the eighth's at 100k,
// with the same time to drain the ingest (BENCHMARKS.md, thirty-fourth round).
const RELAYOUT_FRACTION = 1 / 32;
const RELAYOUT_MIN_ROWS = 1024;
// Rows assigned to lists per slice of a background build (at 100k rows, each is scored
// against 316 centroids: a few milliseconds a slice).
const ASSIGN_SLICE = 128;
// Values (rows × columns) moved per slice of a background reorder: a few milliseconds.
const REORDER_SLICE = 262_144;

/** The approximate tier's knobs, as one matrix sees them. */
interface Approx {
  exactBelow: number;
  probeFraction: number;
  reorderSlice: number;
}

const DEFAULT_BUDGET = 1024 * 1024 * 1024;
const KINDS: readonly VectorKind[] = ["message", "summary", "memory"];
// Rough cost of a row's id, session id and map entry beside its floats.
const ROW_OVERHEAD = 160;
// Rows per upsert statement: keeps one statement's parameters to a few megabytes.
const UPSERT_CHUNK = 1000;

/** A load in flight, and the writes that landed meanwhile, to replay on what it read. */
interface Load {
  promise: Promise<UserMatrix>;
  writes: ((m: UserMatrix) => void)[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// `vectors.embedding` holds float32 little-endian bytes. They cross the driver as base64
// text: PGlite turns a bytea result into bytes from hex one at a time, about ten times
// slower than encode(embedding, 'base64') and Buffer's decoder, and likewise on the way in.

// A page of a user's load: `limit` vectors of `dims` ($3) in (kind, id) order after the key
// given ($4, $5) or from the first, as one row: a JSON array each of ids, kinds and sessions,
// and the embeddings' base64 joined by commas (PGlite hands a result over a field at a time:
// 5,000 rows of the bench's 100k-message user held it 262 ms as rows, 166 ms as one row;
// BENCHMARKS.md, sixty-fourth round).
const PAGE = (after: boolean, limit: number) => `
select json_agg(id order by kind, id)::text as ids, json_agg(kind order by kind, id)::text as kinds,
       json_agg(session_id order by kind, id)::text as sessions,
       string_agg(encode(embedding, 'base64'), ',' order by kind, id) as embeddings
  from (select id, kind, session_id, embedding from vectors
         where tenant_id = $1 and user_id = $2 and dims = $3${after ? " and (kind, id) > ($4, $5)" : ""}
         order by kind, id limit ${limit}) v`;

function toBase64(v: Float32Array): string {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  const out = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i]!, i * 4);
  return out.toString("base64");
}

/** Decodes a stored embedding into `target` (one row, `dims` long). */
function readInto(base64: string, target: Float32Array, dims: number): void {
  const bytes = Buffer.from(base64, "base64");
  if (bytes.length !== dims * 4) {
    throw new StrataError("internal", "VECTOR_CORRUPT", `stored embedding has ${bytes.length} bytes, expected ${dims * 4}`);
  }
  if (LITTLE_ENDIAN) new Uint8Array(target.buffer, target.byteOffset, dims * 4).set(bytes);
  else for (let i = 0; i < dims; i++) target[i] = bytes.readFloatLE(i * 4);
}

/** Scales a row to unit length; a zero (or non-finite) row becomes all zeros and scores 0. */
function normaliseInPlace(a: Float32Array, offset: number, dims: number): void {
  let sum = 0;
  for (let i = offset; i < offset + dims; i++) sum += a[i]! * a[i]!;
  const norm = Math.sqrt(sum);
  if (norm > 0 && Number.isFinite(norm)) {
    for (let i = offset; i < offset + dims; i++) a[i] = a[i]! / norm;
  } else {
    a.fill(0, offset, offset + dims);
  }
}

/**
 * The best K rows by score as they are offered: a min-heap, worst at the root (the score to
 * beat). Equal scores rank by id, so results do not depend on row order.
 */
class BestRows {
  private readonly rows: Int32Array;
  private readonly scores: Float64Array;
  private readonly k: number;
  private readonly ids: readonly string[];
  private n = 0;

  constructor(k: number, ids: readonly string[]) {
    this.k = k;
    this.ids = ids;
    this.rows = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  private worse(sa: number, ra: number, sb: number, rb: number): boolean {
    return sa < sb || (sa === sb && this.ids[ra]! > this.ids[rb]!);
  }

  offer(score: number, row: number): void {
    const { rows, scores } = this;
    if (this.n < this.k) {
      let c = this.n++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.worse(score, row, scores[p]!, rows[p]!)) break;
        scores[c] = scores[p]!;
        rows[c] = rows[p]!;
        c = p;
      }
      scores[c] = score;
      rows[c] = row;
    } else if (this.k > 0 && this.worse(scores[0]!, rows[0]!, score, row)) {
      const n = this.n;
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= n) break;
        const r = l + 1;
        const w = r < n && this.worse(scores[r]!, rows[r]!, scores[l]!, rows[l]!) ? r : l;
        if (!this.worse(scores[w]!, rows[w]!, score, row)) break;
        scores[c] = scores[w]!;
        rows[c] = rows[w]!;
        c = w;
      }
      scores[c] = score;
      rows[c] = row;
    }
  }

  /** The rows held, best first (score descending, then id ascending). */
  matches(kinds: readonly VectorKind[], sessions: readonly string[]): VectorMatch[] {
    const out: VectorMatch[] = [];
    // The rows' ids and sessions read ahead, together (warm.ts): the matches' sort and the
    // fusion's lookups read them next, and in a large user each is a cache miss.
    let chars = 0;
    for (let j = 0; j < this.n; j++) {
      const row = this.rows[j]!;
      chars += this.ids[row]!.length + sessions[row]!.length;
    }
    warmed.chars += chars;
    for (let j = 0; j < this.n; j++) {
      const row = this.rows[j]!;
      out.push({ id: this.ids[row]!, kind: kinds[row]!, sessionId: sessions[row]!, score: this.scores[j]! });
    }
    return out.sort((a, b) => descending(a.score, b.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

/** Zeroed floats, in memory the scan thread can read where there is such memory. */
function floats(n: number): Float32Array {
  return typeof SharedArrayBuffer === "function" ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
}

function capacityOf(blocks: Float32Array[], dims: number, shift: number): number {
  return blocks.length === 1 ? blockStride(blocks[0]!, dims) : blocks.length << shift;
}

/**
 * Room for one more row in `blocks`, which hold `rows` rows: the first block doubled (copied)
 * while it is alone and short of 2^shift rows, else a new block.
 */
function growBlocks(blocks: Float32Array[], dims: number, shift: number, rows: number): void {
  const full = 1 << shift;
  const old = blockStride(blocks[0]!, dims);
  if (blocks.length > 1 || old >= full) {
    blocks.push(floats(full * dims));
    return;
  }
  const stride = Math.min(full, old * 2);
  const grown = floats(stride * dims);
  const data = blocks[0]!;
  for (let d = 0; d < dims; d++) grown.set(data.subarray(d * old, d * old + rows), d * stride);
  blocks[0] = grown;
}

/**
 * One user's vectors of one dimension, stored by column in blocks of rows (MatrixBlocks in
 * vector-scan.ts): dimension d of row r is at d × stride + (r mod 2^shift) of block r >> shift.
 * A query touches only its non-zero dimensions (a hashing-embedder query sets about a fifth
 * of 512), and a column is contiguous within a block, so a scan reads just those columns
 * front to back; stored by row, nearly every cache line of every row was read instead.
 *
 * The first block doubles (copied) up to 2^shift rows; past that the matrix grows by adding a
 * block. One matrix doubling at 100k rows copied 200 MB into a fresh 400 MB buffer on the
 * server's thread, a stall of most of a second each time a large user's rows doubled.
 */
class UserMatrix {
  readonly dims: number;
  readonly shift: number;
  blocks: Float32Array[];
  size = 0;
  ids: string[] = [];
  kinds: VectorKind[] = [];
  sessions: string[] = [];
  rowOf = new Map<string, number>(); // `${kind}\0${id}` -> row
  /** Rows of each kind: a kinds filter that every row passes is no filter (filterOf). */
  private kindRows = new Map<VectorKind, number>();
  /** The inverted-file index answering once built; one being built to replace it (or to be the first). */
  ivf: IvfIndex | null = null;
  private next: IvfIndex | null = null;
  private reorder: { index: IvfIndex; copy: Reorder; outOfPlace: number } | null = null;
  /**
   * Rows placed outside the lists' layout so far (each row added, each row moved into a
   * removed one's place); a reorder takes off the count it started from when it is swapped in.
   */
  private outOfPlace = 0;
  /**
   * The blocks the last reorder replaced, the next one's target. Nothing reads them once the
   * swap is done (it waits for the scans in flight), and a copy only writes the rows it then
   * reads. New blocks for every layout left hundreds of megabytes a time to the collector: a
   * user grown to 100k rows, laid out again every thirty-second, peaked at 3.3 GB resident
   * against 2.4 before (BENCHMARKS.md, thirty-fourth round).
   */
  private spare: Float32Array[] | null = null;
  private building = false;
  get isBuilding(): boolean {
    return this.building;
  }
  /** Settles when the build in flight (if any) ends. */
  built: Promise<void> = Promise.resolve();
  private done: () => void = () => {};
  /** Bumped by clear(): a build started before it stops. */
  private generation = 0;
  /** One row in row order, for normalising before it is stored. */
  private readonly row: Float32Array;
  /** Scans in flight on the scan thread, and the writes held until they end (write()). */
  private scans = 0;
  private held: (() => void)[] = [];
  /** Settles once held writes have landed; null while none wait. */
  private landed: Promise<void> | null = null;
  private land: () => void = () => {};

  constructor(dims: number, capacity: number, shift: number) {
    this.dims = dims;
    this.shift = shift;
    const full = 1 << shift;
    // Room for `capacity` rows: one block of at most 2^shift rows, or whole blocks.
    this.blocks =
      capacity <= full
        ? [floats(Math.min(full, Math.max(16, capacity)) * dims)]
        : Array.from({ length: Math.ceil(capacity / full) }, () => floats(full * dims));
    this.row = new Float32Array(dims);
  }

  /** Rows there is room for. */
  get capacity(): number {
    return capacityOf(this.blocks, this.dims, this.shift);
  }

  get bytes(): number {
    let bytes = 0;
    for (const b of this.blocks) bytes += b.byteLength;
    bytes += this.reorder?.copy.bytes ?? 0;
    for (const b of this.spare ?? []) bytes += b.byteLength;
    return bytes + this.size * ROW_OVERHEAD + (this.ivf?.bytes ?? 0) + (this.next?.bytes ?? 0);
  }


  /** Claims the row for (kind, id), appending when new. */
  slot(kind: VectorKind, id: string, sessionId: string): number {
    const key = rowKey(kind, id);
    let row = this.rowOf.get(key);
    if (row === undefined) {
      row = this.size++;
      this.outOfPlace++;
      if (this.size > this.capacity) this.grow();
      this.rowOf.set(key, row);
      this.ids[row] = id;
      // The constant's own string, so that a kinds filter compares by identity.
      this.kinds[row] = KINDS[KINDS.indexOf(kind)] ?? kind;
      this.kindRows.set(kind, (this.kindRows.get(kind) ?? 0) + 1);
    }
    this.sessions[row] = sessionId;
    return row;
  }

  /** Room for one more row. */
  private grow(): void {
    growBlocks(this.blocks, this.dims, this.shift, this.size - 1);
  }

  /** Stores `this.row`, scaled to unit length, as row `row`. */
  private storeRow(row: number): void {
    const { dims } = this;
    const { block, stride, offset } = rowPlace(this, row);
    normaliseInPlace(this.row, 0, dims);
    for (let d = 0; d < dims; d++) block[d * stride + offset] = this.row[d]!;
  }

  set(kind: VectorKind, id: string, sessionId: string, vector: Float32Array): void {
    const row = this.slot(kind, id, sessionId);
    this.row.set(vector);
    this.storeRow(row);
    this.reorder?.copy.set(row);
    this.ivf?.rowSet(this, row);
    this.next?.rowSet(this, row);
  }

  /** Sets a row from a stored embedding (float32 little-endian, base64). */
  setStored(kind: VectorKind, id: string, sessionId: string, base64: string): void {
    const row = this.slot(kind, id, sessionId);
    readInto(base64, this.row, this.dims);
    this.storeRow(row);
    this.reorder?.copy.set(row);
    this.ivf?.rowSet(this, row);
    this.next?.rowSet(this, row);
  }

  clear(): void {
    this.size = 0;
    this.rowOf.clear();
    this.ids.length = this.kinds.length = this.sessions.length = 0;
    this.kindRows.clear();
    this.ivf = this.next = null;
    this.reorder = null;
    this.outOfPlace = 0;
    this.spare = null;
    this.generation++;
  }

  /** Removes a row by moving the last row into its place. */
  remove(kind: VectorKind, id: string): void {
    const key = rowKey(kind, id);
    const row = this.rowOf.get(key);
    if (row === undefined) return;
    this.rowOf.delete(key);
    this.kindRows.set(kind, this.kindRows.get(kind)! - 1);
    const last = --this.size;
    if (row !== last) {
      this.outOfPlace++;
      const { dims } = this;
      const to = rowPlace(this, row);
      const from = rowPlace(this, last);
      for (let d = 0; d < dims; d++) to.block[d * to.stride + to.offset] = from.block[d * from.stride + from.offset]!;
      this.ids[row] = this.ids[last]!;
      this.kinds[row] = this.kinds[last]!;
      this.sessions[row] = this.sessions[last]!;
      this.rowOf.set(rowKey(this.kinds[row]!, this.ids[row]!), row);
    }
    this.ids.length = this.kinds.length = this.sessions.length = last;
    this.reorder?.copy.removed(row, last, key);
    this.ivf?.rowRemoved(this, row, last);
    this.next?.rowRemoved(this, row, last);
  }

  /**
   * Starts building the inverted-file index when the matrix is large enough and has none,
   * or retraining it once the rows have doubled or halved since it was trained, or laying
   * the rows out again in its lists' order once many were placed outside it (RELAYOUT_FRACTION).
   * Small builds run on the spot; large ones in slices between event-loop turns, stopping if
   * `wanted` turns false (the user was evicted) or the matrix is cleared; `later` runs the
   * next slice.
   */
  maybeIndex(approx: Approx, wanted: () => boolean, later: (run: () => void) => void): void {
    if (this.building || this.size === 0 || this.size < approx.exactBelow) return;
    const ivf = this.ivf;
    if (ivf && this.size < 2 * ivf.trainedRows && 2 * this.size > ivf.trainedRows) {
      if (this.outOfPlace < Math.max(RELAYOUT_MIN_ROWS, this.size * RELAYOUT_FRACTION) || ivf.assigned < this.size) return;
      // The index answers on while its rows are copied into its order (the retrain's last part alone).
      const live = this.startBuild(wanted);
      return this.arrange(ivf, this.size <= BUILD_INLINE_ROWS ? Infinity : approx.reorderSlice, live, later);
    }
    const live = this.startBuild(wanted);
    const lists = listCount(this.size);
    const rows = this.size;
    const train = trainCentroids(this, lists);
    const inline = rows <= BUILD_INLINE_ROWS;
    const finish = (centroids: Float32Array) => {
      const index = new IvfIndex(centroids, lists, this.dims, rows);
      this.next = index;
      const step = () => {
        if (!live()) return this.stop(index);
        if (!index.assignSome(this, inline ? Infinity : ASSIGN_SLICE)) return later(step);
        this.arrange(index, inline ? Infinity : approx.reorderSlice, live, later);
      };
      step();
    };
    const run = () => {
      if (!live()) return this.stop(null);
      for (let i = 0; ; i++) {
        const r = train.next();
        if (r.done) return finish(r.value);
        if (!inline) return later(run);
      }
    };
    run();
  }

  /** Marks a build in flight; returns whether it should go on (the matrix not cleared since, and `wanted`). */
  private startBuild(wanted: () => boolean): () => boolean {
    this.building = true;
    this.built = new Promise((resolve) => (this.done = resolve));
    const generation = this.generation;
    return () => generation === this.generation && wanted();
  }

  /**
   * Reorders the rows into new blocks in `index`'s order, in slices of `budget` values (the old
   * blocks answer meanwhile), then swaps them in with the index, as a write: it waits for scans
   * reading the old blocks. Ends the build.
   */
  private arrange(index: IvfIndex, budget: number, live: () => boolean, later: (run: () => void) => void): void {
    const slice = () => {
      if (!live()) return this.stop(index);
      if (!this.reorderSome(index, budget)) return later(slice);
      this.write(() => {
        if (!live()) return this.stop(index);
        this.reorderDone();
        this.building = false;
        this.done();
      });
    };
    slice();
  }

  /**
   * Reorders the rows so that each list's rows sit together: a search then reads the
   * columns of its probed lists in runs, as the exact scan reads them whole, where rows
   * scattered over the matrix cost a cache miss per dimension each. The copy runs in slices
   * of about `budget` values into new blocks (reorder.ts) while the old ones answer; this
   * runs one slice and says whether the copy is done (reorderDone() swaps it in).
   */
  private reorderSome(index: IvfIndex, budget: number): boolean {
    if (this.reorder?.index !== index) {
      const { dims, shift } = this;
      const order = index.listOrder();
      const blocks = this.spare ?? [floats(blockStride(this.blocks[0]!, dims) * dims)];
      this.spare = null;
      while (capacityOf(blocks, dims, shift) < order.length) growBlocks(blocks, dims, shift, 0);
      this.reorder = { index, copy: new Reorder(order, blocks), outOfPlace: this.outOfPlace };
    }
    return this.reorder.copy.step(this, budget);
  }

  /** Swaps in the reordered rows and, with them, the index. */
  private reorderDone(): void {
    const { index, copy, outOfPlace } = this.reorder!;
    // Rows placed while the copy ran are outside the new layout too (at its end, or in holes).
    this.outOfPlace -= outOfPlace;
    const { dims, shift, size } = this;
    while (capacityOf(copy.blocks, dims, shift) < size) growBlocks(copy.blocks, dims, shift, capacityOf(copy.blocks, dims, shift));
    const done = copy.finish(this);
    index.renumber(done.from);
    this.spare = this.blocks;
    this.blocks = copy.blocks;
    this.ids = done.ids;
    this.kinds = done.kinds;
    this.sessions = done.sessions;
    this.rowOf = done.rowOf;
    this.ivf = index;
    this.next = null;
    this.reorder = null;
  }

  private stop(index: IvfIndex | null): void {
    if (index && this.next === index) this.next = null;
    if (this.reorder?.index === index) this.reorder = null;
    this.building = false;
    this.done();
  }

  /**
   * Runs a write now, or, while scans read the matrix on the scan thread, once the last of
   * them ends (in the order the writes came). A query arriving while writes wait lets them
   * land first (query()), so a write acknowledged before a query began is always seen by it.
   */
  write(fn: () => void): void {
    if (this.scans === 0) return fn();
    this.held.push(fn);
    this.landed ??= new Promise((resolve) => (this.land = resolve));
  }

  /** Ends a scan; the last one to end applies the writes held meanwhile. */
  private endScan(): void {
    if (--this.scans > 0 || this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    try {
      for (const fn of held) fn();
    } finally {
      this.landed = null;
      this.land();
    }
  }

  /**
   * Top-K from the inverted-file index when it may answer, else from the exact scan. The sums
   * run on the scan thread when there is one and they are worth sending (`offload`: at least
   * that many multiply-adds), in this thread otherwise.
   */
  async query(
    query: Float32Array,
    topK: number,
    approx: Approx,
    sessionId: string | undefined,
    kinds: ReadonlySet<VectorKind> | undefined,
    thread: ScanThread | null,
    offload: number,
  ): Promise<VectorMatch[]> {
    while (this.landed) await this.landed;
    kinds = this.filterOf(kinds);
    const lanes = lanesOf(query, this.dims);
    const ivf = this.ivf;
    // A session's rows are few and spread over every list: those searches stay exact.
    const rows = ivf && sessionId === undefined && this.size >= approx.exactBelow && ivf.assigned >= this.size ? this.candidates(ivf, lanes, topK, approx, kinds) : null;
    const { blocks, dims, shift, size } = this;
    const req: ScanRequest = { blocks, dims, shift, size, lanes, ...(rows ? { rows } : {}) };
    const best = (sums: Float64Array) => (rows ? this.bestOf(rows, sums, topK) : this.bestOfAll(sums, topK, sessionId, kinds));
    if (!thread || sumsOf(req) * lanes.index.length < offload) return best(sumsHere(req));
    // From here until endScan the rows stay as they are: writes are held (write()).
    this.scans++;
    try {
      return (await thread.run(req, best)) ?? best(sumsHere(req));
    } finally {
      this.endScan();
    }
  }

  /**
   * The kinds filter a query needs: none when every row is of a kind it lets through. A user's
   * rows are commonly all messages, and a filter of messages alone then tested every candidate
   * row's kind for nothing (16 ns a row, 2,400 rows a search at 100k rows: bench/search.ts).
   */
  private filterOf(kinds: ReadonlySet<VectorKind> | undefined): ReadonlySet<VectorKind> | undefined {
    if (kinds === undefined) return undefined;
    let rows = 0;
    for (const kind of kinds) rows += this.kindRows.get(kind) ?? 0;
    return rows === this.size ? undefined : kinds;
  }

  /** The rows of the lists nearest to the query that pass the kinds filter, in row order. */
  private candidates(ivf: IvfIndex, lanes: Lanes, topK: number, approx: Approx, kinds?: ReadonlySet<VectorKind>): Int32Array {
    const probe = Math.min(ivf.lists, Math.max(MIN_PROBE, Math.ceil(ivf.lists * approx.probeFraction)));
    const rowKinds = this.kinds;
    // At most three kinds, compared by identity with the stored constants (see slot()).
    const allowed = kinds === undefined ? [] : KINDS.filter((k) => kinds.has(k));
    const [k0, k1, k2] = allowed;
    const keep =
      kinds === undefined || allowed.length === KINDS.length
        ? undefined
        : (row: number) => {
            const kind = rowKinds[row];
            return kind === k0 || kind === k1 || kind === k2;
          };
    return ivf.candidates(lanes.index, lanes.value, probe, topK, keep);
  }

  /**
   * Top-K of the candidate rows, sums[i] being the score of rows[i]. The K-th best score is
   * found first, by a selection over a copy of the sums, and only rows scoring at least that are
   * offered to the heap. A row below it has K rows scoring higher, so it cannot be among the
   * best whatever the ties: the same rows come out, in the same order. The inverted file hands
   * its lists' rows in its own order, in which scores can rise along a list. Offered every row,
   * the heap took about 34 comparisons a row at 100k rows (K = 200 of 2,400 candidates, a
   * temporary counter): nearly every row replaced its worst.
   */
  private bestOf(rows: Int32Array, sums: Float64Array, topK: number): VectorMatch[] {
    const best = new BestRows(topK, this.ids);
    const n = rows.length;
    const floor = topK > 0 && n > topK ? kthLargest(sums, n, topK) : -Infinity;
    for (let i = 0; i < n; i++) {
      const score = sums[i]!;
      if (score >= floor) best.offer(score, rows[i]!);
    }
    return best.matches(this.kinds, this.sessions);
  }

  /** Exact top-K by dot product (rows and query are unit length, so it is the cosine), sums[r] being row r's. */
  private bestOfAll(sums: Float64Array, topK: number, sessionId?: string, kinds?: ReadonlySet<VectorKind>): VectorMatch[] {
    const { size, sessions } = this;
    const best = new BestRows(topK, this.ids);
    for (let row = 0; row < size; row++) {
      if (sessionId !== undefined && sessions[row] !== sessionId) continue;
      if (kinds !== undefined && !kinds.has(this.kinds[row]!)) continue;
      best.offer(sums[row]!, row);
    }
    return best.matches(this.kinds, sessions);
  }
}

/** The embedded index, with a hook for tests and benchmarks. */
export interface LocalVectorIndex extends VectorIndex {
  /**
   * Loads the user (if need be), starts their approximate index if they are large enough,
   * and settles once no build of it is in flight; says whether it now answers their queries.
   */
  indexed(tenantId: string, userId: string, dims: number): Promise<boolean>;
  /** Where a loaded user's approximate index stands, without loading or starting anything. */
  indexState(tenantId: string, userId: string): "not loaded" | "exact" | "building" | "ready";
  buildsInFlight(tenantId: string): number;
}

export function createLocalVectorIndex(options: LocalVectorIndexOptions): LocalVectorIndex {
  const { sql } = options;
  const budget = options.memoryBudgetBytes ?? DEFAULT_BUDGET;
  if (!(budget >= 0)) throw new StrataError("config", "CONFIG_INVALID", `memoryBudgetBytes must be ≥ 0, got ${budget}`);
  const adapter = "local-vector";
  const fromEnv = typeof process === "undefined" ? undefined : process.env?.STRATA_VECTOR_EXACT_ROWS;
  const approx: Approx = {
    exactBelow: options.exactBelowRows ?? (fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : DEFAULT_EXACT_BELOW),
    probeFraction: options.probeFraction ?? DEFAULT_PROBE_FRACTION,
    reorderSlice: options.reorderSliceValues ?? REORDER_SLICE,
  };
  if (!(approx.reorderSlice >= 1)) throw new StrataError("config", "CONFIG_INVALID", `reorderSliceValues must be ≥ 1, got ${approx.reorderSlice}`);
  if (!(approx.exactBelow >= 0)) throw new StrataError("config", "CONFIG_INVALID", `exactBelowRows must be ≥ 0, got ${approx.exactBelow}`);
  if (!(approx.probeFraction > 0 && approx.probeFraction <= 1)) {
    throw new StrataError("config", "CONFIG_INVALID", `probeFraction must be in (0, 1], got ${approx.probeFraction}`);
  }

  const blockRows = options.matrixBlockRows ?? DEFAULT_BLOCK_ROWS;
  const shift = Math.log2(blockRows);
  if (!(Number.isInteger(shift) && shift >= 4 && shift <= 24)) {
    throw new StrataError("config", "CONFIG_INVALID", `matrixBlockRows must be a power of two from 16 to 2^24, got ${blockRows}`);
  }
  const later = options.scheduleSlice ?? sliceScheduler(undefined);
  const offload = options.offloadMinWork ?? DEFAULT_OFFLOAD_MIN_WORK;
  if (!(offload >= 0)) throw new StrataError("config", "CONFIG_INVALID", `offloadMinWork must be ≥ 0, got ${offload}`);
  // Started on the first scan worth sending to it; none in a runtime without SharedArrayBuffer.
  let thread: ScanThread | null = options.scanThread ?? null;
  let closed = false;
  const scanThread = (): ScanThread | null => {
    if (closed || offload === Infinity || typeof SharedArrayBuffer !== "function") return null;
    return (thread ??= createScanThread(options.scanThreadScript));
  };

  // Loaded users, least recently used first (a Map keeps insertion order).
  const loaded = new Map<string, UserMatrix>();
  // Users whose select is in flight.
  const loading = new Map<string, Load>();
  const userKey = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;

  async function run<T>(text: string, params: unknown[]): Promise<T[]> {
    try {
      return await sql.query<T>(text, params);
    } catch (e) {
      throw upstream(adapter, e);
    }
  }

  /** Evicts least recently used users until the budget holds (evict.ts). */
  const retention = createRetention<UserMatrix>([{ size: (m) => m.bytes, limit: budget }]);
  const enforceBudget = () => retention.enforce(loaded);

  /**
   * Applies a write that is already in the table to the user's loaded matrix, or queues it
   * for a load in flight: its select may have run before the write committed. Replaying a
   * write the select already saw is harmless: each one sets or removes whole rows.
   */
  function apply(key: string, write: (m: UserMatrix) => void): void {
    const m = loaded.get(key);
    if (m) m.write(() => write(m));
    loading.get(key)?.writes.push(write);
  }

  async function load(key: string, entry: Load, tenantId: string, userId: string, dims: number): Promise<UserMatrix> {
    // A page at a time (sql/pages.ts; in (kind, id) order, migration 8), each page stored in
    // slices (loadSlicer): no statement holds PGlite (and, in its thread, every request) for
    // long. Writes landing meanwhile go to entry.writes, replayed below; a row a later page also
    // reads (written meanwhile) is set again, and the replay sets it last.
    const [count] = await run<{ n: number }>(`select count(*)::int as n from vectors where tenant_id = $1 and user_id = $2 and dims = $3`, [tenantId, userId, dims]);
    const m = new UserMatrix(dims, Number(count?.n ?? 0), shift);
    const slice = loadSlicer(options.loadSliceMs);
    await readPages<{ id: string; kind: VectorKind; session_id: string; embedding: string }>(
      async (after, limit) => {
        await loadStatementTurn();
        const [row] = await run<{ ids: string | null; kinds: string; sessions: string; embeddings: string }>(
          PAGE(after !== null, limit),
          after ? [tenantId, userId, dims, after.kind, after.id] : [tenantId, userId, dims],
        );
        if (!row?.ids) return [];
        const [ids, kinds, sessions] = [JSON.parse(row.ids) as string[], JSON.parse(row.kinds) as VectorKind[], JSON.parse(row.sessions) as string[]];
        const embeddings = row.embeddings.split(",");
        return ids.map((id, i) => ({ id, kind: kinds[i]!, session_id: sessions[i]!, embedding: embeddings[i]! }));
      },
      (page) =>
        eachInSlices(page.length, slice, (i) => {
          const r = page[i]!;
          m.setStored(r.kind, r.id, r.session_id, r.embedding);
        }),
      options.loadPageRows,
    );
    for (const write of entry.writes) write(m);
    // Registered in the tick that replayed the writes, so none can fall in between.
    loading.delete(key);
    loaded.delete(key);
    loaded.set(key, m);
    retention.admit(loaded, key);
    return m;
  }

  /** The user's matrix of `dims`-sized vectors, loaded on first use (or reloaded for another size). */
  async function matrixFor(tenantId: string, userId: string, dims: number): Promise<UserMatrix> {
    const key = userKey(tenantId, userId);
    retention.use(key);
    const have = loaded.get(key);
    if (have && have.dims === dims) {
      loaded.delete(key);
      loaded.set(key, have);
      return have;
    }
    let entry = loading.get(key);
    if (!entry) {
      const fresh: Load = { writes: [], promise: Promise.resolve(null as unknown as UserMatrix) };
      loading.set(key, fresh);
      fresh.promise = load(key, fresh, tenantId, userId, dims);
      // A failed load must not stay in the way of the next attempt.
      fresh.promise.catch(() => loading.get(key) === fresh && loading.delete(key));
      entry = fresh;
    }
    const m = await entry.promise;
    // Another query loaded the same user for a different model's size.
    return m.dims === dims ? m : matrixFor(tenantId, userId, dims);
  }

  return {
    adapter,

    async ping() {
      try {
        await sql.ping();
      } catch (e) {
        throw upstream(adapter, e);
      }
    },

    async upsert(records) {
      for (const r of records) {
        if (!KINDS.includes(r.kind)) throw new StrataError("validation", "VALIDATION_ERROR", `unknown vector kind "${r.kind}"`);
        if (r.vector.length === 0) throw new StrataError("validation", "VALIDATION_ERROR", `empty vector for ${r.kind} ${r.id}`);
      }
      // Last write wins within a call, as it would across calls.
      const latest = new Map<string, VectorRecord>();
      for (const r of records) latest.set(`${r.tenantId}\u0000${r.kind}\u0000${r.id}`, r);
      const batch = [...latest.values()];
      for (let start = 0; start < batch.length; start += UPSERT_CHUNK) {
        const chunk = batch.slice(start, start + UPSERT_CHUNK);
        // The CTE reads the rows as they were before this statement, so it names the
        // users an id moved away from, whose loaded matrices must forget it.
        const moved = await run<{ tenant_id: string; user_id: string; kind: VectorKind; id: string }>(
          `with input as (
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[])
               as t(tenant_id, kind, id, user_id, session_id, model, dims, embedding)
           ),
           moved as (
             select v.tenant_id, v.user_id, v.kind, v.id from vectors v
             join input i on v.tenant_id = i.tenant_id and v.kind = i.kind and v.id = i.id
             where v.user_id <> i.user_id
           ),
           up as (
             insert into vectors (tenant_id, kind, id, user_id, session_id, model, dims, embedding)
             select tenant_id, kind, id, user_id, session_id, model, dims, decode(embedding, 'base64') from input
             on conflict (tenant_id, kind, id) do update set
               user_id = excluded.user_id, session_id = excluded.session_id, model = excluded.model,
               dims = excluded.dims, embedding = excluded.embedding, created_at = now()
             returning 1
           )
           select * from moved`,
          [
            chunk.map((r) => r.tenantId),
            chunk.map((r) => r.kind),
            chunk.map((r) => r.id),
            chunk.map((r) => r.userId),
            chunk.map((r) => r.sessionId),
            chunk.map((r) => r.model),
            chunk.map((r) => r.vector.length),
            chunk.map((r) => toBase64(r.vector)),
          ],
        );
        for (const mv of moved) apply(userKey(mv.tenant_id, mv.user_id), (m) => m.remove(mv.kind, mv.id));
        for (const r of chunk) {
          apply(userKey(r.tenantId, r.userId), (m) => {
            if (m.dims === r.vector.length) m.set(r.kind, r.id, r.sessionId, r.vector);
            else m.remove(r.kind, r.id); // another model's size: a query of that size reloads
          });
        }
      }
      enforceBudget();
      // A loaded user grown past the threshold (or to twice the rows the lists were trained
      // on) starts its build now, in the background, rather than on the next query: a user's
      // history grows through these writes, and the first query after the growth should not
      // be the one that waits on, or answers exactly during, a build of tens of seconds.
      for (const key of new Set(batch.map((r) => userKey(r.tenantId, r.userId)))) {
        const m = loaded.get(key);
        m?.maybeIndex(approx, () => loaded.get(key) === m, later);
      }
    },

    async query(q) {
      if (q.topK <= 0 || q.vector.length === 0) return [];
      const m = await matrixFor(q.tenantId, q.userId, q.vector.length);
      const unit = Float32Array.from(q.vector);
      normaliseInPlace(unit, 0, unit.length);
      const kinds = q.kinds && q.kinds.length > 0 ? new Set(q.kinds) : undefined;
      const key = userKey(q.tenantId, q.userId);
      m.maybeIndex(approx, () => loaded.get(key) === m, later);
      return m.query(unit, Math.floor(q.topK), approx, q.sessionId, kinds, scanThread(), offload);
    },

    async deleteByIds(tenantId, ids) {
      if (ids.length === 0) return;
      // Naming every kind lets the (tenant_id, kind, id) key find the rows without a scan.
      const gone = await run<{ user_id: string; kind: VectorKind; id: string }>(
        "delete from vectors where tenant_id = $1 and kind = any($2::text[]) and id = any($3::text[]) returning user_id, kind, id",
        [tenantId, KINDS, [...new Set(ids)]],
      );
      for (const g of gone) apply(userKey(tenantId, g.user_id), (m) => m.remove(g.kind, g.id));
    },

    async deleteByUser(tenantId, userId) {
      await run("delete from vectors where tenant_id = $1 and user_id = $2", [tenantId, userId]);
      const key = userKey(tenantId, userId);
      loaded.delete(key);
      apply(key, (m) => m.clear());
    },

    async count(tenantId, userId) {
      const [row] =
        userId === undefined
          ? await run<{ n: number }>("select count(*)::int as n from vectors where tenant_id = $1", [tenantId])
          : await run<{ n: number }>("select count(*)::int as n from vectors where tenant_id = $1 and user_id = $2", [
              tenantId,
              userId,
            ]);
      return Number(row?.n ?? 0);
    },

    buildsInFlight(tenantId) {
      const prefix = `${tenantId}\u0000`;
      let n = 0;
      for (const [key, m] of loaded) if (m.isBuilding && key.startsWith(prefix)) n++;
      return n;
    },

    indexState(tenantId, userId) {
      const m = loaded.get(userKey(tenantId, userId));
      if (!m) return "not loaded";
      if (m.ivf !== null && m.size >= approx.exactBelow && m.ivf.assigned >= m.size) return "ready";
      return m.isBuilding ? "building" : "exact";
    },

    async indexed(tenantId, userId, dims) {
      const m = await matrixFor(tenantId, userId, dims);
      const key = userKey(tenantId, userId);
      m.maybeIndex(approx, () => loaded.get(key) === m, later);
      await m.built;
      return m.ivf !== null && m.size >= approx.exactBelow && m.ivf.assigned >= m.size;
    },

    // Drops the memory and ends the scan thread; the SqlClient was given to us and stays open.
    async close() {
      loaded.clear();
      closed = true;
      await thread?.close();
    },
  };
}
