import { describe, expect, it } from "vitest";
import { readPages } from "./pages.ts";

describe("readPages", () => {
  // Rows in key order, read as a keyset select would: after the last row of the page before.
  const rows = Array.from({ length: 23 }, (_, i) => ({ key: i }));
  const read = (asked: [number | null, number][]) => async (after: { key: number } | null, limit: number) => {
    asked.push([after?.key ?? null, limit]);
    return rows.filter((r) => after === null || r.key > after.key).slice(0, limit);
  };

  it("reads every row once, in order, a page at a time, each page taken before the next is read", async () => {
    const asked: [number | null, number][] = [];
    const seen: number[][] = [];
    await readPages(read(asked), async (page) => void seen.push(page.map((r) => r.key)), 10);
    expect(seen).toEqual([rows.slice(0, 10), rows.slice(10, 20), rows.slice(20)].map((p) => p.map((r) => r.key)));
    expect(asked).toEqual([[null, 10], [9, 10], [19, 10]]);
  });

  it("reads once more after a full last page, and takes the empty page", async () => {
    const asked: [number | null, number][] = [];
    const sizes: number[] = [];
    await readPages(read(asked), async (page) => void sizes.push(page.length), 23);
    expect(sizes).toEqual([23, 0]);
    expect(asked).toEqual([[null, 23], [22, 23]]);
  });

  it("reads at least a row a select", async () => {
    const asked: [number | null, number][] = [];
    await readPages(read(asked), async () => {}, 0);
    expect(asked[0]).toEqual([null, 1]);
    expect(asked).toHaveLength(24);
  });
});
