import { describe, expect, it } from "vitest";
import { fuseRankings, queryTerms } from "./search.ts";

const ranked = (...ids: string[]) => ids.map((id, i) => ({ id, score: 100 - i }));

describe("fuseRankings", () => {
  it("puts items found by several retrievers above items found by one", () => {
    const fused = fuseRankings({ keyword: ranked("a", "b", "c"), vector: ranked("c", "d", "a") });
    expect(fused.map((f) => f.id).slice(0, 2).sort()).toEqual(["a", "c"]);
    expect(fused.find((f) => f.id === "a")?.sources).toEqual(["keyword", "vector"]);
    expect(fused.find((f) => f.id === "d")?.sources).toEqual(["vector"]);
  });

  it("orders by rank, not by the retrievers' raw scores", () => {
    const fused = fuseRankings({ keyword: [{ id: "x", score: 0.001 }], vector: [{ id: "y", score: 0.99 }, { id: "x", score: 0.5 }] });
    expect(fused[0]!.id).toBe("x");
  });

  it("weights the graph retriever below keyword and vector", () => {
    const fused = fuseRankings({ graph: ranked("g"), keyword: ranked("k") });
    expect(fused.map((f) => f.id)).toEqual(["k", "g"]);
  });

  it("returns scores in descending order and handles empty lists", () => {
    const fused = fuseRankings({ keyword: ranked("a", "b", "c", "d"), vector: ranked("d", "c"), graph: [] });
    const scores = fused.map((f) => f.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
    expect(fuseRankings({})).toEqual([]);
  });
});

describe("queryTerms", () => {
  it("drops stopwords and duplicates", () => {
    expect(queryTerms("What did Caroline do with Caroline's dog?")).toEqual(expect.arrayContaining(["caroline", "dog"]));
    expect(queryTerms("what did you do")).toEqual([]);
  });
});
