// Reordering a user's vector matrix so that each inverted-file list's rows sit together
// (vector-index.ts, UserMatrix): the copy runs in slices between event-loop turns, into new
// blocks, while the old ones go on answering queries and taking writes.
//
// At 100k rows of 512 dimensions the reorder moves 200 MB, a third of a second of work; done
// in one go on the server's thread it stalled every request the server had in flight. Here
// each slice moves a few columns of every row (about `budget` values), and a last slice
// renames the rows (their ids, kinds, sessions and keys). Writes that land meanwhile go to the
// old blocks and are told to the reorder:
// - a row set again (a new vector, or a move to another session) is copied whole at the end;
// - a row added keeps no place in the copy: it is placed at the end, in a hole if there is one;
// - a row removed leaves a hole where its copy was, and the matrix's last row, moved into its
//   old place, keeps its place in the copy (or, if it was added meanwhile, none).
// finish() then copies what changed, fills the holes, and hands back the new blocks and names.

import type { VectorKind } from "../../core/ports.ts";
import { rowKey, type MatrixView } from "./ivf.ts";
import { blockRuns, rowPlace, type MatrixBlocks } from "./vector-scan.ts";

/** What the reorder reads of the matrix: what the IVF index reads, and each row's session. */
export interface ReorderSource extends MatrixView {
  readonly kinds: readonly VectorKind[];
  readonly sessions: readonly string[];
}

/** The reordered matrix: row i of it is row from[i] of the matrix as it is when finish() runs. */
export interface Reordered {
  readonly from: Int32Array;
  readonly ids: string[];
  readonly kinds: VectorKind[];
  readonly sessions: string[];
  readonly rowOf: Map<string, number>;
}

export class Reorder {
  /**
   * New row i holds old row order[i] (-1: a hole, its row removed). Old rows from
   * order.length on were added while it ran; newOf[r] is old row r's place in the copy
   * (-1: none) for old rows below order.length.
   */
  private readonly order: Int32Array;
  private readonly newOf: Int32Array;
  /** New rows set again since their columns were copied, to copy whole at the end (each once). */
  private readonly changed: number[] = [];
  private readonly isChanged: Uint8Array;
  /** One old column gathered by old row, for the scatter into the new blocks. */
  private readonly column: Float32Array;
  /** Columns moved so far; then rows renamed so far. */
  private columns = 0;
  private renamed = 0;
  private readonly ids: string[] = [];
  private readonly kinds: VectorKind[] = [];
  private readonly sessions: string[] = [];
  private readonly rowOf = new Map<string, number>();
  readonly blocks: Float32Array[];

  /**
   * `order` is the new order of the matrix's rows (row order[i] becomes row i); `blocks` the
   * new blocks, with room for them, of the matrix's dims and shift.
   */
  constructor(order: Int32Array, blocks: Float32Array[]) {
    this.blocks = blocks;
    const n = order.length;
    this.order = order.slice();
    this.newOf = new Int32Array(n);
    for (let i = 0; i < n; i++) this.newOf[order[i]!] = i;
    this.isChanged = new Uint8Array(n);
    this.column = new Float32Array(n);
  }

  get bytes(): number {
    let bytes = this.column.byteLength + this.order.byteLength * 2;
    for (const b of this.blocks) bytes += b.byteLength;
    return bytes;
  }

  /** Moves about `budget` values (or renames about budget / 64 rows); true once only finish() is left. */
  step(m: ReorderSource, budget: number): boolean {
    const { order, column } = this;
    const { dims } = m;
    const n = order.length;
    if (this.columns < dims) {
      // Old rows past n are added ones, and rows past the size are stale: neither is read by order.
      const from = blockRuns(m, Math.min(n, m.size));
      const to = blockRuns({ blocks: this.blocks, dims, shift: m.shift }, n);
      const end = Math.min(dims, this.columns + Math.max(1, Math.floor(budget / Math.max(1, n))));
      for (let d = this.columns; d < end; d++) {
        for (const { block, stride, first, rows } of from) column.set(block.subarray(d * stride, d * stride + rows), first);
        for (const { block, stride, first, rows } of to) {
          const at = d * stride;
          for (let i = 0; i < rows; i++) {
            const o = order[first + i]!;
            block[at + i] = o < 0 ? 0 : column[o]!;
          }
        }
      }
      this.columns = end;
      if (end < dims) return false;
    }
    // A renamed row costs about as much as 64 values moved (its key set in a new map).
    const end = Math.min(n, this.renamed + Math.max(1, Math.floor(budget / 64)));
    for (let i = this.renamed; i < end; i++) {
      const o = order[i]!;
      if (o < 0) {
        this.ids.push("");
        this.kinds.push("message");
        this.sessions.push("");
        continue;
      }
      const id = m.ids[o]!, kind = m.kinds[o]!;
      this.ids.push(id);
      this.kinds.push(kind);
      this.sessions.push(m.sessions[o]!);
      this.rowOf.set(rowKey(kind, id), i);
    }
    this.renamed = end;
    return end >= n;
  }

  /** Old row `row` was set (a new vector or session): its copy is taken again at the end. */
  set(row: number): void {
    if (row >= this.newOf.length) return;
    const p = this.newOf[row]!;
    if (p >= 0 && !this.isChanged[p]) {
      this.isChanged[p] = 1;
      this.changed.push(p);
    }
  }

  /**
   * The matrix removed old row `row` (its key `key`) by moving its last row, `last`, into
   * its place (or dropped `row`, when it was the last).
   */
  removed(row: number, last: number, key: string): void {
    const { order, newOf } = this;
    const n = order.length;
    if (row < n && newOf[row]! >= 0) order[newOf[row]!] = -1;
    this.rowOf.delete(key);
    if (row === last) {
      if (row < n) newOf[row] = -1;
      return;
    }
    // Rows only move down: a row moved past n is an added one, with no place in the copy.
    const p = last < n ? newOf[last]! : -1;
    if (row < n) {
      newOf[row] = p;
      if (p >= 0) order[p] = row;
    }
    if (last < n) newOf[last] = -1;
  }

  /**
   * The new blocks, complete for the matrix as it is now: the rows set since copied again, the
   * rows added since (or moved in without a place) put into holes and then at the end, and,
   * when the matrix has shrunk, the copy's last rows moved down into the holes left.
   */
  finish(m: ReorderSource): Reordered {
    const { order, newOf, blocks, ids, kinds, sessions, rowOf } = this;
    const { dims, shift, size } = m;
    const n = order.length;
    const to: MatrixBlocks = { blocks, dims, shift };
    const copyRow = (src: MatrixBlocks, fromRow: number, into: number) => {
      const a = rowPlace(src, fromRow), b = rowPlace(to, into);
      for (let d = 0; d < dims; d++) b.block[d * b.stride + b.offset] = a.block[d * a.stride + a.offset]!;
    };
    const name = (into: number, fromRow: number) => {
      const id = m.ids[fromRow]!, kind = m.kinds[fromRow]!;
      ids[into] = id;
      kinds[into] = kind;
      sessions[into] = m.sessions[fromRow]!;
      rowOf.set(rowKey(kind, id), into);
    };
    for (const p of this.changed) {
      const o = order[p]!;
      if (o < 0) continue;
      copyRow(m, o, p);
      sessions[p] = m.sessions[o]!;
    }
    const from = new Int32Array(size);
    from.set(order.subarray(0, Math.min(n, size)));
    // Rows with no place in the copy go into its holes first, then after its last row.
    let hole = 0;
    const nextHole = () => {
      while (hole < n && order[hole]! >= 0) hole++;
      return hole < n ? hole : -1;
    };
    let tail = n;
    for (let r = 0; r < size; r++) {
      if (r < n && newOf[r]! >= 0) continue;
      let into = nextHole();
      if (into >= 0) order[into] = r;
      else into = tail++;
      copyRow(m, r, into);
      name(into, r);
      from[into] = r;
    }
    // Fewer rows than the copy holds: its rows past the size move down into the holes left.
    for (let i = size; i < n; i++) {
      const o = order[i]!;
      if (o < 0) continue;
      const into = nextHole();
      order[into] = o;
      order[i] = -1;
      copyRow(to, i, into);
      name(into, o);
      from[into] = o;
    }
    ids.length = kinds.length = sessions.length = size;
    return { from, ids, kinds, sessions, rowOf };
  }
}
