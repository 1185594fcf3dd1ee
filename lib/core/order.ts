// Comparators for sorting by a number, and the selection of a k-th value (a top-k's floor).
//
// The comparators: Array.prototype.sort boxes a comparator's result when it is not a small
// integer: `b.score - a.score` allocated a heap number per comparison (about 110 KB to sort 780
// fused hits, six times a search). These return -1, 0 or 1, and treat NaN as equal to
// everything, as the subtraction did.

/** Larger first: negative when x comes before y. */
export function descending(x: number, y: number): number {
  return x > y ? -1 : x < y ? 1 : 0;
}

/** Smaller first. */
export function ascending(x: number, y: number): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The value that would sit at index `k` of `a` sorted ascending (Hoare's selection; reorders `a`). */
export function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Median of three as the pivot: already sorted runs stay linear.
    const mid = (lo + hi) >> 1;
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

// kthLargest's copy of the values (reused: callers are synchronous, one at a time).
let kthScratch = new Float64Array(0);

/**
 * The k-th largest of values[0, n) (1 ≤ k ≤ n): a top-k's floor, every value above it being
 * among the k best. By select() over a copy, so `values` stay as they are.
 */
export function kthLargest(values: Float64Array, n: number, k: number): number {
  if (kthScratch.length < n) kthScratch = new Float64Array(2 * n);
  const copy = kthScratch.subarray(0, n);
  copy.set(values.subarray(0, n));
  return select(copy, n - k);
}
