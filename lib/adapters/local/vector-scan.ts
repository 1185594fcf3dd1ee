// The embedded vector index's scoring kernels, and the thread that runs them beside the API's.
//
// A user's matrix is stored by column (vector-index.ts), and a query scores rows by summing,
// over its non-zero dimensions, the column's value times the query's. That sum is the one
// piece of a search that grows with the user's rows and needs nothing but numbers: over 10k
// rows it was a third of a search's CPU, over 100k (approximate) a quarter of a context
// call's. In a single-threaded server it also ran one after the other with BM25 and the
// graph tier, which hold their indexes in the API's thread. The matrix lives in a
// SharedArrayBuffer, so the sums can run on a second thread while the API's thread serves the
// other tiers and other requests: the index sends the column layout and the query, and gets
// back one sum per row.
//
// The sums are the same numbers on either thread: each row's four partial sums (one per
// lane of a row-major four-way unrolled loop, each over its dimensions in increasing order),
// added s0 + s1 + s2 + s3, whichever kernel and whichever thread computes them.

import type { Worker } from "node:worker_threads";

/** A query's non-zero dimensions grouped by lane (see lanesOf). */
export interface Lanes {
  index: Int32Array;
  value: Float32Array;
  /** Where each of the four lanes ends in index/value. */
  ends: number[];
}

/**
 * The query's non-zero dimensions grouped by the accumulator a row-major dense scan would
 * add them to (i mod 4 in a four-way unrolled loop, the tail after it to the first), each
 * group in increasing order. A skipped dimension would add exactly zero, so summing only
 * these, group by group in this order, gives the dense loop's scores to the bit.
 */
export function lanesOf(query: Float32Array, dims: number): Lanes {
  let nonZero = 0;
  for (let i = 0; i < dims; i++) if (query[i] !== 0) nonZero++;
  const index = new Int32Array(nonZero);
  const value = new Float32Array(nonZero);
  const ends: number[] = [];
  const mainEnd = dims - (dims % 4);
  let k = 0;
  for (let lane = 0; lane < 4; lane++) {
    for (let i = lane; i < mainEnd; i += 4) {
      if (query[i] !== 0) {
        index[k] = i;
        value[k++] = query[i]!;
      }
    }
    if (lane === 0) {
      for (let i = mainEnd; i < dims; i++) {
        if (query[i] !== 0) {
          index[k] = i;
          value[k++] = query[i]!;
        }
      }
    }
    ends.push(k);
  }
  return { index, value, ends };
}

// Rows scored per block: the four accumulators of a block (4 × 8 bytes a row) stay in cache
// while each of the query's columns streams through them.
const BLOCK_ROWS = 2048;
// Per thread: a kernel runs start to end without yielding, so one at a time.
const accumulators = Array.from({ length: 4 }, () => new Float64Array(BLOCK_ROWS));
let scratch = new Float64Array(4096);

/**
 * A user's matrix: blocks of 2^shift rows (the first may hold fewer while it is the only one),
 * each stored by column: dimension d of row r is at d × stride + (r mod 2^shift) of block
 * r >> shift, its stride being the rows it has room for (blockStride). A matrix that grows
 * adds a block instead of copying every row into a larger one.
 */
export interface MatrixBlocks {
  readonly dims: number;
  readonly blocks: readonly Float32Array[];
  readonly shift: number;
}

/** Rows a block has room for: the stride of its columns. */
export function blockStride(block: Float32Array, dims: number): number {
  return block.length / dims;
}

/** The matrix's rows 0 … size − 1 as runs, one per block: the block, its stride, its first row and how many of the rows it holds. */
export function blockRuns(m: MatrixBlocks, size: number): { block: Float32Array; stride: number; first: number; rows: number }[] {
  const runs: { block: Float32Array; stride: number; first: number; rows: number }[] = [];
  for (let b = 0, first = 0; b < m.blocks.length && first < size; b++, first += 1 << m.shift) {
    const block = m.blocks[b]!;
    const stride = blockStride(block, m.dims);
    runs.push({ block, stride, first, rows: Math.min(stride, size - first) });
  }
  return runs;
}

/** Where row `row` of the matrix is: its block, the block's stride, and its place in the block's columns. */
export function rowPlace(m: MatrixBlocks, row: number): { block: Float32Array; stride: number; offset: number } {
  const block = m.blocks[row >> m.shift]!;
  return { block, stride: blockStride(block, m.dims), offset: row & ((1 << m.shift) - 1) };
}

/** out[outAt + r] = the score of row first + r, for r in 0 … size − 1, of one column-major block. */
function columnSums(data: Float32Array, capacity: number, size: number, lanes: Lanes, out: Float64Array, outAt: number, first = 0): void {
  const { index, value, ends } = lanes;
  const [a0, a1, a2, a3] = accumulators as [Float64Array, Float64Array, Float64Array, Float64Array];
  for (let start = 0; start < size; start += BLOCK_ROWS) {
    const count = Math.min(BLOCK_ROWS, size - start);
    const at = first + start;
    let k = 0;
    for (let lane = 0; lane < 4; lane++) {
      const acc = accumulators[lane]!;
      acc.fill(0, 0, count);
      const end = ends[lane]!;
      // Eight, then four of the lane's columns a pass, added one after another in their
      // order: an eighth (a quarter) of the accumulator traffic, the same sums.
      for (; k + 7 < end; k += 8) {
        const v0 = value[k]!, v1 = value[k + 1]!, v2 = value[k + 2]!, v3 = value[k + 3]!;
        const v4 = value[k + 4]!, v5 = value[k + 5]!, v6 = value[k + 6]!, v7 = value[k + 7]!;
        const c0 = index[k]! * capacity + at, c1 = index[k + 1]! * capacity + at;
        const c2 = index[k + 2]! * capacity + at, c3 = index[k + 3]! * capacity + at;
        const c4 = index[k + 4]! * capacity + at, c5 = index[k + 5]! * capacity + at;
        const c6 = index[k + 6]! * capacity + at, c7 = index[k + 7]! * capacity + at;
        for (let r = 0; r < count; r++) {
          let s = acc[r]!;
          s += data[c0 + r]! * v0;
          s += data[c1 + r]! * v1;
          s += data[c2 + r]! * v2;
          s += data[c3 + r]! * v3;
          s += data[c4 + r]! * v4;
          s += data[c5 + r]! * v5;
          s += data[c6 + r]! * v6;
          s += data[c7 + r]! * v7;
          acc[r] = s;
        }
      }
      for (; k + 3 < end; k += 4) {
        const v0 = value[k]!, v1 = value[k + 1]!, v2 = value[k + 2]!, v3 = value[k + 3]!;
        const c0 = index[k]! * capacity + at, c1 = index[k + 1]! * capacity + at;
        const c2 = index[k + 2]! * capacity + at, c3 = index[k + 3]! * capacity + at;
        for (let r = 0; r < count; r++) {
          let s = acc[r]!;
          s += data[c0 + r]! * v0;
          s += data[c1 + r]! * v1;
          s += data[c2 + r]! * v2;
          s += data[c3 + r]! * v3;
          acc[r] = s;
        }
      }
      for (; k < end; k++) {
        const v = value[k]!;
        const column = index[k]! * capacity + at;
        for (let r = 0; r < count; r++) acc[r] = acc[r]! + data[column + r]! * v;
      }
    }
    for (let r = 0; r < count; r++) out[outAt + start + r] = a0[r]! + a1[r]! + a2[r]! + a3[r]!;
  }
}

/** out[i] = the score of row rows[i] of one column-major block (the approximate search's candidates). */
function rowSums(data: Float32Array, capacity: number, rows: Int32Array, lanes: Lanes, out: Float64Array): void {
  const { index, value, ends } = lanes;
  const count = rows.length;
  if (scratch.length < count * 4) scratch = new Float64Array(count * 8);
  const sums = scratch;
  sums.fill(0, 0, count * 4);
  let k = 0;
  for (let lane = 0; lane < 4; lane++) {
    const end = ends[lane]!;
    const at = lane * count;
    for (; k < end; k++) {
      const v = value[k]!;
      const column = index[k]! * capacity;
      for (let i = 0; i < count; i++) sums[at + i] = sums[at + i]! + data[column + rows[i]!]! * v;
    }
  }
  for (let i = 0; i < count; i++) out[i] = sums[i]! + sums[count + i]! + sums[2 * count + i]! + sums[3 * count + i]!;
}

/** What the scan thread is asked: the matrix (its blocks shared), its rows, the query, and the rows to score (all when absent). */
export interface ScanRequest extends MatrixBlocks {
  size: number;
  lanes: Lanes;
  rows?: Int32Array;
}

/** Mean length of the runs of consecutive rows above which the rows are scored run by run. */
const MIN_RUN = 16;

/** Where the run of consecutive rows (within one block) starting at rows[i] ends: the index after its last. */
function runEnd(rows: Int32Array, i: number, shift: number): number {
  let j = i + 1;
  while (j < rows.length && rows[j] === rows[j - 1]! + 1 && rows[j]! >> shift === rows[i]! >> shift) j++;
  return j;
}

/** Whether `rows` holds runs of consecutive rows (within one block) `minRun` long on average. */
function runsOfRows(rows: Int32Array, shift: number, minRun: number): boolean {
  let runs = 0;
  for (let i = 0; i < rows.length; i = runEnd(rows, i, shift)) runs++;
  return runs * minRun <= rows.length;
}

/** How many sums a request makes: one per row named, or per row of the matrix. */
export function sumsOf(req: ScanRequest): number {
  return req.rows ? req.rows.length : req.size;
}

/**
 * The sums of a request, on whichever thread: rows 0 … size − 1, or the rows named; into the
 * first of `into` when given (every sum is written, none added to), in a new array otherwise.
 */
export function scanSums(req: ScanRequest, into?: Float64Array): Float64Array {
  const { blocks, dims, shift, rows, lanes } = req;
  const n = sumsOf(req);
  if (into && into.length < n) throw new RangeError(`scanSums: room for ${into.length} sums, ${n} asked`);
  const out = into ? into.subarray(0, n) : new Float64Array(n);
  if (!rows) {
    for (const { block, stride, first, rows: n } of blockRuns(req, req.size)) columnSums(block, stride, n, lanes, out, first);
  } else if (runsOfRows(rows, shift, MIN_RUN)) {
    // Rows in long runs of consecutive rows (an inverted-file index whose lists were laid out
    // one after another): each run streams through the columns as the full scan does.
    const mask = (1 << shift) - 1;
    for (let i = 0, j; i < rows.length; i = j) {
      j = runEnd(rows, i, shift);
      const block = blocks[rows[i]! >> shift]!;
      columnSums(block, blockStride(block, dims), j - i, lanes, out, i, rows[i]! & mask);
    }
  } else if (blocks.length === 1) rowSums(blocks[0]!, blockStride(blocks[0]!, dims), rows, lanes, out);
  else {
    // The rows grouped by block (a counting sort, keeping their order within a block), each
    // group summed in its block, and the sums put back in the order asked.
    const n = rows.length;
    const mask = (1 << shift) - 1;
    const from = new Int32Array(blocks.length + 1);
    for (let i = 0; i < n; i++) from[(rows[i]! >> shift) + 1]!++;
    for (let b = 0; b < blocks.length; b++) from[b + 1]! += from[b]!;
    const next = from.slice(0, blocks.length);
    const local = new Int32Array(n);
    const asked = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const at = next[rows[i]! >> shift]!++;
      local[at] = rows[i]! & mask;
      asked[at] = i;
    }
    const sums = new Float64Array(n);
    for (let b = 0; b < blocks.length; b++) {
      if (from[b + 1]! === from[b]!) continue;
      const block = blocks[b]!;
      rowSums(block, blockStride(block, dims), local.subarray(from[b]!, from[b + 1]!), lanes, sums.subarray(from[b]!, from[b + 1]!));
    }
    for (let j = 0; j < n; j++) out[asked[j]!] = sums[j]!;
  }
  return out;
}

// The caller thread's sums (sumsHere), reused from call to call.
let here = new Float64Array(0);

/**
 * scanSums in the caller's thread, into an array reused by the next call: read it before
 * anything else sums. A search's sums are garbage as soon as its best rows are picked, and an
 * exact scan's are 8 bytes a row (800 KB at 100k rows): made anew per search, they are memory
 * outside V8's heap that it counts, and enough of it starts a full collection of the heap.
 */
export function sumsHere(req: ScanRequest): Float64Array {
  const n = sumsOf(req);
  if (here.length < n) here = new Float64Array(Math.max(n, 2 * here.length));
  return scanSums(req, here);
}

/**
 * A thread running scanSums. run() hands the request's sums to `use` (in the caller's thread,
 * on memory reused by later requests: `use` reads them before it returns) and answers what it
 * returns, or null: "could not run there, sum here".
 */
export interface ScanThread {
  run<T>(req: ScanRequest, use: (sums: Float64Array) => T): Promise<T | null>;
  close(): Promise<void>;
}

// Sums arrays kept for later requests once their request is done, at most this many (more
// are in use only while that many scans are in flight at once).
const SPARE_SUMS = 4;

/** The scan thread's young generation, in MB: a scan allocates next to nothing (its sums are shared), so it stays small (lib/heap.ts). */
const SCAN_YOUNG_MB = 8;

/**
 * One worker thread running scanSums. A thread that fails before its first answer (no worker
 * threads, or a bundle without vector-scan-thread.ts beside it) never will: every request is
 * then answered null and the index sums in its own thread. One that fails later answers null
 * to what it held, likewise, and the next request starts a new one.
 */
export function createScanThread(script: URL = new URL("./vector-scan-thread.ts", import.meta.url)): ScanThread {
  let worker: Worker | null = null;
  let broken = false;
  let answered = false;
  let next = 0;
  const pending = new Map<number, (summed: boolean) => void>();
  // The sums are written by the thread into shared memory the caller reads, and the arrays
  // are kept for the next requests: none is made per request (see sumsHere).
  const spare: Float64Array[] = [];
  const take = (n: number): Float64Array => {
    const at = spare.findIndex((s) => s.length >= n);
    if (at >= 0) return spare.splice(at, 1)[0]!;
    let room = 1024;
    while (room < n) room *= 2;
    return new Float64Array(new SharedArrayBuffer(room * 8));
  };
  const giveBack = (sums: Float64Array) => {
    spare.push(sums);
    // The smallest go first: the kept ones serve the largest requests.
    if (spare.length > SPARE_SUMS) spare.sort((a, b) => b.length - a.length).pop();
  };
  const failAll = () => {
    if (!answered) broken = true;
    for (const resolve of pending.values()) resolve(false);
    pending.clear();
    worker = null;
  };
  // Loaded on first use: the edge read path imports this module where no worker threads exist.
  let starting: Promise<Worker | null> | null = null;
  const spawn = async (): Promise<Worker | null> => {
    try {
      const { Worker } = await import("node:worker_threads");
      if (broken) return null; // closed meanwhile
      const w = new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: SCAN_YOUNG_MB } });
      w.unref();
      w.on("message", (msg: { id: number; error?: string }) => {
        answered = true;
        const resolve = pending.get(msg.id);
        if (!resolve) return;
        pending.delete(msg.id);
        resolve(msg.error === undefined);
      });
      w.on("error", () => worker === w && failAll());
      w.on("exit", () => worker === w && failAll());
      worker = w;
    } catch {
      broken = true;
    }
    return worker;
  };
  const start = async (): Promise<Worker | null> => {
    if (worker || broken) return worker;
    starting ??= spawn().finally(() => (starting = null));
    return starting;
  };
  return {
    async run(req, use) {
      if (!req.blocks.every((b) => b.buffer instanceof SharedArrayBuffer)) return null;
      const w = await start();
      if (!w) return null;
      const id = next++;
      const n = sumsOf(req);
      const sums = take(n);
      // A thread that failed has stopped writing, so the array is free again either way.
      const summed = await new Promise<boolean>((resolve) => {
        pending.set(id, resolve);
        w.postMessage({ id, ...req, into: sums });
      });
      try {
        return summed ? use(sums.subarray(0, n)) : null;
      } finally {
        giveBack(sums);
      }
    },
    async close() {
      const w = worker;
      broken = true;
      failAll();
      await w?.terminate();
    },
  };
}
