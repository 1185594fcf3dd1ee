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

// kthLargest's copies of the values and of its sample (reused: callers are synchronous, one at
// a time).
let kthScratch = new Float64Array(0);
let kthSample = new Float64Array(0);

/** Every SAMPLE_STEP-th value is sampled, from SAMPLE_MIN values and k ≤ n / SAMPLE_STEP on. */
const SAMPLE_STEP = 8;
const SAMPLE_MIN = 1024;

/**
 * The k-th largest of values[0, n) (1 ≤ k ≤ n): a top-k's floor, every value above it being
 * among the k best. By select() over a copy, so `values` stay as they are.
 *
 * Over many values the selection's comparisons are branches the CPU cannot predict (about 10
 * ns a value: 26 µs for the 2,500 candidate sums of a 100k-row user's vector search). A sample
 * of every 8th value first gives a guess a little below the k-th largest (the sample's
 * (1.5 k / 8 + 4)-th largest); one pass keeps the values at or above the guess, a test that
 * mostly fails alike, and the selection runs over those alone. When at least k are kept, the
 * k-th largest of all is among them and is the same number; when fewer are (an unlucky
 * sample), every value is selected over as before. The answer is exact either way.
 */
export function kthLargest(values: Float64Array, n: number, k: number): number {
  if (kthScratch.length < n) kthScratch = new Float64Array(2 * n);
  if (n >= SAMPLE_MIN && k * SAMPLE_STEP <= n) {
    const m = Math.floor(n / SAMPLE_STEP);
    if (kthSample.length < m) kthSample = new Float64Array(2 * m);
    const sample = kthSample.subarray(0, m);
    for (let i = 0, at = 0; i < m; i++, at += SAMPLE_STEP) sample[i] = values[at]!;
    const guess = select(sample, m - Math.min(m, Math.ceil((k / SAMPLE_STEP) * 1.5) + 4));
    const kept = kthScratch;
    let held = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v >= guess) kept[held++] = v;
    }
    if (held >= k) return select(kept.subarray(0, held), held - k);
  }
  const copy = kthScratch.subarray(0, n);
  copy.set(values.subarray(0, n));
  return select(copy, n - k);
}
