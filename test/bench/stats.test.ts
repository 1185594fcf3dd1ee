import { describe, expect, it } from "vitest";
import { coldPhases, noteTimings, pairedRatio, quantile, tierMedians } from "../../bench/stats.ts";

describe("bench/stats.ts", () => {
  it("quantile: nearest rank of the numbers, in whatever order they come", () => {
    expect(quantile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(3);
    expect(quantile([4, 1, 3, 2], 0.99)).toBe(4);
  });

  it("pairedRatio: the median of the pairs' ratios, not the ratio of the medians", () => {
    // The pairs' ratios 3, 1, 2: median 2. The medians' ratio would be 3 / 2 = 1.5.
    expect(pairedRatio([1, 2, 3], [3, 2, 6])).toBe(2);
    // The same numbers paired otherwise: ratios 6, 1, 1, median 1 (the medians' ratio still 1.5).
    expect(pairedRatio([1, 2, 3], [6, 2, 3])).toBe(1);
    expect(() => pairedRatio([1, 2], [1])).toThrow(/as many of each/);
    expect(() => pairedRatio([], [])).toThrow(/at least one/);
  });

  it("noteTimings gathers each tier's timings across answers, leaving out what is not a number", () => {
    const tiers = new Map<string, number[]>();
    noteTimings(tiers, { vector: 0.5, keyword: 0.25, total: 1.5 });
    noteTimings(tiers, { vector: 0.75, total: 2, degraded: "keyword" as unknown as number });
    noteTimings(tiers, undefined);
    noteTimings(tiers, null);
    expect([...tiers]).toEqual([
      ["vector", [0.5, 0.75]],
      ["keyword", [0.25]],
      ["total", [1.5, 2]],
    ]);
  });

  it("tierMedians prints each tier's median in the order the tiers were first seen", () => {
    const tiers = new Map<string, number[]>([
      ["session", [0.3, 0.1, 0.2]],
      ["total", [2, 1]],
    ]);
    expect(tierMedians(tiers)).toBe("timings (median ms): session 0.20, total 2.00");
    expect(tierMedians(tiers, 3)).toBe("timings (median ms): session 0.200, total 2.000");
  });

  it("coldPhases cuts the calls where the index state changes, in order, each stretch with its own figures", () => {
    const call = (at: number, ms: number, building: boolean | null, degraded = false) => ({ at, ms, building, degraded });
    const phases = coldPhases([
      call(10, 20_000, null, true),
      call(20_010, 40, true),
      call(20_050, 60, true, true),
      call(20_110, 50, true),
      call(21_000, 3, false),
      call(21_003, 4, false),
      call(30_000, 30, true),
    ]);
    expect(phases).toEqual([
      { phase: "before status", count: 1, fromMs: 10, p50: 20_000, p95: 20_000, max: 20_000, degraded: 1 },
      { phase: "building", count: 3, fromMs: 20_010, p50: 50, p95: 60, max: 60, degraded: 1 },
      { phase: "not building", count: 2, fromMs: 21_000, p50: 4, p95: 4, max: 4, degraded: 0 },
      { phase: "building", count: 1, fromMs: 30_000, p50: 30, p95: 30, max: 30, degraded: 0 },
    ]);
    expect(coldPhases([])).toEqual([]);
  });
});
