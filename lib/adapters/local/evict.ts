// Whole-user eviction shared by the in-process indexes (keyword, vector, graph): each keeps its
// loaded users in a Map in order of use (least recent first, a read moves a user to the end)
// and, past its budget, drops users from the front until every measure is within its limit.

export interface Budget<V> {
  /** What one loaded value counts against the limit (turns, characters, bytes, rows). */
  size: (value: V) => number;
  limit: number;
}

/** Drops least recently used entries until each budget holds, sparing `keep` (the user just read or loaded). */
export function evictPastBudget<V>(loaded: Map<string, V>, budgets: readonly Budget<V>[], keep?: string): void {
  const totals = budgets.map((b) => {
    let t = 0;
    for (const v of loaded.values()) t += b.size(v);
    return t;
  });
  for (const [k, v] of loaded) {
    if (totals.every((t, i) => t <= budgets[i]!.limit)) break;
    if (k === keep) continue;
    loaded.delete(k);
    budgets.forEach((b, i) => (totals[i]! -= b.size(v)));
  }
}
