// An inverted-file (IVF) index over one user's column-major matrix (vector-index.ts): the
// rows are split into about √N lists by spherical k-means, and a query scores only the rows
// of the lists whose centroids are nearest to it, instead of every row. It answers for
// users above a row threshold; below it, and until it is built, the exact scan answers.
//
// Everything is deterministic for a given set of rows: the training sample and the first
// centroids are picked by a hash of each row's kind and id (not by row order, which depends
// on load order), the sample is visited in that order, and ties go to the lower list
// (writes landing while a build runs in slices may change which rows the sample holds).
//
// Kept in step with writes: a new or changed row goes to its nearest list, a removed row
// leaves its list (and the row moved into its place takes over the moved row's entry).
// Lists drift as rows arrive after training; the owner retrains once the rows have
// doubled or halved since.

import { fnv1a, mix } from "./hash.ts";
import { rowPlace, type MatrixBlocks } from "./vector-scan.ts";

/** The part of a user's matrix the index reads (its blocks: MatrixBlocks in vector-scan.ts). */
export interface MatrixView extends MatrixBlocks {
  readonly size: number;
  readonly ids: readonly string[];
  readonly kinds: readonly string[];
}

/** A row's key: its kind and id (the matrix's map from key to row, and the sample's order). */
export const rowKey = (kind: string, id: string) => `${kind}\u0000${id}`;

/** FNV-1a of a row's key, then a murmur3 finaliser: a row-order-free position for sampling. */
function keyHash(kind: string, id: string): number {
  const s = rowKey(kind, id);
  return mix(fnv1a(s, 0, s.length, 0x811c9dc5));
}

/** Number of lists for `rows` rows: about √rows. */
export function listCount(rows: number): number {
  return Math.max(1, Math.round(Math.sqrt(rows)));
}

// Training rows per list (the sample is capped at this many times the list count) and
// k-means rounds over the sample.
const SAMPLE_PER_LIST = 40;
const ROUNDS = 5;
// Rows hashed, and sample rows copied, between yields: a few milliseconds at most.
const HASH_SLICE = 8192;
const SPARSE_SLICE = 1024;

/** A sparse copy of some rows: row i's non-zero dims are dim[start[i]..start[i+1]). */
interface Sparse {
  start: Int32Array;
  dim: Uint16Array;
  value: Float32Array;
}

/** Copies the rows, a slice at a time (yielding between slices). */
export function* sparseRows(m: MatrixView, rows: ArrayLike<number>): Generator<void, Sparse, void> {
  const { dims } = m;
  const start = new Int32Array(rows.length + 1);
  let dim = new Uint16Array(Math.max(16, rows.length * 64));
  let value = new Float32Array(dim.length);
  let k = 0;
  for (let i = 0; i < rows.length; i++) {
    if (i % SPARSE_SLICE === SPARSE_SLICE - 1) yield;
    const row = rows[i]!;
    if (k + dims > dim.length) {
      // Room for the rows left at the density of those copied so far, and a quarter more:
      // doubling from the first guess made about three times the final size of garbage (66 MB
      // for a 100k-row user's sample), memory V8 counts towards a full collection.
      const room = i === 0 ? dim.length * 2 : Math.ceil((k / i) * rows.length * 1.25);
      const d2 = new Uint16Array(Math.max(room, k + dims));
      d2.set(dim);
      dim = d2;
      const v2 = new Float32Array(d2.length);
      v2.set(value);
      value = v2;
    }
    const { block, stride, offset } = rowPlace(m, row);
    for (let d = 0; d < dims; d++) {
      const x = block[d * stride + offset]!;
      if (x !== 0) {
        dim[k] = d;
        value[k++] = x;
      }
    }
    start[i + 1] = k;
  }
  return { start, dim, value };
}

/**
 * The `n` rows of lowest key hash, in key-hash order (ties by key), hashing a slice of rows
 * at a time: only the rows at or below the n-th lowest hash are sorted.
 */
function* sampleRows(m: MatrixView, n: number): Generator<void, number[], void> {
  const { size } = m;
  const h = new Uint32Array(size);
  for (let row = 0; row < size; row++) {
    if (row % HASH_SLICE === HASH_SLICE - 1) yield;
    h[row] = keyHash(m.kinds[row]!, m.ids[row]!);
  }
  const bound = n >= size ? Infinity : h.slice().sort()[n - 1]!;
  yield;
  // Writes between slices may have removed rows (the sample is then of the rows left).
  const below: { row: number; h: number; key: string }[] = [];
  for (let row = 0, end = Math.min(size, m.size); row < end; row++) if (h[row]! <= bound) below.push({ row, h: h[row]!, key: rowKey(m.kinds[row]!, m.ids[row]!) });
  below.sort((a, b) => a.h - b.h || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return below.slice(0, n).map((o) => o.row);
}

/**
 * Trains the centroids, dims-major (dimension d of list c at d × lists + c), on a sample of
 * the matrix's rows. A generator: it yields between slices of work so that a caller may
 * spread it over event-loop turns (or run it straight through); its return value is the
 * centroids.
 */
export function* trainCentroids(m: MatrixView, lists: number): Generator<void, Float32Array, void> {
  const { dims, size } = m;
  // The sample: the rows of lowest key hash, in key-hash order (ties by key).
  const n = Math.min(size, lists * SAMPLE_PER_LIST);
  const sample = yield* sparseRows(m, yield* sampleRows(m, n));
  yield;
  const centroids = new Float32Array(dims * lists);
  // Initial centroids: the first `lists` sample rows (spread by the hash).
  for (let c = 0; c < Math.min(lists, n); c++) {
    for (let k = sample.start[c]!; k < sample.start[c + 1]!; k++) centroids[sample.dim[k]! * lists + c] = sample.value[k]!;
  }
  const scores = new Float64Array(lists);
  const sums = new Float64Array(dims * lists);
  const counts = new Int32Array(lists);
  // About two million multiply-adds (a few milliseconds) between yields.
  const slice = Math.max(1, Math.floor(2_000_000 / Math.max(1, lists * 200)));
  for (let round = 0; round < ROUNDS; round++) {
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      if (i % slice === slice - 1) yield;
      const best = nearestSparse(sample, i, centroids, lists, scores);
      counts[best]!++;
      for (let k = sample.start[i]!; k < sample.start[i + 1]!; k++) { const at = sample.dim[k]! * lists + best; sums[at] = sums[at]! + sample.value[k]!; }
    }
    for (let c = 0; c < lists; c++) {
      if (counts[c] === 0) continue; // an empty list keeps its centroid
      let norm = 0;
      for (let d = 0; d < dims; d++) norm += sums[d * lists + c]! * sums[d * lists + c]!;
      norm = Math.sqrt(norm);
      if (!(norm > 0)) continue;
      for (let d = 0; d < dims; d++) centroids[d * lists + c] = sums[d * lists + c]! / norm;
    }
  }
  return centroids;
}

function nearestSparse(s: Sparse, i: number, centroids: Float32Array, lists: number, scores: Float64Array): number {
  scores.fill(0);
  for (let k = s.start[i]!; k < s.start[i + 1]!; k++) {
    const v = s.value[k]!;
    const base = s.dim[k]! * lists;
    for (let c = 0; c < lists; c++) scores[c] = scores[c]! + centroids[base + c]! * v;
  }
  let best = 0;
  for (let c = 1; c < lists; c++) if (scores[c]! > scores[best]!) best = c;
  return best;
}

const ASSIGN_BLOCK = 64;

/** The non-zero values of a block of rows, each row's in its own fixed-size slot. */
class Sparse64 {
  readonly dims: Int32Array;
  readonly values: Float32Array;
  readonly length: Int32Array;
  private readonly width: number;
  constructor(rows: number, width: number) {
    this.width = width;
    this.dims = new Int32Array(rows * width);
    this.values = new Float32Array(rows * width);
    this.length = new Int32Array(rows);
  }
  reset(count: number): void {
    this.length.fill(0, 0, count);
  }
  push(r: number, d: number, x: number): void {
    const at = r * this.width + this.length[r]!++;
    this.dims[at] = d;
    this.values[at] = x;
  }
  dimsOf(r: number): Int32Array {
    return this.dims.subarray(r * this.width, (r + 1) * this.width);
  }
  valuesOf(r: number): Float32Array {
    return this.values.subarray(r * this.width, (r + 1) * this.width);
  }
}

/** Row lists over trained centroids, kept in step with the matrix by its owner. */
export class IvfIndex {
  readonly lists: number;
  readonly centroids: Float32Array;
  /** Rows the centroids were trained on (the owner retrains when the matrix drifts far from it). */
  readonly trainedRows: number;
  /** Each list's rows, unordered: members[c][0..length[c]). */
  private members: Int32Array[];
  private length: Int32Array;
  /** Each row's list, -1 while unassigned; its position in that list. */
  private listOf: Int32Array;
  private posOf: Int32Array;
  /** Rows below this are assigned (assignment runs front to back). */
  cursor = 0;
  private readonly scores: Float64Array;
  /** candidates()' marks: a bit per row of the lists it takes (zeroed again as it reads them out), and the lists taken. */
  private bits = new Int32Array(1024);
  /** The bitmap's words past this one are clear. */
  private marksEnd = 0;
  private taken = new Uint8Array(0);
  private readonly rowDims: Int32Array;
  private readonly rowValues: Float32Array;

  constructor(centroids: Float32Array, lists: number, dims: number, trainedRows: number) {
    this.lists = lists;
    this.centroids = centroids;
    this.trainedRows = trainedRows;
    this.members = Array.from({ length: lists }, () => new Int32Array(8));
    this.length = new Int32Array(lists);
    this.listOf = new Int32Array(16).fill(-1);
    this.posOf = new Int32Array(16);
    this.scores = new Float64Array(lists);
    this.rowDims = new Int32Array(dims);
    this.rowValues = new Float32Array(dims);
  }

  get bytes(): number {
    return this.centroids.byteLength + this.listOf.byteLength * 2 + this.members.reduce((s, l) => s + l.byteLength, 0);
  }

  get assigned(): number {
    return this.cursor;
  }

  /** The list nearest to row `row` of `m`. */
  private nearest(m: MatrixView, row: number): number {
    const { dims } = m;
    const { block, stride, offset } = rowPlace(m, row);
    let n = 0;
    for (let d = 0; d < dims; d++) {
      const x = block[d * stride + offset]!;
      if (x !== 0) {
        this.rowDims[n] = d;
        this.rowValues[n++] = x;
      }
    }
    return this.nearestOf(this.rowDims, this.rowValues, n);
  }

  private ensureRows(rows: number): void {
    if (rows <= this.listOf.length) return;
    const cap = Math.max(rows, this.listOf.length * 2);
    const l = new Int32Array(cap).fill(-1);
    l.set(this.listOf);
    this.listOf = l;
    const p = new Int32Array(cap);
    p.set(this.posOf);
    this.posOf = p;
  }

  private add(c: number, row: number): void {
    let list = this.members[c]!;
    const at = this.length[c]!;
    if (at === list.length) {
      const grown = new Int32Array(list.length * 2);
      grown.set(list);
      this.members[c] = list = grown;
    }
    list[at] = row;
    this.length[c] = at + 1;
    this.listOf[row] = c;
    this.posOf[row] = at;
  }

  private drop(row: number): void {
    const c = this.listOf[row]!;
    if (c < 0) return;
    const list = this.members[c]!;
    const at = this.posOf[row]!;
    const last = --this.length[c]!;
    if (at !== last) {
      const moved = list[last]!;
      list[at] = moved;
      this.posOf[moved] = at;
    }
    this.listOf[row] = -1;
  }

  /**
   * Assigns rows from the cursor on, at most `limit` of them; true once every row is
   * assigned. Rows are read a block at a time, column by column (contiguous reads).
   */
  assignSome(m: MatrixView, limit: number): boolean {
    this.ensureRows(m.size);
    const end = Math.min(m.size, this.cursor + limit);
    const { dims } = m;
    const block = new Sparse64(ASSIGN_BLOCK, dims);
    for (let start = this.cursor, count = 0; start < end; start += count) {
      // A run of rows within one block of the matrix.
      const blockEnd = ((start >> m.shift) + 1) << m.shift;
      count = Math.min(ASSIGN_BLOCK, end - start, blockEnd - start);
      const { block: data, stride, offset } = rowPlace(m, start);
      block.reset(count);
      for (let d = 0; d < dims; d++) {
        const column = d * stride + offset;
        for (let r = 0; r < count; r++) {
          const x = data[column + r]!;
          if (x !== 0) block.push(r, d, x);
        }
      }
      for (let r = 0; r < count; r++) {
        const row = start + r;
        this.drop(row);
        this.add(this.nearestOf(block.dimsOf(r), block.valuesOf(r), block.length[r]!), row);
      }
    }
    this.cursor = end;
    return this.cursor >= m.size;
  }

  /** The list whose centroid scores highest against the sparse vector (its first `n` dims `index`, values `value`), the lower list on a tie. */
  private nearestOf(index: Int32Array, value: Float32Array, n: number): number {
    const { scores, lists, centroids } = this;
    listScores(index, value, n, centroids, lists, scores);
    let best = 0;
    for (let c = 1; c < lists; c++) if (scores[c]! > scores[best]!) best = c;
    return best;
  }

  /**
   * The matrix reordered its rows, row `order[i]` becoming row i (so that each list's rows
   * sit together); every row is assigned.
   */
  renumber(order: Int32Array): void {
    const newOf = new Int32Array(order.length);
    for (let i = 0; i < order.length; i++) newOf[order[i]!] = i;
    for (let c = 0; c < this.lists; c++) {
      const list = this.members[c]!;
      const len = this.length[c]!;
      for (let i = 0; i < len; i++) list[i] = newOf[list[i]!]!;
      list.subarray(0, len).sort();
      for (let i = 0; i < len; i++) {
        this.listOf[list[i]!] = c;
        this.posOf[list[i]!] = i;
      }
    }
  }

  /** Rows in list order (each list's rows in row order): the order renumber() expects. */
  listOrder(): Int32Array {
    const out = new Int32Array(this.cursor);
    let k = 0;
    for (let c = 0; c < this.lists; c++) {
      const rows = this.members[c]!.subarray(0, this.length[c]!).slice().sort();
      out.set(rows, k);
      k += rows.length;
    }
    return out;
  }

  /** Row `row` was set (new or changed): it goes to its nearest list, if assignment has reached it. */
  rowSet(m: MatrixView, row: number): void {
    this.ensureRows(row + 1);
    // A new row at the end joins the assigned rows when they were all assigned.
    if (row === this.cursor && row === m.size - 1) this.cursor = m.size;
    if (row >= this.cursor) return;
    const c = this.nearest(m, row);
    if (this.listOf[row] === c) return;
    this.drop(row);
    this.add(c, row);
  }

  /**
   * The matrix moved row `last` into row `row` (or dropped `row`, when it was the last) and
   * shrank by one; `m.size` is already the new size.
   */
  rowRemoved(m: MatrixView, row: number, last: number): void {
    this.drop(row);
    if (row !== last) {
      const c = this.listOf[last]!;
      this.drop(last);
      if (c >= 0) this.add(c, row);
      else if (row < this.cursor) this.add(this.nearest(m, row), row);
    }
    if (this.cursor > m.size) this.cursor = m.size;
  }

  clear(): void {
    this.length.fill(0);
    this.listOf.fill(-1);
    this.cursor = 0;
  }

  /**
   * The rows that pass `keep` of the lists nearest to the query (its non-zero dims and
   * their values), in row order: from at least `probe` lists, and more until there are
   * `enough` of them (or every list is taken). Lists are taken best first (a higher centroid
   * score, then the lower list), but all that matters is which: the first `probe` are picked in
   * one pass (a sort of every list's score cost as much as the scores), and a list more at a
   * time only while too few rows were gathered. The rows come in order as the lists lay them
   * out when they can (laidOut), else marked in a bitmap and read out in order, instead of
   * gathered and sorted.
   */
  candidates(index: Int32Array, value: Float32Array, probe: number, enough: number, keep?: (row: number) => boolean): Int32Array {
    const { lists, centroids, scores } = this;
    listScores(index, value, index.length, centroids, lists, scores);
    // List c comes before list d: a higher score, or an equal one and a lower index.
    const before = (c: number, d: number) => scores[c]! > scores[d]! || (!(scores[c]! < scores[d]!) && c < d);
    const chosen = this.firstLists(Math.min(probe, lists), before);
    if (this.taken.length < lists) this.taken = new Uint8Array(lists);
    const taken = this.taken;
    // The rows gathered so far: with a filter, marked as each list is taken; without, counted.
    let k = 0;
    const take = (c: number) => {
      taken[c] = 1;
      k += keep ? this.mark(c, keep) : this.length[c]!;
    };
    for (const c of chosen) take(c);
    for (let n = chosen.length; n < lists && k < enough; n++) {
      let next = -1;
      for (let c = 0; c < lists; c++) if (!taken[c] && (next < 0 || before(c, next))) next = c;
      take(next);
      chosen.push(next);
    }
    taken.fill(0, 0, lists);
    if (!keep) {
      const out = this.laidOut(chosen, k);
      if (out) return out;
      for (const c of chosen) this.mark(c);
    }
    return this.readMarks(k);
  }

  /**
   * The `k` rows of the lists, in row order, when each list's rows are in order and no two
   * lists interleave: as the matrix's reorder lays them out (renumber()), and as they stay while
   * rows are only added. Null otherwise (a row removed or moved to another list since): the
   * bitmap then puts them in order. At 100k rows, 8 lists of about 300 rows took 35–40 µs
   * through the bitmap, most of it reading out its 3,000-odd words.
   */
  private laidOut(chosen: number[], k: number): Int32Array | null {
    const { members, length } = this;
    const order = chosen.filter((c) => length[c]! > 0).sort((c, d) => members[c]![0]! - members[d]![0]!);
    const out = new Int32Array(k);
    let at = 0;
    let last = -1;
    for (const c of order) {
      const list = members[c]!;
      const len = length[c]!;
      for (let i = 0; i < len; i++) {
        const row = list[i]!;
        if (row <= last) return null;
        out[at++] = last = row;
      }
    }
    return out;
  }

  /** Marks list `c`'s rows that pass `keep` in the bitmap; returns how many it marked. */
  private mark(c: number, keep?: (row: number) => boolean): number {
    let bits = this.bits;
    const list = this.members[c]!;
    const len = this.length[c]!;
    let marked = 0;
    for (let i = 0; i < len; i++) {
      const row = list[i]!;
      if (keep && !keep(row)) continue;
      const w = row >>> 5;
      if (w >= bits.length) {
        const grown = new Int32Array(Math.max(2 * bits.length, w + 1));
        grown.set(bits);
        this.bits = bits = grown;
      }
      bits[w] = bits[w]! | (1 << (row & 31));
      if (w >= this.marksEnd) this.marksEnd = w + 1;
      marked++;
    }
    return marked;
  }

  /** The `k` marked rows in row order; the bitmap is left clear. */
  private readMarks(k: number): Int32Array {
    const bits = this.bits;
    const out = new Int32Array(k);
    let at = 0;
    for (let w = 0, end = this.marksEnd; w < end; w++) {
      let word = bits[w]!;
      if (word === 0) continue;
      bits[w] = 0;
      while (word !== 0) {
        const low = word & -word;
        out[at++] = (w << 5) | (31 - Math.clz32(low));
        word ^= low;
      }
    }
    this.marksEnd = 0;
    return out;
  }

  /** The first `n` lists in `before`'s order, by insertion into a list of the best so far. */
  private firstLists(n: number, before: (c: number, d: number) => boolean): number[] {
    const best: number[] = [];
    if (n <= 0) return best;
    for (let c = 0; c < this.lists; c++) {
      if (best.length === n && !before(c, best[n - 1]!)) continue;
      let i = best.length < n ? best.length : n - 1;
      while (i > 0 && before(c, best[i - 1]!)) {
        best[i] = best[i - 1]!;
        i--;
      }
      best[i] = c;
    }
    return best;
  }
}

/**
 * scores[c] = the dot product of the sparse vector (its first `n` dims `index` and values
 * `value`) with centroid c (dims-major: dimension d of list c at d × lists + c). Each list's
 * products are added in the vector's order, as one loop per dimension adds them (the same sums
 * to the bit), but four dimensions a pass: a quarter of the loads and stores of `scores`. At
 * 316 lists and a query of 50 dims, 35 µs a search instead of 60 (bench/search.ts at 100k).
 */
export function listScores(index: Int32Array, value: Float32Array, n: number, centroids: Float32Array, lists: number, scores: Float64Array): void {
  scores.fill(0);
  let k = 0;
  for (; k + 3 < n; k += 4) {
    const v0 = value[k]!, v1 = value[k + 1]!, v2 = value[k + 2]!, v3 = value[k + 3]!;
    const b0 = index[k]! * lists, b1 = index[k + 1]! * lists, b2 = index[k + 2]! * lists, b3 = index[k + 3]! * lists;
    for (let c = 0; c < lists; c++) {
      let s = scores[c]!;
      s += centroids[b0 + c]! * v0;
      s += centroids[b1 + c]! * v1;
      s += centroids[b2 + c]! * v2;
      s += centroids[b3 + c]! * v3;
      scores[c] = s;
    }
  }
  for (; k < n; k++) {
    const v = value[k]!;
    const base = index[k]! * lists;
    for (let c = 0; c < lists; c++) scores[c] = scores[c]! + centroids[base + c]! * v;
  }
}
