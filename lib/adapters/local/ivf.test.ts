// The IVF index's candidates: the rows of the lists nearest to a query, in row order, taken
// as the definition says (lists by centroid score, then index; at least `probe` of them, more
// until `enough` rows pass the filter), checked against that definition computed here from
// the rows themselves.

import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { IvfIndex, sparseRows, type MatrixView } from "./ivf.ts";
import { lanesOf } from "./vector-scan.ts";

const DIMS = 24;
const SHIFT = 6; // blocks of 64 rows

/** Seeded sparse rows in column-major blocks of 2^SHIFT rows; `rows[i]` is row i's values. */
function matrix(size: number, seed: number): { m: MatrixView; rows: Float32Array[] } {
  const r = mulberry32(seed);
  const rows = Array.from({ length: size }, () => Float32Array.from({ length: DIMS }, () => (r() < 0.3 ? r() * 2 - 1 : 0)));
  return { m: matrixOf(rows, rows.map((_, i) => (i % 3 === 0 ? "memory" : "message"))), rows };
}

/** The rows (and their kinds) in column-major blocks of 2^SHIFT rows. */
function matrixOf(rows: Float32Array[], kinds: string[]): MatrixView {
  const full = 1 << SHIFT;
  const blocks = Array.from({ length: Math.ceil(rows.length / full) }, () => new Float32Array(full * DIMS));
  rows.forEach((v, i) => v.forEach((x, d) => (blocks[i >> SHIFT]![d * full + (i & (full - 1))] = x)));
  return { dims: DIMS, blocks, shift: SHIFT, size: rows.length, ids: rows.map((_, i) => `m${i}`), kinds };
}

/** Scores of every list for a vector's non-zero dims, summed as the index sums them (dim by dim). */
function listScores(centroids: Float32Array, lists: number, v: Float32Array): Float64Array {
  const scores = new Float64Array(lists);
  v.forEach((x, d) => {
    if (x === 0) return;
    for (let c = 0; c < lists; c++) scores[c] = scores[c]! + centroids[d * lists + c]! * x;
  });
  return scores;
}

/** The definition: each row in its nearest list (the first best), lists taken best first until `probe` and `enough`. */
function expected(centroids: Float32Array, lists: number, rows: Float32Array[], query: Float32Array, probe: number, enough: number, keep?: (row: number) => boolean): number[] {
  const listOf = rows.map((v) => {
    const s = listScores(centroids, lists, v);
    let best = 0;
    for (let c = 1; c < lists; c++) if (s[c]! > s[best]!) best = c;
    return best;
  });
  const s = listScores(centroids, lists, query);
  const order = Array.from({ length: lists }, (_, c) => c).sort((a, b) => (s[b]! > s[a]! ? 1 : s[b]! < s[a]! ? -1 : a - b));
  const out: number[] = [];
  for (let taken = 0; taken < lists; taken++) {
    if (taken >= probe && out.length >= enough) break;
    const c = order[taken]!;
    listOf.forEach((l, row) => {
      if (l === c && (!keep || keep(row))) out.push(row);
    });
  }
  return out.sort((a, b) => a - b);
}

/** `size` seeded rows, `lists` seeded centroids (`tie`: lists 5 and 9 alike), every row assigned; `r` goes on from the centroids' seed. */
function indexed(size: number, lists: number, seed: number, tie = false) {
  const { m, rows } = matrix(size, seed);
  const r = mulberry32(seed * 31 + 1);
  const centroids = Float32Array.from({ length: DIMS * lists }, () => r() * 2 - 1);
  if (tie) for (let d = 0; d < DIMS; d++) centroids[d * lists + 5] = centroids[d * lists + 9]!;
  const ivf = new IvfIndex(centroids, lists, DIMS, size);
  expect(ivf.assignSome(m, size)).toBe(true);
  return { m, rows, r, centroids, ivf };
}

describe("IvfIndex.candidates", () => {
  it("takes the nearest lists' rows in row order, more lists while too few rows pass the filter", () => {
    const size = 3000;
    const lists = 23;
    // Equal scores for two lists: the lower one comes first.
    const { m, rows, r, centroids, ivf } = indexed(size, lists, 7, true);
    const keep = (row: number) => m.kinds[row] === "message";
    let checked = 0;
    for (let q = 0; q < 40; q++) {
      const query = Float32Array.from({ length: DIMS }, () => (r() < 0.4 ? r() * 2 - 1 : 0));
      const { index, value } = lanesOf(query, DIMS);
      for (const [probe, enough] of [[1, 0], [3, 10], [2, 900], [8, 50], [lists + 5, 0], [1, size * 2]] as const) {
        for (const filter of [undefined, keep]) {
          const got = Array.from(ivf.candidates(index, value, probe, enough, filter));
          expect(got).toEqual(expected(centroids, lists, rows, query, probe, enough, filter));
          checked++;
        }
      }
    }
    expect(checked).toBe(40 * 6 * 2);
  });

  it("answers the same after rows change lists, and across calls (its marks are cleared)", () => {
    const size = 1500;
    const lists = 11;
    const { m, rows, r, centroids, ivf } = indexed(size, lists, 3);
    // Rows rewritten in place: each moves to its new nearest list (list order no longer row order).
    const full = 1 << SHIFT;
    for (let k = 0; k < 200; k++) {
      const row = Math.floor(r() * size);
      const v = Float32Array.from({ length: DIMS }, () => (r() < 0.3 ? r() * 2 - 1 : 0));
      rows[row] = v;
      v.forEach((x, d) => (m.blocks[row >> SHIFT]![d * full + (row & (full - 1))] = x));
      ivf.rowSet(m, row);
    }
    const query = Float32Array.from({ length: DIMS }, () => r() * 2 - 1);
    const { index, value } = lanesOf(query, DIMS);
    const want = expected(centroids, lists, rows, query, 3, 100);
    expect(Array.from(ivf.candidates(index, value, 3, 100))).toEqual(want);
    expect(Array.from(ivf.candidates(index, value, 3, 100))).toEqual(want);
    expect(Array.from(ivf.candidates(index, value, 1, 0))).toEqual(expected(centroids, lists, rows, query, 1, 0));
  });

  // After the matrix's reorder (renumber), each list's rows are one run of rows, in order:
  // candidates() then reads the lists out without the bitmap, until writes move rows between
  // lists.
  it("takes laid-out lists' rows in row order, as rows are added and after they move", () => {
    const lists = 23;
    const { m, rows, r, centroids, ivf } = indexed(2900, lists, 11);
    const order = ivf.listOrder();
    ivf.renumber(order);
    let now = Array.from(order, (from) => rows[from]!);
    let view = matrixOf(now, Array.from(order, (from) => m.kinds[from]!));
    const check = (queries: number) => {
      const keep = (row: number) => view.kinds[row] === "message";
      for (let q = 0; q < queries; q++) {
        const query = Float32Array.from({ length: DIMS }, () => (r() < 0.4 ? r() * 2 - 1 : 0));
        const { index, value } = lanesOf(query, DIMS);
        for (const [probe, enough] of [[1, 0], [3, 10], [2, 900], [lists, 0]] as const) {
          for (const filter of [undefined, keep]) {
            expect(Array.from(ivf.candidates(index, value, probe, enough, filter))).toEqual(expected(centroids, lists, now, query, probe, enough, filter));
          }
        }
      }
    };
    check(20);
    // New rows at the end join the ends of their lists: still laid out.
    const extra = matrix(100, 12).rows;
    for (const v of extra) {
      now = [...now, v];
      view = matrixOf(now, [...view.kinds, "message"]);
      ivf.rowSet(view, now.length - 1);
    }
    check(20);
    // Rows rewritten in place, each to its new nearest list: the lists interleave.
    for (let k = 0; k < 60; k++) {
      const row = Math.floor(r() * now.length);
      now[row] = Float32Array.from({ length: DIMS }, () => (r() < 0.3 ? r() * 2 - 1 : 0));
      view = matrixOf(now, [...view.kinds]);
      ivf.rowSet(view, row);
    }
    check(20);
  });

  it("copies sample rows sparsely, exactly, however their density changes along the way", () => {
    // 256 dimensions: rows sparse at first, then far denser than the copy's first guess (64 a
    // row), so its room is extrapolated from the rows copied so far and grown more than once.
    const dims = 256, full = 64, size = 3000;
    const r = mulberry32(9);
    const rows = Array.from({ length: size }, (_, i) => Float32Array.from({ length: dims }, () => (r() < (i < 500 ? 0.05 : i < 1500 ? 0.5 : 0.95) ? r() * 2 - 1 : 0)));
    const blocks = Array.from({ length: Math.ceil(size / full) }, () => new Float32Array(full * dims));
    rows.forEach((v, i) => v.forEach((x, d) => (blocks[i >> 6]![d * full + (i & (full - 1))] = x)));
    const m: MatrixView = { dims, blocks, shift: 6, size, ids: rows.map((_, i) => `m${i}`), kinds: rows.map(() => "message") };
    const order = Array.from({ length: size }, (_, i) => (i * 7) % size);
    const gen = sparseRows(m, order);
    let step = gen.next();
    while (!step.done) step = gen.next();
    const { start, dim, value } = step.value;
    order.forEach((row, i) => {
      const want = [...rows[row]!].flatMap((x, d) => (x !== 0 ? [[d, x]] : []));
      const got = Array.from({ length: start[i + 1]! - start[i]! }, (_, k) => [dim[start[i]! + k]!, value[start[i]! + k]!]);
      expect(got).toEqual(want);
    });
  });
});
