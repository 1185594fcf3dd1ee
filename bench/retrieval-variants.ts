// Named configurations bench/retrieval.ts compares (--variant NAME, or "all"). Each is a
// partial override of the shipped defaults (DEFAULT_SEARCH_CONFIG, DEFAULT_CONTEXT_CONFIG);
// every variant tried is kept here, the failed ones too, so BENCHMARKS.md can be re-derived.

import type { ContextConfig } from "../lib/core/services/context.ts";
import type { SearchConfig } from "../lib/core/services/search.ts";

export interface Variant {
  name: string;
  description: string;
  search?: Partial<SearchConfig>;
  context?: Partial<Omit<ContextConfig, "search">>;
}

// The configuration before issue 6, expressed in today's knobs: every addition off.
const OFF: Partial<SearchConfig> = {
  rrfK: 60,
  weights: { keyword: 1, vector: 1, graph: 0.5 },
  lexicalVectorWeight: 1,
  bm25: { k1: 1.2, b: 0.75 },
  feedback: { docs: 0, terms: 0, weight: 0 },
  dates: { boost: 0, slackDays: 0, listWeight: 0 },
  neighbours: { radius: 0, weight: 0, answerWeight: 0, anchors: 0 },
  sessionPrior: { weight: 0, top: 0 },
  answerType: { boost: 0 },
  speakerBoost: 1,
};
const step = (extra: Partial<SearchConfig>): Partial<SearchConfig> => ({ ...OFF, ...extra });
const BM25 = { keyword: "bm25" as const, bm25: { k1: 1.2, b: 0.3 } };
const FUSION = { rrfK: 5, weights: { keyword: 1, vector: 1, graph: 0.1 }, lexicalVectorWeight: 0.2 };
const PRF = { feedback: { docs: 3, terms: 10, weight: 0.5 } };
const DATES = { dates: { boost: 1, slackDays: 7, listWeight: 1 } };

const list: Variant[] = [
  { name: "default", description: "the shipped configuration" },
  // The path from the baseline, one step at a time.
  { name: "baseline", description: "before issue 6: archive ts_rank, RRF k 60, weights 1/1/0.5", search: step({ keyword: "archive" }) },
  { name: "bm25", description: "keyword = in-process BM25 (k1 1.2, b 0.75), fusion as baseline", search: step({ keyword: "bm25" }) },
  { name: "bm25-b0.3", description: "BM25 b 0.3 (chat turns are short; weaker length normalisation)", search: step(BM25) },
  { name: "+fusion", description: "RRF k 5, weights keyword 1 / hashing vector 0.2 / graph 0.1", search: step({ ...BM25, ...FUSION }) },
  { name: "+prf", description: "+ pseudo-relevance feedback (3 docs, 10 terms, weight 0.5)", search: step({ ...BM25, ...FUSION, ...PRF }) },
  { name: "+dates", description: "+ query dates: stripped from keywords, boost x(1+fit), dated keyword list w 1, slack 7 d", search: step({ ...BM25, ...FUSION, ...PRF, ...DATES }) },
  {
    name: "+neighbours",
    description: "+ neighbours radius 2, 0.5/d of anchor, top 20 anchors",
    search: step({ ...BM25, ...FUSION, ...PRF, ...DATES, neighbours: { radius: 2, weight: 0.5, answerWeight: 0.5, anchors: 20 } }),
  },
  {
    name: "+answers",
    description: "+ neighbours 0.4/d, and 0.8 for the turn after an anchor that asks",
    search: step({ ...BM25, ...FUSION, ...PRF, ...DATES, neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 20 } }),
  },
  {
    name: "+sessions",
    description: "+ session prior (x(1 + 0.2 x session share), best 3 scores per session)",
    search: step({ ...BM25, ...FUSION, ...PRF, ...DATES, neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 20 }, sessionPrior: { weight: 0.2, top: 3 } }),
  },
  // Ablations and alternatives around the default.
  { name: "no-answer-type", description: "default without the answer-type boost", search: { answerType: { boost: 0 } } },
  { name: "answer-type1", description: "default with answer-type boost x2", search: { answerType: { boost: 1 } } },
  { name: "speaker1.5", description: "default + x1.5 for turns of a speaker the question names", search: { speakerBoost: 1.5 } },
  { name: "no-prf", description: "default without feedback", search: { feedback: { docs: 0, terms: 0, weight: 0 } } },
  { name: "prf-df0.05", description: "feedback adds no word held by more than 5% of the user's turns", search: { feedback: { docs: 3, terms: 10, weight: 0.5, maxShare: 0.05 } } },
  { name: "prf-df0.1", description: "feedback adds no word held by more than 10% of the user's turns", search: { feedback: { docs: 3, terms: 10, weight: 0.5, maxShare: 0.1 } } },
  { name: "prf-df0.2", description: "feedback adds no word held by more than 20% of the user's turns", search: { feedback: { docs: 3, terms: 10, weight: 0.5, maxShare: 0.2 } } },
  { name: "no-dates", description: "default without date handling", search: { dates: { boost: 0, slackDays: 0, listWeight: 0 } } },
  { name: "no-neighbours", description: "default without neighbours", search: { neighbours: { radius: 0, weight: 0, answerWeight: 0, anchors: 0 } } },
  { name: "no-session", description: "default without the session prior", search: { sessionPrior: { weight: 0, top: 0 } } },
  { name: "no-vector", description: "default without the vector retriever", search: { lexicalVectorWeight: 0 } },
  { name: "no-graph", description: "default without the graph retriever", search: { weights: { keyword: 1, vector: 1, graph: 0 } } },
  { name: "vector0.5", description: "default with hashing-vector weight 0.5", search: { lexicalVectorWeight: 0.5 } },
  { name: "k10", description: "default with RRF k 10", search: { rrfK: 10 } },
  { name: "k60", description: "default with RRF k 60", search: { rrfK: 60 } },
  { name: "archive-kw", description: "default fusion over the archive's ts_rank (no keyword index: managed wiring)", search: { keyword: "archive" } },
  { name: "archive-kw-k60", description: "archive ts_rank, default weights, RRF k 60", search: { keyword: "archive", rrfK: 60 } },
  { name: "archive-kw-v1", description: "archive ts_rank, default fusion with hashing-vector weight 1", search: { keyword: "archive", lexicalVectorWeight: 1 } },
  // Neighbour expansion reach (2026-11-30).
  { name: "nb-anchors100", description: "neighbours of the first 100 hits", search: { neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 100 } } },
  { name: "nb-anchors40", description: "neighbours of the first 40 hits", search: { neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 40 } } },
  { name: "nb-anchors20", description: "neighbours of the first 20 hits (the default until 2026-11-30)", search: { neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 20 } } },
  { name: "nb-anchors10", description: "neighbours of the first 10 hits", search: { neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 10 } } },
  { name: "nb-radius3", description: "neighbours up to 3 turns away, of the first 20 hits", search: { neighbours: { radius: 3, weight: 0.4, answerWeight: 0.8, anchors: 20 } } },
  { name: "nb-radius1", description: "adjacent turns only, of the first 20 hits", search: { neighbours: { radius: 1, weight: 0.4, answerWeight: 0.8, anchors: 20 } } },
  // WordNet 3.1 query expansion (wn-*: synonyms/hypernyms into the BM25 query) was measured in
  // commit 300429a and removed: flat to -0.4 R@10 (BENCHMARKS.md); its variants live there.
  // Word associations from the user's own turns (assoc*: count x PMI) likewise, in 56e36b4: -0.2 to -1.8.
  // Context packing.
  { name: "ctx-timestamped", description: "every turn line with its date and time (before issue 6)", context: { layout: "timestamped" } },
  { name: "ctx-by-day", description: "a date line per day, turn lines with the speaker only", context: { layout: "by-day" } },
  { name: "ctx-recall40", description: "40 recalled candidates whatever the budget (before issue 6)", context: { recall: { min: 40, tokensPer: 1e9 } } },
  { name: "ctx-no-fill", description: "recalled candidates by the budget alone, one per 40 tokens (default before the fill rule: at most 1.5× the turns the room holds)", context: { recall: { min: 40, tokensPer: 40, fill: 0 } } },
  { name: "ctx-fill2", description: "recalled candidates at most 2× the turns the budget's room holds, by the window's mean turn", context: { recall: { min: 40, tokensPer: 40, fill: 2 } } },
  { name: "ctx-fill3", description: "recalled candidates at most 3× the turns the budget's room holds, by the window's mean turn", context: { recall: { min: 40, tokensPer: 40, fill: 3 } } },
  { name: "ctx-tokensper60", description: "one recalled candidate per 60 tokens of budget (40 default), at least 40", context: { recall: { min: 40, tokensPer: 60 } } },
  { name: "ctx-tokensper80", description: "one recalled candidate per 80 tokens of budget (40 default), at least 40", context: { recall: { min: 40, tokensPer: 80 } } },
  { name: "ctx-recent25", description: "recent window capped at 25% of the budget (35% default)", context: { shares: { summary: 0.15, facts: 0.1, recent: 0.25 } } },
  { name: "ctx-facts5", description: "facts and memories capped at 5% of the budget (10% default)", context: { shares: { summary: 0.15, facts: 0.05, recent: 0.35 } } },
  { name: "ctx-no-recency", description: "recalled turns without the recency decay", context: { recency: { weight: 0, halfLifeDays: 30 } } },
  { name: "ctx-recency0.3", description: "recency weight 0.3 (0.1 default), half-life 30 days", context: { recency: { weight: 0.3, halfLifeDays: 30 } } },
  { name: "ctx-recency1", description: "recency weight 1, half-life 30 days", context: { recency: { weight: 1, halfLifeDays: 30 } } },
  { name: "ctx-recency0.1-hl7", description: "recency weight 0.1, half-life 7 days", context: { recency: { weight: 0.1, halfLifeDays: 7 } } },
  { name: "ctx-no-priority", description: "no priority for turns that stated a memory", context: { priority: { weight: 0 } } },
  { name: "ctx-priority0.5", description: "priority weight 0.5 (0.1 default)", context: { priority: { weight: 0.5 } } },
  { name: "ctx-old-search", description: "context over the baseline search (by-day layout)", search: step({ keyword: "archive" }) },
  { name: "ctx-baseline", description: "before issue 6: baseline search, timestamped lines, 40 candidates", search: step({ keyword: "archive" }), context: { layout: "timestamped", recall: { min: 40, tokensPer: 1e9 } } },
];

export const VARIANTS: Record<string, Variant> = Object.fromEntries(list.map((v) => [v.name, v]));
