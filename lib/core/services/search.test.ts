import { describe, expect, it, vi } from "vitest";
import { Bm25Corpus } from "../bm25.ts";
import type { KeywordIndex } from "../keyword-index.ts";
import { createLogger } from "../log.ts";
import { dateFitter, queryDates } from "../temporal.ts";
import type { Message, ScoredId } from "../types.ts";
import {
  DEFAULT_SEARCH_CONFIG,
  boostAnswerType,
  boostDates,
  boostSessions,
  boostSpeakers,
  expandNeighbours,
  fuseRankings,
  hybridSearch,
  queryTerms,
  type SearchConfig,
  type SearchDeps,
} from "./search.ts";

const ranked = (...ids: string[]) => ids.map((id, i) => ({ id, score: 100 - i }));
const kw = (...ids: string[]) => ({ source: "keyword" as const, weight: 1, items: ranked(...ids) });
const vec = (...ids: string[]) => ({ source: "vector" as const, weight: 1, items: ranked(...ids) });
const scored = (...pairs: [string, number][]) => pairs.map(([id, score]) => ({ id, score, sources: ["keyword" as const] }));

describe("fuseRankings", () => {
  it("puts items found by several retrievers above items found by one", () => {
    const fused = fuseRankings([kw("a", "b", "c"), vec("c", "d", "a")]);
    expect(fused.map((f) => f.id).slice(0, 2).sort()).toEqual(["a", "c"]);
    expect(fused.find((f) => f.id === "a")?.sources).toEqual(["keyword", "vector"]);
    expect(fused.find((f) => f.id === "d")?.sources).toEqual(["vector"]);
  });

  it("orders by rank, not by the retrievers' raw scores", () => {
    const fused = fuseRankings([
      { source: "keyword", weight: 1, items: [{ id: "x", score: 0.001 }] },
      { source: "vector", weight: 1, items: [{ id: "y", score: 0.99 }, { id: "x", score: 0.5 }] },
    ]);
    expect(fused[0]!.id).toBe("x");
  });

  it("lets a heavier ranking's first place beat a lighter ranking's, and ignores weight 0", () => {
    const fused = fuseRankings([{ source: "graph", weight: 0.1, items: ranked("g") }, kw("k"), { source: "vector", weight: 0, items: ranked("v") }]);
    expect(fused.map((f) => f.id)).toEqual(["k", "g"]);
  });

  it("returns scores in descending order and handles empty lists", () => {
    const fused = fuseRankings([kw("a", "b", "c", "d"), vec("d", "c"), { source: "graph", weight: 1, items: [] }]);
    const scores = fused.map((f) => f.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
    expect(fuseRankings([])).toEqual([]);
  });
});

describe("queryTerms", () => {
  it("drops stopwords and duplicates", () => {
    expect(queryTerms("What did Caroline do with Caroline's dog?")).toEqual(expect.arrayContaining(["caroline", "dog"]));
    expect(queryTerms("what did you do")).toEqual([]);
  });
});

/** One session s1 of alternating speakers, a minute apart from 2023-05-01 (or `start`). */
function session(turns: [string, string][], sessionId = "s1", start = Date.UTC(2023, 4, 1)): { corpus: Bm25Corpus; messages: Message[] } {
  const corpus = new Bm25Corpus();
  const messages = turns.map(([name, content], i): Message => {
    const createdAt = new Date(start + i * 60_000).toISOString();
    return { tenantId: "t", id: `${sessionId}:${i + 1}`, sessionId, userId: "u", seq: i + 1, role: "user", name, content, createdAt, metadata: {}, tokens: 5 };
  });
  for (const m of messages) corpus.add({ id: m.id, sessionId, seq: m.seq, name: m.name, createdAt: Date.parse(m.createdAt) }, m.content);
  return { corpus, messages };
}

const NEIGHBOURS = { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 10 };

describe("expandNeighbours", () => {
  const { corpus } = session([
    ["Ann", "Hey!"],
    ["Bob", "How was the pottery class?"],
    ["Ann", "Great, I made a bowl."],
    ["Bob", "Nice."],
    ["Ann", "Bye."],
  ]);

  it("adds the turns next to a hit, below it, nearer ones higher", () => {
    const out = expandNeighbours(scored(["s1:3", 1]), corpus, { ...NEIGHBOURS, answerWeight: 0 });
    expect(out[0]!.id).toBe("s1:3");
    expect(out.slice(1, 3).map((f) => f.id).sort()).toEqual(["s1:2", "s1:4"]);
    expect(out.slice(3).map((f) => f.id).sort()).toEqual(["s1:1", "s1:5"]);
    const score = new Map(out.map((f) => [f.id, f.score]));
    expect(score.get("s1:2")).toBeCloseTo(0.4);
    expect(score.get("s1:1")).toBeCloseTo(0.2);
    expect(out.find((f) => f.id === "s1:2")!.sources).toEqual(["neighbour"]);
  });

  it("gives the turn after a matched question (its answer) more than other neighbours", () => {
    const out = expandNeighbours(scored(["s1:2", 1]), corpus, NEIGHBOURS);
    expect(out.map((f) => f.id).slice(0, 3)).toEqual(["s1:2", "s1:3", "s1:1"]);
    expect(out[1]!.score).toBeCloseTo(0.8);
    expect(out[1]!.notes).toEqual(["answer to s1:2"]);
    expect(out[2]!.notes).toEqual(["neighbour of s1:2"]);
  });

  it("adds to a neighbour that is a hit itself, and does nothing when off", () => {
    const out = expandNeighbours(scored(["s1:3", 1], ["s1:4", 0.5]), corpus, NEIGHBOURS);
    expect(out.find((f) => f.id === "s1:4")!.score).toBeCloseTo(0.5 + 0.4 * 1);
    expect(out.find((f) => f.id === "s1:4")!.sources).toEqual(["keyword", "neighbour"]);
    expect(expandNeighbours(scored(["s1:3", 1]), corpus, { ...NEIGHBOURS, radius: 0 }).map((f) => f.id)).toEqual(["s1:3"]);
  });
});

describe("boostDates", () => {
  it("lifts the turns written on (or in the week after) the date a query names", () => {
    const a = session([["Ann", "went hiking"]], "s1", Date.UTC(2023, 4, 3, 12));
    const b = session([["Ann", "went hiking"]], "s2", Date.UTC(2023, 7, 9, 12));
    const corpus = a.corpus;
    corpus.add({ id: "s2:1", sessionId: "s2", seq: 1, name: "Ann", createdAt: Date.UTC(2023, 7, 9, 12) }, b.messages[0]!.content);
    const { ranges } = queryDates("What did Ann do on 9 August, 2023?");
    const fitOf = dateFitter(ranges, DEFAULT_SEARCH_CONFIG.dates.slackDays * 86_400_000);
    const out = boostDates(scored(["s1:1", 1], ["s2:1", 0.9]), corpus, fitOf, DEFAULT_SEARCH_CONFIG.dates.boost);
    expect(out.map((f) => f.id)).toEqual(["s2:1", "s1:1"]);
    expect(out[0]!.score).toBeCloseTo(0.9 * (1 + DEFAULT_SEARCH_CONFIG.dates.boost));
    expect(out[0]!.notes).toEqual(["date match"]);
    expect(boostDates(scored(["s1:1", 1], ["s2:1", 0.9]), corpus, fitOf, 0).map((f) => f.id)).toEqual(["s1:1", "s2:1"]);
  });
});

describe("boostAnswerType", () => {
  it("lifts, for a 'when' question, the turn that says when above an equal one that does not", () => {
    const { corpus } = session([
      ["Jon", "Rome was beautiful"],
      ["Jon", "I was in Rome last week"],
    ]);
    const out = boostAnswerType(scored(["s1:1", 1], ["s1:2", 0.9]), corpus, "time", 0.5);
    expect(out.map((f) => f.id)).toEqual(["s1:2", "s1:1"]);
    expect(boostAnswerType(scored(["s1:1", 1], ["s1:2", 0.9]), corpus, null, 0.5)[0]!.id).toBe("s1:1");
  });
});

describe("boostSessions", () => {
  it("favours a turn whose session holds other strong hits over an equal lone hit", () => {
    const corpus = new Bm25Corpus();
    for (const [id, s] of [["a1", "sa"], ["a2", "sa"], ["b1", "sb"]] as const) corpus.add({ id, sessionId: s, seq: Number(id[1]), name: "Ann", createdAt: 0 }, "x");
    const out = boostSessions(scored(["b1", 1], ["a1", 1], ["a2", 0.9]), corpus, { weight: 0.2, top: 3 });
    expect(out[0]!.id).toBe("a1");
  });

  it("takes a vector hit's session from the vector index, with the same scores as from the corpus and no lookup", () => {
    const corpus = new Bm25Corpus();
    const turns = [["a1", "sa"], ["a2", "sa"], ["b1", "sb"], ["b2", "sb"], ["c1", "sc"]] as const;
    for (const [id, s] of turns) corpus.add({ id, sessionId: s, seq: Number(id[1]), name: "Ann", createdAt: 0 }, "x");
    const rankings = (withSessions: boolean) => [
      kw("a1", "b1", "c1"),
      { source: "vector" as const, weight: 1, items: ranked("b2", "a2", "c1").map((r) => (withSessions ? { ...r, sessionId: turns.find(([id]) => id === r.id)![1] } : r)) },
    ];
    const lookups = vi.spyOn(corpus, "doc");
    const fromCorpus = boostSessions(fuseRankings(rankings(false)), corpus, { weight: 0.2, top: 3 });
    expect(lookups).toHaveBeenCalledTimes(5);
    lookups.mockClear();
    const fromVectors = boostSessions(fuseRankings(rankings(true)), corpus, { weight: 0.2, top: 3 });
    expect(fromVectors.map(({ id, score }) => ({ id, score }))).toEqual(fromCorpus.map(({ id, score }) => ({ id, score })));
    // Only the keyword-only hits are looked up: a1 and b1 (c1, found by both, has its session from the vector index).
    expect(lookups.mock.calls.map(([id]) => id).sort()).toEqual(["a1", "b1"]);
  });
});

describe("boostSpeakers", () => {
  it("lifts the turns of the one speaker a query names, and nothing when it names every speaker", () => {
    const { corpus } = session([
      ["Ann", "I love jazz"],
      ["Bob", "I love jazz too"],
    ]);
    expect(boostSpeakers(scored(["s1:2", 1], ["s1:1", 0.9]), corpus, "What music does Ann like?", 1.5)[0]!.id).toBe("s1:1");
    expect(boostSpeakers(scored(["s1:2", 1], ["s1:1", 0.9]), corpus, "What do Ann and Bob like?", 1.5)[0]!.id).toBe("s1:2");
  });
});

/** Services over in-memory fakes: the keyword index holds `messages`; vectors and graph find nothing. */
function fakeDeps(corpus: Bm25Corpus, messages: Message[], vectorHits: ScoredId[] = []): SearchDeps {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const keywords: KeywordIndex = { adapter: "fake", corpus: async () => corpus, messages: () => new Map(), add() {}, remove() {}, close: async () => {} };
  return {
    archive: {
      getMessages: async (_t: string, ids: string[]) => ids.map((id) => byId.get(id)).filter((m): m is Message => m !== undefined),
      keywordSearch: async () => [],
    },
    vectors: { query: async () => vectorHits.map((h) => ({ ...h, kind: "message", sessionId: "s1" })) },
    graph: { messagesMentioning: async () => [] },
    embedder: { model: "strata-hash-v1-512", dimensions: 4, embed: async (t: string[]) => t.map(() => new Float32Array(4)) },
    log: createLogger("silent"),
    settings: { recentWindow: 20, tierTimeoutMs: 1000 },
    keywords,
  } as unknown as SearchDeps;
}

describe("hybridSearch with the keyword index", () => {
  const chat = session([
    ["Caroline", "Hi Melanie!"],
    ["Melanie", "Hi Caroline, how are you?"],
    ["Caroline", "Caroline here, busy week"],
    ["Melanie", "Caroline, did you go to the support group?"],
    ["Caroline", "Yes, it was so powerful."],
    ["Melanie", "I painted a sunrise over the lake"],
    ["Caroline", "Caroline loves that, Caroline says wow"],
  ]);
  const deps = fakeDeps(chat.corpus, chat.messages);
  const input = { tenantId: "t", userId: "u", limit: 10 };
  const plain: SearchConfig = { ...DEFAULT_SEARCH_CONFIG, feedback: { docs: 0, terms: 0, weight: 0 }, sessionPrior: { weight: 0, top: 0 } };

  it("ranks the turn with the question's rare word above turns repeating a common name", async () => {
    const noNeighbours = { ...plain, neighbours: { ...plain.neighbours, radius: 0 } };
    const out = await hybridSearch(deps, { ...input, query: "What did Caroline tell about the sunrise?" }, noNeighbours);
    expect(out.hits[0]!.message.content).toBe("I painted a sunrise over the lake");
  });

  it("brings in the answer right after the matched question, below it", async () => {
    const out = await hybridSearch(deps, { ...input, query: "support group" }, plain);
    const ids = out.hits.map((h) => h.message.id);
    expect(ids[0]).toBe("s1:4");
    expect(ids[1]).toBe("s1:5");
    expect(out.hits[1]!.sources).toEqual(["neighbour"]);
    // Provenance: the hit says which retriever found it, its answer which question it answers.
    expect(out.hits[0]!.why).toContain("keyword");
    expect(out.hits[1]!.why).toEqual(["answer to s1:4"]);
  });

  it("says when a date or an answer type lifted a hit", async () => {
    const out = await hybridSearch(deps, { ...input, query: "When did Melanie paint the sunrise on 1 May, 2023?" }, plain);
    const sunrise = out.hits.find((h) => h.message.id === "s1:6")!;
    expect(sunrise.why).toContain("keyword");
    expect(sunrise.why).toContain("date match");
    expect(sunrise.why).not.toContain("says a time");
  });

  it("leaves excluded ids out and keeps each retriever's ranking when asked", async () => {
    const out = await hybridSearch(deps, { ...input, query: "support group", exclude: new Set(["s1:5"]), explain: true }, plain);
    expect(out.hits.map((h) => h.message.id)).not.toContain("s1:5");
    expect(out.rankings?.keyword?.[0]?.id).toBe("s1:4");
  });

  it("falls back to the archive's keyword search when asked to, or when there is no index", async () => {
    const calls: string[] = [];
    const archiveOnly = { ...deps, keywords: undefined, archive: { ...deps.archive, keywordSearch: async (q: { query: string }) => (calls.push(q.query), [{ id: "s1:6", score: 1 }]) } } as unknown as SearchDeps;
    const out = await hybridSearch(archiveOnly, { ...input, query: "What did she paint on 3 May, 2023?" });
    expect(out.hits[0]!.message.id).toBe("s1:6");
    // The date phrase left the keyword query.
    expect(calls).toEqual(["What did she paint on ?"]);
  });
});
