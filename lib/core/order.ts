// Comparators for sorting by a number. Array.prototype.sort boxes a comparator's result when
// it is not a small integer: `b.score - a.score` allocated a heap number per comparison (about
// 110 KB to sort 780 fused hits, six times a search). These return -1, 0 or 1, and treat NaN
// as equal to everything, as the subtraction did.

/** Larger first: negative when x comes before y. */
export function descending(x: number, y: number): number {
  return x > y ? -1 : x < y ? 1 : 0;
}

/** Smaller first. */
export function ascending(x: number, y: number): number {
  return x < y ? -1 : x > y ? 1 : 0;
}
