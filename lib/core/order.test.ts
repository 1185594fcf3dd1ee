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

  it("finds the same value over many, by its sample, whether the sample guesses well or not", () => {
    const r = mulberry32(11);
    const cases = [
      // Spread values, a few distinct ones (ties across the guess), scores rising along runs (a
      // sample that sees only each run's start), all alike, and values the sample misses: the
      // largest sit only at its positions, so its guess keeps too few and every value is
      // selected over.
      Float64Array.from({ length: 2500 }, () => r() * 0.6),
      Float64Array.from({ length: 3000 }, () => Math.floor(r() * 5)),
      Float64Array.from({ length: 2048 }, (_, i) => (i % 256) / 256 + r() * 1e-3),
      Float64Array.from({ length: 1500 }, () => 0.25),
      Float64Array.from({ length: 4096 }, (_, i) => (i % 8 === 0 ? 1 + r() : r())),
      Float64Array.from({ length: 1024 }, (_, i) => -i),
    ];
    for (const values of cases) {
      const n = values.length;
      const before = Float64Array.from(values);
      const sorted = Array.from(values).sort((a, b) => b - a);
      for (const k of [1, 2, 7, 50, 127, Math.floor(n / 8), Math.floor(n / 8) + 1, n]) expect(kthLargest(values, n, k)).toBe(sorted[k - 1]);
      expect(values).toEqual(before);
    }
  });
});
