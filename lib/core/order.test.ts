import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../test/fixtures/random.ts";
import { ascending, descending, kthLargest, select } from "./order.ts";

describe("number comparators", () => {
  it("order as the subtraction did, ties and NaN included, returning only -1, 0 or 1", () => {
    const r = mulberry32(5);
    const xs = Array.from({ length: 2000 }, (_, i) => (i % 97 === 0 ? NaN : i % 7 === 0 ? 0.5 : r() * 1e6 - 5e5));
    const items = xs.map((score, i) => ({ score, i }));
    // Array.prototype.sort is stable: equal comparisons keep the input order in both.
    expect([...items].sort((a, b) => descending(a.score, b.score)).map((x) => x.i)).toEqual([...items].sort((a, b) => b.score - a.score).map((x) => x.i));
    expect([...items].sort((a, b) => ascending(a.score, b.score)).map((x) => x.i)).toEqual([...items].sort((a, b) => a.score - b.score).map((x) => x.i));
    for (let k = 1; k < xs.length; k++) {
      expect([-1, 0, 1]).toContain(descending(xs[k - 1]!, xs[k]!));
      expect(Math.sign(ascending(xs[k - 1]!, xs[k]!))).toBe(Math.sign(xs[k - 1]! - xs[k]!) || 0);
    }
  });
});

describe("select", () => {
  it("finds the value at each index of the sorted array, duplicates, sorted and reversed runs included", () => {
    const r = mulberry32(5);
    const arrays = [
      Array.from({ length: 300 }, () => r()),
      Array.from({ length: 300 }, () => Math.floor(r() * 4)),
      Array.from({ length: 257 }, (_, i) => i),
      Array.from({ length: 257 }, (_, i) => -i),
      Array.from({ length: 64 }, () => 7),
      [1],
      [2, 1],
    ];
    for (const values of arrays) {
      const sorted = Float64Array.from(values).sort();
      for (let k = 0; k < values.length; k++) expect(select(Float64Array.from(values), k)).toBe(sorted[k]);
    }
  });
});

describe("kthLargest", () => {
  it("finds the k-th largest of a prefix, leaving the values as they were", () => {
    const r = mulberry32(9);
    for (const n of [1, 2, 5, 64, 300]) {
      const values = Float64Array.from({ length: n + 10 }, () => Math.floor(r() * 20));
      const before = Float64Array.from(values);
      const prefix = Array.from(values.subarray(0, n)).sort((a, b) => b - a);
      for (let k = 1; k <= n; k++) expect(kthLargest(values, n, k)).toBe(prefix[k - 1]);
      expect(values).toEqual(before);
    }
  });
});
