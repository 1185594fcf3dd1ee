// Hybrid recall over one user's long-term memory: keyword, vector (semantic) and graph
// (messages mentioning entities named in the query) retrievers run in parallel, each under
// a time limit, and their rankings are fused with reciprocal rank fusion. RRF needs no score
// calibration between retrievers, which is why it is the default: a keyword rank and a
// cosine rank are not comparable numbers.
//
// The keyword retriever is BM25 over the user's turns when the runtime provides the
// in-process keyword index (lib/core/keyword-index.ts), and the archive's full-text search
// otherwise. With the index, recall also uses what a chat's structure says (each step is
// measured on its own in bench/retrieval.ts and BENCHMARKS.md):
// - pseudo-relevance feedback: the words that recur in the best first hits join the query,
//   except words held by more than 5% of the user's turns (near-stopwords for that user; on
//   LoCoMo, leaving them out moved the figures by tenths (R@10 79.1 -> 79.5, in-context at
//   4000 tokens 92.3 -> 92.5, at 2000 86.9 both), and in a 100k-turn history they were words
//   of tens of thousands of turns each, the keyword tier's longest postings);
// - dates the query names ("on 16 June, 2023") leave the keyword query and instead favour
//   turns written then (or in the week after), which also get a keyword ranking of their own;
// - neighbouring turns: the turns around the best hits join the ranking below them, the
//   reply to a matched question most of all (in a chat the answer follows the question);
// - sessions: turns of a session holding several strong hits rank a little higher;
// - answer types: for "when" and "how many" questions, turns that say a time or a number do.

import type { StrataDeps } from "../deps.ts";
import { answerType, type AnswerType } from "../answer-type.ts";
import type { Bm25Corpus, Bm25Params, CorpusTurn, FeedbackParams } from "../bm25.ts";
import type { KeywordIndex } from "../keyword-index.ts";
import { dateFitter, queryDates } from "../temporal.ts";
import { STOPWORDS, terms, words } from "../text.ts";
import type { GraphVersion, Message, RecallSource, ScoredId, SessionScoredId, UserVersion } from "../types.ts";
import { timed, type TierTimings } from "./timing.ts";
import { searchVersions } from "./versions.ts";
import { descending } from "../order.ts";
import { warmed, warmIds } from "../warm.ts";

/** StrataDeps plus the keyword index, which the runtime provides in the embedded build. */
export type SearchDeps = StrataDeps;

export interface SearchInput {
  tenantId: string;
  userId: string;
  query: string;
  limit: number;
  sessionId?: string;
  /** Ids never to return (e.g. what the recent window already holds). */
  exclude?: ReadonlySet<string>;
  /** Also return each retriever's own ranking (benchmarks, debugging). */
  explain?: boolean;
  /** Text to embed instead of `query` (the context's implicit query: a semantic embedder reads the whole turn). */
  embedText?: string;
  /**
   * The user's version as read after the request began (the context call's Archive.readContext;
   * null: no such user): the keyword index checks its corpus against it instead of reading it again.
   */
  userVersion?: UserVersion | null;
  /** The user's graph version as read after the request began (ContextReads.graphVersion), for the graph store likewise. */
  graphVersion?: GraphVersion;
  /**
   * The vector retriever's ranking, already started by the caller with `vectorRanking` on this
   * same input (the context call starts it beside its first reads when the query and the user
   * are known up front); the caller times it and records its failure.
   */
  vectorRanking?: Promise<SessionScoredId[] | null>;
}

/** Where a hit came from: a retriever, or next to a hit of one. */
export type SearchSource = RecallSource;

export interface SearchHit {
  message: Message;
  score: number;
  sources: SearchSource[];
  /**
   * Why it ranks where it does, machine-readable: the retrievers that found it ("keyword",
   * "vector", "graph"), then what lifted it: "neighbour of <id>", "answer to <id>",
   * "date match", "says a time", "says a number".
   */
  why: string[];
}

export interface SearchOutput {
  hits: SearchHit[];
  degraded: string[];
  timings: TierTimings;
  /** Each retriever's ranking before fusion, when `explain` was asked. */
  rankings?: Partial<Record<Retriever, ScoredId[]>>;
}

export type Retriever = Exclude<RecallSource, "recent" | "neighbour">;

/** How recall ranks: the knobs the benchmark (bench/retrieval.ts) compares. */
export interface SearchConfig {
  /** RRF constant: how much the head of each ranking counts over its tail (lower: more). */
  rrfK: number;
  /** Weight of each retriever's RRF contribution (vector: for a semantic embedder, see lexicalVectorWeight). */
  weights: Record<Retriever, number>;
  /**
   * Vector weight when the embedder is the local hashing one (model "strata-hash-…"): its
   * cosine is a soft keyword overlap, mostly redundant with BM25, so it only breaks ties.
   */
  lexicalVectorWeight: number;
  /** "bm25": the keyword index when the deps have one (else the archive); "archive": always the archive. */
  keyword: "bm25" | "archive";
  bm25: Bm25Params;
  /** Pseudo-relevance feedback on the BM25 query (docs 0: off). */
  feedback: FeedbackParams;
  /**
   * Dates the query names: `boost` multiplies a turn's score by 1 + boost × fit (1 inside the
   * range, fading to 0 `slackDays` after it); `listWeight` is the RRF weight of the keyword
   * ranking restricted to turns that fit (0: off). Both 0: dates stay ordinary query words.
   */
  dates: { boost: number; slackDays: number; listWeight: number };
  /**
   * Turns around the first `anchors` hits, within `radius`: each gets weight / distance of its
   * anchor's score, or `answerWeight` when it is the turn right after an anchor that asks.
   */
  neighbours: { radius: number; weight: number; answerWeight: number; anchors: number };
  /** Multiplies a turn's score by 1 + weight × its session's share (sum of its `top` best scores, over the best session's). */
  sessionPrior: { weight: number; top: number };
  /** For a question asking when or how many, turns saying a time or a number get × (1 + boost). */
  answerType: { boost: number };
  /** Score multiplier for turns said by a speaker the query names (1: off; it hurt, see BENCHMARKS.md). */
  speakerBoost: number;
}

// Chosen on LoCoMo with bench/retrieval.ts, each step kept only where it helped every one
// of the five conversations; the values are round ones in flat regions, not fitted optima.
export const DEFAULT_SEARCH_CONFIG: SearchConfig = {
  rrfK: 5,
  weights: { keyword: 1, vector: 1, graph: 0.1 },
  lexicalVectorWeight: 0.2,
  keyword: "bm25",
  bm25: { k1: 1.2, b: 0.3 },
  feedback: { docs: 3, terms: 10, weight: 0.5, maxShare: 0.05 },
  dates: { boost: 1, slackDays: 7, listWeight: 1 },
  neighbours: { radius: 2, weight: 0.4, answerWeight: 0.8, anchors: 60 },
  sessionPrior: { weight: 0.2, top: 3 },
  answerType: { boost: 0.5 },
  speakerBoost: 1,
};

const DAY_MS = 86_400_000;

interface Fused {
  id: string;
  score: number;
  sources: SearchSource[];
  /** What lifted it after fusion (see SearchHit.why). */
  notes?: string[];
  /** Its turn in the keyword corpus (null: not there), once a step has looked it up (docOf). */
  doc?: CorpusTurn | null;
  /** Its session, when a retriever said it (the vector index does, and the graph stores that know it): the session prior then needs no lookup. */
  sessionId?: string;
}

/**
 * A fused item with all its fields from the start. Items given their optional fields as each
 * step found them had many hidden classes, and V8 then read a score through a megamorphic
 * load, boxing it: every comparison of a sort allocated.
 */
function fusedItem(id: string, score: number, sources: SearchSource[], doc: CorpusTurn | undefined): Fused {
  return { id, score, sources, notes: undefined, doc, sessionId: undefined };
}

/** The fused item's turn in the corpus, looked up once per search whichever steps ask. */
function docOf(f: Fused, corpus: Bm25Corpus): CorpusTurn | null {
  if (f.doc === undefined) f.doc = corpus.doc(f.id) ?? null;
  return f.doc;
}

/** The fused item's session: its turn's when a step looked that up, else the one its retriever gave, else its turn's (looked up now). */
function sessionOf(f: Fused, corpus: Bm25Corpus): string | undefined {
  if (f.doc === undefined && f.sessionId !== undefined) return f.sessionId;
  return docOf(f, corpus)?.sessionId;
}

function note(f: Fused, reason: string): void {
  if (!f.notes) f.notes = [reason];
  else if (!f.notes.includes(reason)) f.notes.push(reason);
}

/** One ranking to fuse: its items best first (with their turn when the keyword corpus found them), the retriever it counts as, and its weight. */
export interface Ranking {
  source: Retriever;
  weight: number;
  items: readonly (SessionScoredId & { turn?: CorpusTurn })[];
}

/** Reciprocal rank fusion: each ranking adds weight / (k + rank) to every item it holds. */
export function fuseRankings(rankings: Ranking[], rrfK: number = DEFAULT_SEARCH_CONFIG.rrfK): Fused[] {
  const fused = new Map<string, Fused>();
  // Every id read ahead of the lookups by id (warm.ts).
  for (const { weight, items } of rankings) if (weight !== 0) warmIds(items);
  for (const { source, weight: w, items } of rankings) {
    if (w === 0) continue;
    items.forEach((item, rank) => {
      let entry = fused.get(item.id);
      // A first source as a literal of one: an empty array's first push reserves room for 17.
      if (!entry) fused.set(item.id, (entry = fusedItem(item.id, 0, [source], undefined)));
      else if (!entry.sources.includes(source)) entry.sources.push(source);
      entry.score += w / (rrfK + rank + 1);
      if (item.turn && entry.doc === undefined) entry.doc = item.turn;
      if (item.sessionId !== undefined) entry.sessionId ??= item.sessionId;
    });
  }
  return [...fused.values()].sort((a, b) => descending(a.score, b.score));
}

export function queryTerms(query: string): string[] {
  return [...new Set(words(query).filter((w) => !STOPWORDS.has(w)))];
}

/** Lower-cased speaker names of the corpus that the query names ("Caroline's" names "caroline"). */
export function namedSpeakers(query: string, speakers: ReadonlyMap<string, number>): Set<string> {
  const named = new Set<string>();
  const qWords = new Set(words(query));
  for (const name of speakers.keys()) {
    const parts = words(name);
    if (parts.length && parts.every((p) => qWords.has(p))) named.add(name);
  }
  return named;
}

/**
 * Multiplies the score of turns said by a speaker the query names, when it names some but
 * not every speaker (naming both people of a chat says nothing about whose turn it is).
 */
export function boostSpeakers(fused: Fused[], corpus: Bm25Corpus, query: string, boost: number): Fused[] {
  if (boost === 1) return fused;
  const speakers = corpus.speakers();
  const named = namedSpeakers(query, speakers);
  if (named.size === 0 || named.size === speakers.size) return fused;
  for (const f of fused) {
    const name = docOf(f, corpus)?.name?.toLowerCase();
    if (name !== undefined && named.has(name)) f.score *= boost;
  }
  return fused.sort((a, b) => descending(a.score, b.score));
}

/**
 * Adds the turns around the best hits: each neighbour of one of the first `anchors` hits
 * collects `weight` / distance × the anchor's score, or `answerWeight` × it when the anchor
 * asks a question and the neighbour is the turn right after (its likely answer), added to
 * whatever it had (a turn next to two hits, or a hit itself, collects from each). With
 * weights below 1 a neighbour lands below its anchor.
 */
export function expandNeighbours(fused: Fused[], corpus: Bm25Corpus, options: SearchConfig["neighbours"]): Fused[] {
  const { radius, weight, answerWeight, anchors } = options;
  if (radius <= 0 || anchors <= 0 || (weight <= 0 && answerWeight <= 0)) return fused;
  // Per neighbour: what it collects, and the anchor that gave the most (its provenance).
  const add = new Map<string, { extra: number; best: number; anchor: string; answer: boolean; turn: CorpusTurn }>();
  const turns: CorpusTurn[] = [];
  const from: Fused[] = [];
  for (let i = 0; i < fused.length && i < anchors; i++) {
    const turn = docOf(fused[i]!, corpus);
    if (!turn) continue;
    turns.push(turn);
    from.push(fused[i]!);
  }
  // The anchors' sessions, then their neighbours' ids, read ahead together (warm.ts).
  corpus.warmSessions(turns);
  // The neighbours come as turns: each is looked up by id in the corpus no more.
  const near = turns.map((turn) => corpus.neighbourTurns(turn, radius));
  let chars = 0;
  for (const list of near) for (let j = 0; j < list.length; j++) chars += list[j]!.turn.id.length;
  warmed.chars += chars;
  for (let i = 0; i < turns.length; i++) {
    const anchor = from[i]!;
    const turn = turns[i]!;
    for (const n of near[i]!) {
      const answer = turn.asks && n.offset === 1;
      const share = answer ? answerWeight : weight / Math.abs(n.offset);
      if (share <= 0) continue;
      const gain = share * anchor.score;
      const a = add.get(n.turn.id);
      if (!a) add.set(n.turn.id, { extra: gain, best: gain, anchor: anchor.id, answer, turn: n.turn });
      else {
        a.extra += gain;
        if (gain > a.best) {
          a.best = gain;
          a.anchor = anchor.id;
          a.answer = answer;
        }
      }
    }
  }
  const reason = (a: { anchor: string; answer: boolean }) => `${a.answer ? "answer to" : "neighbour of"} ${a.anchor}`;
  // Neighbours already fused collect on their entry (found by one pass over the fused, not a
  // map of them all); the rest join as new entries.
  for (const f of fused) {
    const a = add.get(f.id);
    if (!a) continue;
    f.score += a.extra;
    if (!f.sources.includes("neighbour")) f.sources.push("neighbour");
    note(f, reason(a));
    add.delete(f.id);
  }
  add.forEach((a, id) => {
    const f = fusedItem(id, a.extra, ["neighbour"], a.turn);
    note(f, reason(a));
    fused.push(f);
  });
  return fused.sort((a, b) => descending(a.score, b.score));
}

/**
 * Multiplies each turn's score by 1 + boost × how well its time fits the dates the query names
 * (`fitOf`: dateFitter of them, made once for the search's dated keyword ranking and this).
 */
export function boostDates(fused: Fused[], corpus: Bm25Corpus, fitOf: (t: number) => number, boost: number): Fused[] {
  if (boost <= 0) return fused;
  for (const f of fused) {
    const doc = docOf(f, corpus);
    if (!doc) continue;
    const fit = fitOf(doc.createdAt);
    if (fit <= 0) continue;
    f.score *= 1 + boost * fit;
    note(f, "date match");
  }
  return fused.sort((a, b) => descending(a.score, b.score));
}

/**
 * Favours turns of sessions that hold several strong hits: a session's weight is the sum of
 * its `top` best scores, over the best session's, and each turn's score is multiplied by
 * 1 + weight × its session's. A topic is usually discussed over a stretch of one session.
 */
export function boostSessions(fused: Fused[], corpus: Bm25Corpus, options: SearchConfig["sessionPrior"]): Fused[] {
  if (options.weight <= 0 || options.top <= 0 || fused.length === 0) return fused;
  // Per session its best `top` scores, in order (fused is sorted, so a session's first
  // entries are its best), and their sum, added in that order.
  const best = new Map<string, { n: number; mass: number }>();
  // The sessions known so far read ahead of the lookups by session (warm.ts).
  let chars = 0;
  for (const f of fused) {
    const s = f.doc ? f.doc.sessionId : f.doc === undefined ? f.sessionId : undefined;
    if (s !== undefined) chars += s.length;
  }
  warmed.chars += chars;
  // Each item's session record, kept for the second pass: a lookup by session id reads the
  // id's string, a cold read at 100k turns.
  const of: ({ n: number; mass: number } | undefined)[] = new Array(fused.length);
  for (let i = 0; i < fused.length; i++) {
    const f = fused[i]!;
    const s = sessionOf(f, corpus);
    if (s === undefined) continue;
    let b = best.get(s);
    if (!b) best.set(s, (b = { n: 1, mass: 0 + f.score }));
    else if (b.n < options.top) {
      b.n++;
      b.mass += f.score;
    }
    of[i] = b;
  }
  let max = 0;
  for (const b of best.values()) if (b.mass > max) max = b.mass;
  if (max <= 0) return fused;
  for (let i = 0; i < fused.length; i++) {
    const b = of[i];
    if (b !== undefined) fused[i]!.score *= 1 + (options.weight * b.mass) / max;
  }
  return fused.sort((a, b) => descending(a.score, b.score));
}

/** Multiplies by 1 + boost the score of turns holding the kind of answer the question asks for. */
export function boostAnswerType(fused: Fused[], corpus: Bm25Corpus, type: AnswerType | null, boost: number): Fused[] {
  if (type === null || boost <= 0) return fused;
  for (const f of fused) {
    if (!docOf(f, corpus)?.[type]) continue;
    f.score *= 1 + boost;
    note(f, type === "time" ? "says a time" : "says a number");
  }
  return fused.sort((a, b) => descending(a.score, b.score));
}

/** Whether the embedder is the local hashing one, whose cosine is lexical rather than semantic. */
export function lexicalEmbedder(model: string): boolean {
  return model.startsWith("strata-hash");
}

/** The vector retriever's weight in the fusion: the lexical one for the local hashing embedder. */
function vectorWeightOf(deps: SearchDeps, config: SearchConfig): number {
  return lexicalEmbedder(deps.embedder.model) ? config.lexicalVectorWeight : config.weights.vector;
}

/** How deep each retriever ranks for a search of `limit` hits. */
function recallDepth(limit: number): number {
  return Math.max(50, limit * 2);
}

/**
 * The vector retriever's ranking for a search (hybridSearch's vector tier): the query (or
 * `embedText`) embedded, then the user's nearest messages. It needs only the input, nothing
 * another read answers, so a caller can start it before the rest (SearchInput.vectorRanking).
 */
export async function vectorRanking(
  deps: SearchDeps,
  input: Pick<SearchInput, "tenantId" | "userId" | "query" | "limit" | "sessionId" | "embedText" | "explain">,
  config: SearchConfig = DEFAULT_SEARCH_CONFIG,
): Promise<SessionScoredId[]> {
  const vectorWeight = vectorWeightOf(deps, config);
  if (vectorWeight === 0 && !input.explain) return [];
  const [vec] = await deps.embedder.embed([input.embedText ?? input.query]);
  const matches = await deps.vectors.query({
    tenantId: input.tenantId,
    userId: input.userId,
    vector: vec!,
    topK: recallDepth(input.limit),
    sessionId: input.sessionId,
    kinds: ["message"],
  });
  return matches.map((m) => ({ id: m.id, score: m.score, sessionId: m.sessionId }));
}

export async function hybridSearch(deps: SearchDeps, input: SearchInput, config: SearchConfig = DEFAULT_SEARCH_CONFIG): Promise<SearchOutput> {
  const depth = recallDepth(input.limit);
  const timings: TierTimings = {};
  const degraded: string[] = [];
  const limitMs = deps.settings.tierTimeoutMs;
  const scope = { tenantId: input.tenantId, userId: input.userId };
  const index = config.keyword === "bm25" ? deps.keywords : undefined;
  const vectorWeight = vectorWeightOf(deps, config);
  const useDates = config.dates.boost > 0 || config.dates.listWeight > 0;
  const dates = useDates ? queryDates(input.query) : { ranges: [], rest: input.query };
  const fitOf = dates.ranges.length ? dateFitter(dates.ranges, config.dates.slackDays * DAY_MS) : null;
  // The date phrase leaves the keyword query when dates are used: "2023" matches nothing useful.
  const keywordText = dates.ranges.length && dates.rest ? dates.rest : input.query;
  let corpus: Bm25Corpus | null = null;
  let dated: ScoredId[] = [];
  // Without versions from the caller, indexes that check the archive's (the managed wiring)
  // get both from one statement; its failure fails each tier as its own read would have.
  const versions = input.userVersion === undefined && input.graphVersion === undefined ? searchVersions(deps, index, input.tenantId, input.userId) : null;
  versions?.catch(() => {});

  const [keyword, vector, graph] = await Promise.all([
    timed("keyword", timings, degraded, limitMs, deps.log, async () => {
      if (!index) return deps.archive.keywordSearch({ ...scope, query: keywordText, limit: depth, sessionId: input.sessionId });
      const c = await index.corpus(input.tenantId, input.userId, versions ? (await versions).userVersion : input.userVersion);
      corpus = c;
      // The feedback-expanded query's hits (expand() then search(), each posting read once).
      const { terms: qTerms, weights, hits } = c.searchExpanded(terms(keywordText), { ...config.feedback, limit: depth, sessionId: input.sessionId, params: config.bm25 });
      if (fitOf && config.dates.listWeight > 0) {
        const filter = (d: { createdAt: number }) => fitOf(d.createdAt) > 0;
        dated = c.search(qTerms, { limit: depth, sessionId: input.sessionId, params: config.bm25, weights, filter });
      }
      return hits;
    }),
    input.vectorRanking ?? timed("vector", timings, degraded, limitMs, deps.log, () => vectorRanking(deps, input, config)),
    timed("graph", timings, degraded, limitMs, deps.log, async () => {
      if (config.weights.graph === 0 && !input.explain) return [];
      const asOf = versions ? (await versions).graphVersion : input.graphVersion;
      return deps.graph.messagesMentioning({ ...scope, terms: queryTerms(input.query), limit: depth, ...(asOf ? { asOf } : {}) });
    }),
  ]);

  const t1 = performance.now();
  let fused = fuseRankings(
    [
      { source: "keyword", weight: config.weights.keyword, items: keyword ?? [] },
      { source: "keyword", weight: config.dates.listWeight, items: dated },
      // An early vector ranking (SearchInput.vectorRanking) may run deeper than this search.
      { source: "vector", weight: vectorWeight, items: vector && vector.length > depth ? vector.slice(0, depth) : (vector ?? []) },
      { source: "graph", weight: config.weights.graph, items: graph ?? [] },
    ],
    config.rrfK,
  );
  const loaded = corpus as Bm25Corpus | null;
  if (loaded) {
    if (fitOf) fused = boostDates(fused, loaded, fitOf, config.dates.boost);
    fused = boostSpeakers(fused, loaded, input.query, config.speakerBoost);
    fused = expandNeighbours(fused, loaded, config.neighbours);
    fused = boostSessions(fused, loaded, config.sessionPrior);
    fused = boostAnswerType(fused, loaded, answerType(input.query), config.answerType.boost);
  }
  if (input.exclude) fused = fused.filter((f) => !input.exclude!.has(f.id));
  timings.rank = performance.now() - t1;
  // Hydrate a little more than asked: graph hits outside the session filter are dropped below.
  const head = fused.slice(0, input.limit + (input.sessionId ? depth : 0));
  const t0 = performance.now();
  // The keyword index that ranked this search holds its turns whole (as current as the corpus
  // it served): only ids it lacks (e.g. vector hits it has not loaded yet) are read.
  const ids = head.map((f) => f.id);
  const byId = loaded && index ? index.messages(input.tenantId, input.userId, ids) : new Map<string, Message>();
  const missing = byId.size < ids.length ? ids.filter((id) => !byId.has(id)) : [];
  if (missing.length) for (const m of await deps.archive.getMessages(input.tenantId, missing)) byId.set(m.id, m);
  timings.hydrate = performance.now() - t0;
  const hits: SearchHit[] = [];
  for (const f of head) {
    const message = byId.get(f.id);
    if (!message || message.userId !== input.userId) continue;
    if (input.sessionId && message.sessionId !== input.sessionId) continue;
    const why = [...f.sources.filter((s) => s !== "neighbour"), ...(f.notes ?? [])];
    hits.push({ message, score: f.score, sources: f.sources, why });
    if (hits.length >= input.limit) break;
  }
  const out: SearchOutput = { hits, degraded, timings };
  // Each ranking as ids and scores alone (the keyword's hits carry turns, the vector's and the graph's sessions).
  const bare = (items: readonly ScoredId[] | null) => (items ?? []).map(({ id, score }) => ({ id, score }));
  if (input.explain) out.rankings = { keyword: bare(keyword), vector: bare(vector), graph: bare(graph) };
  return out;
}
