// Per-tier time limits on the read path. A tier that fails or misses its limit does not fail
// the call: its part comes back empty, the tier is named in `degraded`, and the timing is
// still reported, so an agent gets a smaller context rather than an error.

import type { Logger } from "../log.ts";

/** Milliseconds per tier, reported in the body and as a Server-Timing header. */
export type TierTimings = Record<string, number>;

export async function timed<T>(
  tier: string,
  timings: TierTimings,
  degraded: string[],
  limitMs: number,
  log: Logger,
  fn: () => Promise<T>,
): Promise<T | null> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${tier} exceeded ${limitMs} ms`)), limitMs);
    });
    return await Promise.race([fn(), limit]);
  } catch (e) {
    degraded.push(tier);
    log.warn("tier degraded on read path", { tier, error: e });
    return null;
  } finally {
    clearTimeout(timer);
    timings[tier] = performance.now() - t0;
  }
}

export function serverTimingHeader(timings: TierTimings): string {
  return Object.entries(timings)
    .map(([k, v]) => `${k.replace(/[^a-zA-Z0-9_-]/g, "_")};dur=${v.toFixed(1)}`)
    .join(", ");
}
