// Hybrid recall over one user's long-term memory: keyword (archive full-text), vector
// (semantic) and graph (messages mentioning entities named in the query) retrievers run in
// parallel, each under a time limit, and their rankings are fused with reciprocal rank
// fusion. RRF needs no score calibration between retrievers, which is why it is the
// default: a keyword rank and a cosine rank are not comparable numbers.

import type { StrataDeps } from "../deps.ts";
import { STOPWORDS, words } from "../text.ts";
import type { Message, RecallSource, ScoredId } from "../types.ts";
import { timed, type TierTimings } from "./timing.ts";

export interface SearchInput {
  tenantId: string;
  userId: string;
  query: string;
  limit: number;
  sessionId?: string;
  /** Ids never to return (e.g. what the recent window already holds). */
  exclude?: ReadonlySet<string>;
}

export interface SearchHit {
  message: Message;
  score: number;
  sources: RecallSource[];
}

export interface SearchOutput {
  hits: SearchHit[];
  degraded: string[];
  timings: TierTimings;
}

/** RRF constant: damps the head so one retriever's first place does not decide alone. */
const RRF_K = 60;
const WEIGHTS: Record<Exclude<RecallSource, "recent">, number> = { keyword: 1, vector: 1, graph: 0.5 };

export function fuseRankings(rankings: Partial<Record<RecallSource, ScoredId[]>>): { id: string; score: number; sources: RecallSource[] }[] {
  const fused = new Map<string, { id: string; score: number; sources: RecallSource[] }>();
  for (const [source, list] of Object.entries(rankings) as [Exclude<RecallSource, "recent">, ScoredId[]][]) {
    const w = WEIGHTS[source] ?? 1;
    list.forEach((item, rank) => {
      const entry = fused.get(item.id) ?? { id: item.id, score: 0, sources: [] };
      entry.score += w / (RRF_K + rank + 1);
      if (!entry.sources.includes(source)) entry.sources.push(source);
      fused.set(item.id, entry);
    });
  }
  return [...fused.values()].sort((a, b) => b.score - a.score);
}

export function queryTerms(query: string): string[] {
  return [...new Set(words(query).filter((w) => !STOPWORDS.has(w)))];
}

export async function hybridSearch(deps: StrataDeps, input: SearchInput): Promise<SearchOutput> {
  const depth = Math.max(50, input.limit * 2);
  const timings: TierTimings = {};
  const degraded: string[] = [];
  const limitMs = deps.settings.tierTimeoutMs;
  const scope = { tenantId: input.tenantId, userId: input.userId };

  const [keyword, vector, graph] = await Promise.all([
    timed("keyword", timings, degraded, limitMs, deps.log, () =>
      deps.archive.keywordSearch({ ...scope, query: input.query, limit: depth, sessionId: input.sessionId }),
    ),
    timed("vector", timings, degraded, limitMs, deps.log, async () => {
      const [vec] = await deps.embedder.embed([input.query]);
      const matches = await deps.vectors.query({ ...scope, vector: vec!, topK: depth, sessionId: input.sessionId, kinds: ["message"] });
      return matches.map((m) => ({ id: m.id, score: m.score }));
    }),
    timed("graph", timings, degraded, limitMs, deps.log, () =>
      deps.graph.messagesMentioning({ ...scope, terms: queryTerms(input.query), limit: depth }),
    ),
  ]);

  const fused = fuseRankings({ keyword: keyword ?? [], vector: vector ?? [], graph: graph ?? [] }).filter(
    (f) => !input.exclude?.has(f.id),
  );
  // Hydrate a little more than asked: graph hits outside the session filter are dropped below.
  const head = fused.slice(0, input.limit + (input.sessionId ? depth : 0));
  const t0 = performance.now();
  const messages = await deps.archive.getMessages(
    input.tenantId,
    head.map((f) => f.id),
  );
  timings.hydrate = performance.now() - t0;
  const byId = new Map(messages.map((m) => [m.id, m]));
  const hits: SearchHit[] = [];
  for (const f of head) {
    const message = byId.get(f.id);
    if (!message || message.userId !== input.userId) continue;
    if (input.sessionId && message.sessionId !== input.sessionId) continue;
    hits.push({ message, score: f.score, sources: f.sources });
    if (hits.length >= input.limit) break;
  }
  return { hits, degraded, timings };
}
