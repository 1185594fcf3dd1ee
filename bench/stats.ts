// The benchmarks' quantiles, in a module of its own: a tool that imports only these starts
// without loading Strata (bench/in-process.ts loads the whole runtime), so its command line is
// checked at once.

/** The q-quantile (nearest rank, 0 ≤ q ≤ 1) of numbers already sorted ascending. */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** The p-quantile of xs (nearest rank, 0 ≤ p ≤ 1). */
export function quantile(xs: readonly number[], p: number): number {
  return quantileOfSorted([...xs].sort((a, b) => a - b), p);
}
