// The scan thread (vector-scan.ts) sums exactly what the index's own thread sums, reads the
// matrix it shares rather than a copy, and answers null (sum here instead) when it cannot run.

import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { createScanThread, lanesOf, scanSums, sumsHere, type MatrixBlocks, type ScanRequest, type ScanThread } from "./vector-scan.ts";

/** The thread's sums for `req`, copied out of the array it reuses. */
const sumsThere = (thread: ScanThread, req: ScanRequest) => thread.run(req, (sums) => Array.from(sums));

/** Seeded values for rows × dims, as one block of `capacity` rows (shift 13) and in blocks of 2^shift rows. */
function matrix(rows: number, dims: number, capacity: number, seed: number, shift = 13): { one: MatrixBlocks; blocked: MatrixBlocks } {
  const r = mulberry32(seed);
  const data = new Float32Array(new SharedArrayBuffer(capacity * dims * 4));
  for (let d = 0; d < dims; d++) for (let i = 0; i < rows; i++) if (r() < 0.4) data[d * capacity + i] = r() * 2 - 1;
  const full = 1 << shift;
  const blocks = Array.from({ length: Math.ceil(rows / full) }, () => new Float32Array(new SharedArrayBuffer(full * dims * 4)));
  for (let d = 0; d < dims; d++) for (let i = 0; i < rows; i++) blocks[i >> shift]![d * full + (i & (full - 1))] = data[d * capacity + i]!;
  return { one: { blocks: [data], dims, shift: 13 }, blocked: { blocks, dims, shift } };
}

function query(dims: number, density: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: dims }, () => (r() < density ? r() * 2 - 1 : 0));
}

describe("vector scan thread", () => {
  it("returns the same sums as the caller's thread, for every row and for chosen rows, in one block or many", async () => {
    const thread = createScanThread();
    try {
      // More rows than a kernel's run (2048), 37 dimensions (not a multiple of 4), spare
      // capacity; and the same rows in blocks of 1024 (the last one part full).
      const dims = 37, size = 5000, capacity = 6000;
      const { one, blocked } = matrix(size, dims, capacity, 1, 10);
      for (const [i, density] of [0.05, 0.3, 1].entries()) {
        const lanes = lanesOf(query(dims, density, 10 + i), dims);
        // Chosen rows out of order, across blocks, one twice.
        const rows = Int32Array.from([0, 1, 2047, 2048, 4999, 17, 1023, 1024, 3000, 17]);
        const want = { all: Array.from(scanSums({ ...one, size, lanes })), chosen: Array.from(scanSums({ ...one, size, lanes, rows })) };
        for (const m of [one, blocked]) {
          const all: ScanRequest = { ...m, size, lanes };
          const chosen: ScanRequest = { ...all, rows };
          expect(Array.from(scanSums(all))).toEqual(want.all);
          expect(Array.from(scanSums(chosen))).toEqual(want.chosen);
          for (const req of [all, chosen]) {
            const there = await sumsThere(thread, req);
            expect(there).not.toBeNull();
            expect(there).toEqual(Array.from(scanSums(req)));
            expect(Array.from(sumsHere(req))).toEqual(there);
          }
        }
      }
      // Chosen rows in long runs of consecutive rows (an index's lists laid out one after
      // another), one run crossing a block's end: scored run by run, the full scan's numbers.
      for (const [i, density] of [0.05, 0.3, 1].entries()) {
        const lanes = lanesOf(query(dims, density, 20 + i), dims);
        const runs = [[100, 400], [1000, 1300], [2040, 2060], [4000, 5000]];
        const rows = Int32Array.from(runs.flatMap(([from, to]) => Array.from({ length: to! - from! }, (_, k) => from! + k)));
        const all = Array.from(scanSums({ ...one, size, lanes }));
        for (const m of [one, blocked]) {
          const req: ScanRequest = { ...m, size, lanes, rows };
          expect(Array.from(scanSums(req))).toEqual(Array.from(rows, (row) => all[row]));
          expect(await sumsThere(thread, req)).toEqual(Array.from(rows, (row) => all[row]));
        }
      }
      // The matrix is shared, not copied: a value changed here is read there.
      const lanes = lanesOf(Float32Array.from({ length: dims }, (_, d) => (d === 3 ? 1 : 0)), dims);
      const block = blocked.blocks[2]!;
      block[3 * 1024 + 10] = 0.5;
      expect((await sumsThere(thread, { ...blocked, size, lanes }))![2048 + 10]).toBe(0.5);
      block[3 * 1024 + 10] = -0.25;
      expect((await sumsThere(thread, { ...blocked, size, lanes }))![2048 + 10]).toBe(-0.25);
    } finally {
      await thread.close();
    }
  });

  it("writes every sum over what an array held before, and keeps requests in flight at once apart", async () => {
    const dims = 37, size = 5000;
    const { blocked } = matrix(size, dims, size, 4, 10);
    const reqs: ScanRequest[] = Array.from({ length: 7 }, (_, i) => {
      const lanes = lanesOf(query(dims, 0.3, 40 + i), dims);
      // All rows, then fewer and fewer chosen ones: later requests fit arrays made for earlier ones.
      return i === 0 ? { ...blocked, size, lanes } : { ...blocked, size, lanes, rows: Int32Array.from({ length: 4000 >> i }, (_, k) => (k * 7 + i) % size) };
    });
    const want = reqs.map((req) => Array.from(scanSums(req)));
    // Into an array holding other numbers (NaN, and a longer request's sums): the same sums.
    const into = new Float64Array(size).fill(Number.NaN);
    for (const [i, req] of reqs.entries()) expect(Array.from(scanSums(req, into))).toEqual(want[i]);
    expect(() => scanSums(reqs[0]!, new Float64Array(size - 1))).toThrow(RangeError);
    const thread = createScanThread();
    try {
      // More in flight than the arrays kept, twice over, and each answer read after all were asked.
      for (let round = 0; round < 2; round++) {
        const answers = await Promise.all(reqs.map((req) => sumsThere(thread, req)));
        expect(answers).toEqual(want);
      }
      // One at a time, largest last: each reads only its own sums from a reused array.
      for (const [i, req] of [...reqs.entries()].reverse()) expect(await sumsThere(thread, req)).toEqual(want[i]);
    } finally {
      await thread.close();
    }
  });

  it("answers null when its script cannot run, or once closed, or for memory it cannot share", async () => {
    const dims = 8, size = 10;
    const { one } = matrix(size, dims, size, 2);
    const req: ScanRequest = { ...one, size, lanes: lanesOf(query(dims, 1, 3), dims) };
    const missing = createScanThread(new URL("./no-such-scan-thread.ts", import.meta.url));
    expect(await sumsThere(missing, req)).toBeNull();
    expect(await sumsThere(missing, req)).toBeNull();
    await missing.close();

    const thread = createScanThread();
    expect(await sumsThere(thread, { ...req, blocks: [Float32Array.from(one.blocks[0]!)] })).toBeNull();
    expect(await sumsThere(thread, req)).not.toBeNull();
    await thread.close();
    expect(await sumsThere(thread, req)).toBeNull();
  });
});
