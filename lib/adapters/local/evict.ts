// Whole-user eviction shared by the in-process indexes (keyword, vector, graph): each keeps its
// loaded users in a Map in order of use (least recent first, a read moves a user to the end)
// and, past its budget, drops users from the front until every measure is within its limit.
//
// A user just loaded that would push others out is held only once it has cost more than they
// would. A user not held costs a load in proportion to its size at each use (or, in the
// graph's shared mode, a call answered by the SQL store), and a user pushed out costs one
// reload of its size when it comes back. So a newcomer is not held (its caller answers from the
// copy loaded for it) until the loads it has cost since any of those users was last used come
// to more than their sizes together: rent until renting has cost more than buying. Without
// this, two users that did not fit the budget together evicted each other at every switch: a
// 100k-message user served beside a 1k-message one was loaded whole again for every other call
// (the managed graph index at a budget of 1M rows, 675 ms a call at the median; fifty-ninth
// round of BENCHMARKS.md). With it, the larger of two users used in turn keeps its place and
// the smaller is loaded for its calls; a newcomer used on its own, with the others idle, is
// held from the use at which its loads outweigh theirs (the second, for one as large).

export interface Budget<V> {
  /** What one loaded value counts against the limit (turns, characters, bytes, rows). */
  size: (value: V) => number;
  limit: number;
}

export interface Retention<V> {
  /** Notes a use of `k`: a read that found it held, or that will load it. */
  use(k: string): void;
  /** Drops least recently used users until each budget holds, sparing `keep` (one read or grown). */
  enforce(loaded: Map<string, V>, keep?: string): void;
  /**
   * For `k`, just loaded into `loaded` (at its end): holds it, dropping least recently used
   * users until each budget holds, once it has cost more than they would; until then drops `k`
   * and leaves them. True when `k` is held.
   */
  admit(loaded: Map<string, V>, k: string): boolean;
  /**
   * Whether loading `k` (not held) would be refused at this use, by its size when last
   * refused; true counts the use's cost as if it were loaded. A load whose only purpose is to
   * be held can then be left undone, and the caller answers another way.
   */
  refuses(loaded: Map<string, V>, k: string): boolean;
}

/** A user refused since `since`: what its loads (or other answers) have cost, in shares of the budget. */
interface Rent {
  paid: number;
  since: number;
  /** Its size by each budget when last refused. */
  sizes: number[];
}

// Users whose last use, or whose refusals, are remembered: beyond these the least recent are
// forgotten (a user forgotten counts as unused for long, or as never refused).
const REMEMBERED = 10_000;

export function createRetention<V>(budgets: readonly Budget<V>[]): Retention<V> {
  let clock = 0;
  const lastUse = new Map<string, number>();
  const rents = new Map<string, Rent>();

  const sizesOf = (v: V) => budgets.map((b) => b.size(v));
  /** Its share of the budget it fills most (a limit of 0 counts as 1). */
  const share = (sizes: readonly number[]) => Math.max(0, ...sizes.map((s, i) => s / Math.max(1, budgets[i]!.limit)));
  const remember = <T>(map: Map<string, T>, k: string, value: T) => {
    map.delete(k);
    map.set(k, value);
    if (map.size > REMEMBERED) map.delete(map.keys().next().value!);
  };

  /** The least recently used users (not `keep`) to drop for `extra` more to fit (one not held). */
  function victims(loaded: Map<string, V>, keep: string | undefined, extra: readonly number[] | null): { keys: string[]; cost: number; used: number } {
    const totals = budgets.map((b, i) => {
      let t = extra ? extra[i]! : 0;
      for (const v of loaded.values()) t += b.size(v);
      return t;
    });
    const out = { keys: [] as string[], cost: 0, used: -1 };
    for (const [k, v] of loaded) {
      if (totals.every((t, i) => t <= budgets[i]!.limit)) break;
      if (k === keep) continue;
      const sizes = sizesOf(v);
      out.keys.push(k);
      out.cost += share(sizes);
      out.used = Math.max(out.used, lastUse.get(k) ?? -1);
      sizes.forEach((s, i) => (totals[i]! -= s));
    }
    return out;
  }

  /** `k`'s rent with this use's cost added, begun again if one of the users it would push out was used since it began. */
  function rentWith(k: string, sizes: number[], pushedOutUsed: number): Rent {
    const rent = rents.get(k);
    const paid = rent && rent.since > pushedOutUsed ? rent.paid : 0;
    const since = rent && rent.since > pushedOutUsed ? rent.since : clock;
    return { paid: paid + share(sizes), since, sizes };
  }

  return {
    use(k) {
      remember(lastUse, k, ++clock);
    },

    enforce(loaded, keep) {
      for (const k of victims(loaded, keep, null).keys) loaded.delete(k);
    },

    admit(loaded, k) {
      const held = loaded.get(k);
      if (held === undefined) return false;
      const drop = victims(loaded, k, null);
      if (drop.keys.length > 0) {
        const rent = rentWith(k, sizesOf(held), drop.used);
        // Equal costs keep what is held: two users as large would otherwise swap at every use.
        if (!(rent.paid > drop.cost)) {
          remember(rents, k, rent);
          loaded.delete(k);
          return false;
        }
      }
      rents.delete(k);
      for (const v of drop.keys) loaded.delete(v);
      return true;
    },

    refuses(loaded, k) {
      const sizes = rents.get(k)?.sizes;
      if (!sizes || loaded.has(k)) return false;
      const drop = victims(loaded, k, sizes);
      if (drop.keys.length === 0) return false;
      const rent = rentWith(k, sizes, drop.used);
      if (rent.paid > drop.cost) return false;
      remember(rents, k, rent);
      return true;
    },
  };
}
