// The scan thread (vector-scan.ts) sums exactly what the index's own thread sums, reads the
// matrix it shares rather than a copy, and answers null (sum here instead) when it cannot run.

import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { createScanThread, lanesOf, scanSums, type ScanRequest } from "./vector-scan.ts";

function matrix(rows: number, dims: number, capacity: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const data = new Float32Array(new SharedArrayBuffer(capacity * dims * 4));
  for (let d = 0; d < dims; d++) for (let i = 0; i < rows; i++) if (r() < 0.4) data[d * capacity + i] = r() * 2 - 1;
  return data;
}

function query(dims: number, density: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: dims }, () => (r() < density ? r() * 2 - 1 : 0));
}

describe("vector scan thread", () => {
  it("returns the same sums as the caller's thread, for every row and for chosen rows", async () => {
    const thread = createScanThread();
    try {
      // More rows than a block (2048), 37 dimensions (not a multiple of 4), spare capacity.
      const dims = 37, size = 5000, capacity = 6000;
      const data = matrix(size, dims, capacity, 1);
      for (const [i, density] of [0.05, 0.3, 1].entries()) {
        const lanes = lanesOf(query(dims, density, 10 + i), dims);
        const all: ScanRequest = { data, capacity, size, lanes };
        const chosen: ScanRequest = { ...all, rows: Int32Array.from([0, 1, 2047, 2048, 4999, 17]) };
        for (const req of [all, chosen]) {
          const there = await thread.run(req);
          expect(there).not.toBeNull();
          expect(Array.from(there!)).toEqual(Array.from(scanSums(req)));
        }
      }
      // The matrix is shared, not copied: a value changed here is read there.
      const lanes = lanesOf(Float32Array.from({ length: dims }, (_, d) => (d === 3 ? 1 : 0)), dims);
      data[3 * capacity + 10] = 0.5;
      expect((await thread.run({ data, capacity, size, lanes }))![10]).toBe(0.5);
      data[3 * capacity + 10] = -0.25;
      expect((await thread.run({ data, capacity, size, lanes }))![10]).toBe(-0.25);
    } finally {
      await thread.close();
    }
  });

  it("answers null when its script cannot run, or once closed, or for memory it cannot share", async () => {
    const dims = 8, size = 10;
    const data = matrix(size, dims, size, 2);
    const lanes = lanesOf(query(dims, 1, 3), dims);
    const missing = createScanThread(new URL("./no-such-scan-thread.ts", import.meta.url));
    expect(await missing.run({ data, capacity: size, size, lanes })).toBeNull();
    expect(await missing.run({ data, capacity: size, size, lanes })).toBeNull();
    await missing.close();

    const thread = createScanThread();
    expect(await thread.run({ data: Float32Array.from(data), capacity: size, size, lanes })).toBeNull();
    expect(await thread.run({ data, capacity: size, size, lanes })).not.toBeNull();
    await thread.close();
    expect(await thread.run({ data, capacity: size, size, lanes })).toBeNull();
  });
});
