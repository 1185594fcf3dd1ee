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

/**
 * Adds the per-tier timings an answer reports (a context call's or a search's `timings`, ms by
 * tier) to `tiers`, tier by tier; what is not a number is left out.
 */
export function noteTimings(tiers: Map<string, number[]>, timings: Readonly<Record<string, unknown>> | null | undefined): void {
  for (const [k, v] of Object.entries(timings ?? {})) if (typeof v === "number") (tiers.get(k) ?? tiers.set(k, []).get(k)!).push(v);
}

/** The median of each tier's timings, as a line (`digits` after the point). */
export function tierMedians(tiers: ReadonlyMap<string, readonly number[]>, digits = 2): string {
  return `timings (median ms): ${[...tiers].map(([k, xs]) => `${k} ${quantile(xs, 0.5).toFixed(digits)}`).join(", ")}`;
}

/**
 * The median of b[i] / a[i] over pairs timed side by side (the same query to each, one right
 * after the other): a ratio in which a slow moment of the machine falls on both sides of a pair.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) throw new Error(`paired timings need as many of each, at least one (got ${a.length} and ${b.length})`);
  return quantile(a.map((x, i) => b[i]! / x), 0.5);
}

/** A call bench/cold-start.ts timed: when it began (ms after the server's start), how long it took, whether it degraded a tier, and whether a vector index was being built then (GET /v1/status's indexes.building; null: not known yet). */
export interface ColdCall {
  at: number;
  ms: number;
  degraded: boolean;
  building: boolean | null;
}

/** A stretch of calls made in one state of the server's indexes, and what they took. */
export interface ColdPhase {
  phase: "before status" | "building" | "not building";
  count: number;
  /** When its first call began, ms after the server's start. */
  fromMs: number;
  p50: number;
  p95: number;
  max: number;
  /** Calls that degraded a tier. */
  degraded: number;
}

/**
 * The calls (in the order they began) cut into stretches by the index state each began in,
 * a new stretch at each change of state: so a server that builds, finishes, then builds
 * again (another user's index) shows each stretch apart, in order.
 */
export function coldPhases(calls: readonly ColdCall[]): ColdPhase[] {
  const phaseOf = (c: ColdCall): ColdPhase["phase"] => (c.building === null ? "before status" : c.building ? "building" : "not building");
  const out: ColdPhase[] = [];
  let run: ColdCall[] = [];
  const close = () => {
    if (run.length === 0) return;
    const ms = run.map((c) => c.ms).sort((a, b) => a - b);
    out.push({
      phase: phaseOf(run[0]!),
      count: run.length,
      fromMs: run[0]!.at,
      p50: quantileOfSorted(ms, 0.5),
      p95: quantileOfSorted(ms, 0.95),
      max: ms[ms.length - 1]!,
      degraded: run.filter((c) => c.degraded).length,
    });
    run = [];
  };
  for (const c of calls) {
    if (run.length > 0 && phaseOf(run[0]!) !== phaseOf(c)) close();
    run.push(c);
  }
  close();
  return out;
}
