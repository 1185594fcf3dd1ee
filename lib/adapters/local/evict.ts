// Whole-user eviction shared by the in-process indexes (keyword, vector, graph): each keeps its
// loaded users in a Map in order of use (least recent first, a read moves a user to the end)
// and, past its budget, drops users from the front until every measure is within its limit.
//
// A user just loaded is admitted only when holding it is worth more than holding the users it
// would push out. What a user not held costs is a reload (and, in the graph's shared mode, its
// calls answered by the SQL store meanwhile): work in proportion to its size, on each use. So a
// user is worth its uses (counted, and halved every `window` uses so that old uses fade) times
// its size, and a user that would push out users worth as much or more is served from the copy
// it was loaded into for that call and not held. Without this, two users that do not fit the
// budget together evicted each other at every switch between them: a 100k-message user served
// beside a 1k-message one was reloaded whole for every other call (the managed graph index at
// a budget of 1M rows, 675 ms a call at the median; fifty-ninth round of BENCHMARKS.md). With
// it, the larger keeps its place and the smaller, cheap to load, is loaded for its calls.

export interface Budget<V> {
  /** What one loaded value counts against the limit (turns, characters, bytes, rows). */
  size: (value: V) => number;
  limit: number;
}

export interface Retention<V> {
  /** Counts a use of `k`: a read that found it held, or that will load it. */
  use(k: string): void;
  /**
   * Brings `loaded` within every budget, least recently used first. With `keep` (a user just
   * loaded, read or grown, already in `loaded`): the others go only when `keep` is worth more
   * than they are together; otherwise `keep` goes and they stay. True when `keep` is held after.
   */
  enforce(loaded: Map<string, V>, keep?: string): boolean;
  /**
   * Whether loading `k` (not held) to hold it would be refused now, going by its size when it
   * was last held or refused: a load whose only use is to be held can be left undone.
   */
  refuses(loaded: Map<string, V>, k: string): boolean;
}

export interface RetentionOptions {
  /** Uses after which every count is halved (default 1,000). */
  window?: number;
}

interface Seen {
  /** Uses, halved every window. */
  uses: number;
  /** Its size by each budget when last measured (held, evicted or refused); empty when never. */
  sizes: number[];
}

export function createRetention<V>(budgets: readonly Budget<V>[], options: RetentionOptions = {}): Retention<V> {
  const window = options.window ?? 1000;
  if (!(window >= 1)) throw new Error(`window must be at least 1, got ${window}`);
  const seen = new Map<string, Seen>();
  let usesInWindow = 0;

  const entry = (k: string): Seen => {
    let e = seen.get(k);
    if (!e) seen.set(k, (e = { uses: 0, sizes: [] }));
    return e;
  };
  const sizesOf = (v: V) => budgets.map((b) => b.size(v));
  /** Its share of the budget it fills most (a limit of 0 counts as 1). */
  const share = (sizes: readonly number[]) => Math.max(0, ...sizes.map((s, i) => s / Math.max(1, budgets[i]!.limit)));
  const worth = (k: string, sizes: readonly number[]) => (seen.get(k)?.uses ?? 0) * share(sizes);

  /**
   * The least recently used users (not `keep`) to drop for `extra` more to fit (the sizes of
   * one not held), and what they are worth together.
   */
  function victims(loaded: Map<string, V>, keep: string | undefined, extra: readonly number[] | null): { keys: string[]; sizes: number[][]; worth: number } {
    const totals = budgets.map((b, i) => {
      let t = extra ? extra[i]! : 0;
      for (const v of loaded.values()) t += b.size(v);
      return t;
    });
    const out = { keys: [] as string[], sizes: [] as number[][], worth: 0 };
    for (const [k, v] of loaded) {
      if (totals.every((t, i) => t <= budgets[i]!.limit)) break;
      if (k === keep) continue;
      const sizes = sizesOf(v);
      out.keys.push(k);
      out.sizes.push(sizes);
      out.worth += worth(k, sizes);
      sizes.forEach((s, i) => (totals[i]! -= s));
    }
    return out;
  }

  return {
    use(k) {
      entry(k).uses++;
      if (++usesInWindow < window) return;
      usesInWindow = 0;
      for (const [key, e] of seen) {
        e.uses >>= 1;
        if (e.uses === 0) seen.delete(key);
      }
    },

    enforce(loaded, keep) {
      const drop = victims(loaded, keep, null);
      const kept = keep === undefined ? undefined : loaded.get(keep);
      if (keep !== undefined && kept !== undefined) {
        const sizes = sizesOf(kept);
        entry(keep).sizes = sizes;
        // Ties keep what is held: two users of equal worth would otherwise swap at every use.
        if (drop.keys.length > 0 && !(worth(keep, sizes) > drop.worth)) {
          loaded.delete(keep);
          return false;
        }
      }
      drop.keys.forEach((k, i) => {
        loaded.delete(k);
        entry(k).sizes = drop.sizes[i]!;
      });
      return keep === undefined || kept !== undefined;
    },

    refuses(loaded, k) {
      const sizes = seen.get(k)?.sizes;
      if (!sizes || sizes.length === 0 || loaded.has(k)) return false;
      const drop = victims(loaded, k, sizes);
      return drop.keys.length > 0 && !(worth(k, sizes) > drop.worth);
    },
  };
}
