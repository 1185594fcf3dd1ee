// The read path of DESIGN.md: one call assembles what an agent puts before its model. The
// tiers are read in parallel, each under a time limit; the result is packed into the token
// budget using the token counts stored at ingest, and the final prompt is counted once more
// with the real tokenizer so `tokens` can never exceed `budget`.
//
// Prompt layout: a stable prefix first — the summary, the user's strongest facts and their
// decisions and tasks, none of which depends on the query, so for the same session state
// and budget it is the same text and a model's prompt cache keeps hitting on it — then the
// facts about what the query names, recalled older turns, and the recent window. Turns are
// grouped by day under one date line rather than each carrying a timestamp: the date is
// what a model reasons with, and the budget then holds about a quarter more turns.
//
// Recalled turns are ranked by search relevance, then by recency (a hyperbolic decay of
// their age before the session's present, so of two equally relevant turns the newer wins
// while an old, much more relevant one still beats a new, weak one) and by priority (a
// turn that stated a decision or a task counts with its memory's priority). Every item
// carries its provenance: the tier it came from, its score (comparable within its part)
// and `why`, machine-readable reasons it was chosen.

import type { Bm25Corpus } from "../bm25.ts";
import { StrataError } from "../errors.ts";
import type { StrataDeps } from "../deps.ts";
import { pieceText, stem } from "../text.ts";
import type { KnownPiece } from "../ports.ts";
import type { ContextReads, Fact, Memory, Message, Session, Summary } from "../types.ts";
import { DEFAULT_SEARCH_CONFIG, hybridSearch, lexicalEmbedder, queryTerms, vectorRanking, type SearchConfig, type SearchDeps, type SearchHit, type SearchSource } from "./search.ts";
import { timed, type TierTimings } from "./timing.ts";
import { descending } from "../order.ts";

export interface ContextInput {
  tenantId: string;
  sessionId: string;
  userId?: string;
  query?: string;
  budget: number;
}

/** Where an item of the context came from, how it scored, and why it was chosen. */
export interface Provenance {
  /** The tier that supplied it: "hot" or "archive" (recent window, summary, memories), "keyword", "vectors" or "graph". */
  tier: ContextTier;
  /** Its score within its part: recalled turns by relevance × recency × priority, facts by supporting messages, memories by priority, 1 for the window and the summary. */
  score: number;
  /** Machine-readable reasons, e.g. ["keyword", "neighbour of m12", "date match"] or ["recent window"]. */
  why: string[];
}

export type ContextTier = "hot" | "archive" | "keyword" | "vectors" | "graph";

export interface ContextItem extends Provenance {
  id: string;
  sessionId: string;
  seq: number;
  role: Message["role"];
  name: string | null;
  content: string;
  createdAt: string;
  tokens: number;
  sources: SearchSource[];
}

export type ContextFact = Fact & Provenance & { tokens: number };
export type ContextMemory = Pick<Memory, "id" | "kind" | "content" | "priority" | "tokens" | "sourceMessageId"> & Provenance;

export interface ContextOutput {
  sessionId: string;
  userId: string;
  recent: ContextItem[];
  summary: ({ content: string; upToSeq: number; tokens: number } & Provenance) | null;
  recalled: ContextItem[];
  /** The user's strongest facts (in the stable prefix), then facts about what the query names. */
  facts: ContextFact[];
  /** Typed memories (decisions, tasks, ...) by priority. */
  memories: ContextMemory[];
  prompt: string;
  /**
   * Length in characters of the prompt's stable prefix (summary, strongest facts, decisions
   * and tasks): the same text for the same session state and budget, whatever the query.
   */
  stablePrefixChars: number;
  tokens: number;
  budget: number;
  degraded: string[];
  timings: TierTimings;
}

/**
 * How turns are written into the prompt. "timestamped": every line starts with its date and
 * time. "by-day": a date line opens each day's run of turns and the turns carry only the
 * speaker, which leaves room for about a quarter more turns in the same budget.
 */
export type TurnLayout = "timestamped" | "by-day";

/** How the context is ranked and packed: the knobs the benchmark (bench/retrieval.ts) compares. */
export interface ContextConfig {
  search: SearchConfig;
  /** Shares of the budget each part may take before the rest goes to recalled turns. */
  shares: { summary: number; facts: number; recent: number };
  /**
   * Recalled turns asked of search: at least `min`, more for a big budget (one per `tokensPer`
   * tokens), at most 100. With `fill` above 0 and a recent window to go by, no more than `fill`
   * times the turns the budget can hold: its room for recalled turns (what the summary's and
   * facts' shares and the recent window leave) over the window's mean turn (recallLimit).
   */
  recall: { min: number; tokensPer: number; fill?: number };
  layout: TurnLayout;
  /**
   * A recalled turn's score is multiplied by 1 + weight / (1 + age / halfLifeDays), its age
   * in days before the session's present (its newest turn, or now). 0: off.
   */
  recency: { weight: number; halfLifeDays: number };
  /** A recalled turn that stated a memory is multiplied by 1 + weight × priority / 10. 0: off. */
  priority: { weight: number };
  /**
   * Without a query the last user turn is the query: at most `maxWords` of its words are
   * kept, the rarest in the user's turns (implicitQuery). 0: the whole turn.
   */
  implicitQuery: { maxWords: number };
}

export const DEFAULT_CONTEXT_CONFIG: ContextConfig = {
  search: DEFAULT_SEARCH_CONFIG,
  shares: { summary: 0.15, facts: 0.1, recent: 0.35 },
  recall: { min: 40, tokensPer: 40, fill: 1.5 },
  layout: "by-day",
  recency: { weight: 0.1, halfLifeDays: 30 },
  priority: { weight: 0.1 },
  implicitQuery: { maxWords: 32 },
};

/** The strongest facts of the user, in the stable prefix. */
const CORE_FACT_LIMIT = 6;
/** Facts about what the query names, after the prefix. */
const RELATED_FACT_LIMIT = 12;
const MEMORY_LIMIT = 10;
const DAY_MS = 86_400_000;

type Turn = Pick<Message, "createdAt" | "name" | "role" | "content">;

/** What a turn's line says before its content: the speaker, and in the "timestamped" layout the time. */
function speaker(m: Turn, layout: TurnLayout): string {
  if (layout === "by-day") return `${m.name ?? m.role}: `;
  return `[${m.createdAt.slice(0, 16).replace("T", " ")}] ${m.name ?? m.role}: `;
}

/** A turn's line with its content's count from ingest, which lets the tokenizer count the line without reading the content (a KnownPiece once its separator is known). */
type TurnLine = Omit<KnownPiece, "after">;

/** The line that opens a day's turns in the "by-day" layout. */
function dayLine(m: Pick<Message, "createdAt">): string {
  return `[${m.createdAt.slice(0, 10)}]`;
}

/** The lines of a run of turns: one per turn, and in the "by-day" layout a date line opening each day. */
function turnLines(turns: Message[], layout: TurnLayout): Line[] {
  const turnLine = (m: Message): TurnLine => ({ before: speaker(m, layout), text: m.content, tokens: m.tokens });
  if (layout === "timestamped") return turns.map(turnLine);
  const out: Line[] = [];
  let day = "";
  for (const m of turns) {
    const d = m.createdAt.slice(0, 10);
    if (d !== day) out.push(dayLine(m));
    day = d;
    out.push(turnLine(m));
  }
  return out;
}

function factLine(f: Fact): string {
  return `- ${f.subject} ${f.predicate.replaceAll("_", " ")} ${f.object}`;
}

const factKey = (f: Fact) => `${f.subject}\u0000${f.predicate}\u0000${f.object}`;

function toItem(m: Message, provenance: Provenance, sources: SearchSource[]): ContextItem {
  return {
    id: m.id,
    sessionId: m.sessionId,
    seq: m.seq,
    role: m.role,
    name: m.name,
    content: m.content,
    createdAt: m.createdAt,
    tokens: m.tokens,
    tier: provenance.tier,
    score: provenance.score,
    why: provenance.why,
    sources,
  };
}

function memoryLine(m: Pick<Memory, "kind" | "content">): string {
  return `- [${m.kind}] ${m.content}`;
}

const SECTION = {
  summary: "## Summary of the conversation so far",
  facts: "## Known facts",
  memories: "## Decisions and tasks",
  related: "## Facts about the question",
  recalled: "## Relevant earlier messages",
  recent: "## Recent messages",
} as const;

export interface PromptParts {
  summary: string | null;
  /** The user's strongest facts (stable prefix). */
  facts: Fact[];
  memories?: Pick<Memory, "kind" | "content">[];
  /** Facts about what the query names (after the prefix). */
  related?: Fact[];
  recalled: Message[];
  recent: Message[];
}

/** A line of the prompt: a turn's, or any other (a header, a fact, a date). */
type Line = string | TurnLine;

/** A section of the prompt: its header, then its lines. */
type Section = Line[];

/** The stable prefix (summary, strongest facts, decisions and tasks) and the rest, as sections. */
function promptSections(parts: PromptParts, layout: TurnLayout): { prefix: Section[]; rest: Section[] } {
  const prefix: Section[] = [];
  const rest: Section[] = [];
  if (parts.summary) prefix.push([SECTION.summary, parts.summary]);
  if (parts.facts.length) prefix.push([SECTION.facts, ...parts.facts.map(factLine)]);
  if (parts.memories?.length) prefix.push([SECTION.memories, ...parts.memories.map(memoryLine)]);
  if (parts.related?.length) rest.push([SECTION.related, ...parts.related.map(factLine)]);
  if (parts.recalled.length) {
    const chronological = [...parts.recalled].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.seq - b.seq);
    rest.push([SECTION.recalled, ...turnLines(chronological, layout)]);
  }
  if (parts.recent.length) rest.push([SECTION.recent, ...turnLines(parts.recent, layout)]);
  return { prefix, rest };
}

/**
 * The prompt as pieces whose concatenation is the prompt: lines within a section are joined
 * by "\n" and sections by "\n\n", and each piece is one line with the separator after it.
 * Lines recur from call to call (a turn's line never changes), which lets the tokenizer
 * count the prompt from cached counts of its pieces (Tokenizer.countJoined).
 */
function promptPieces(sections: readonly Section[]): (string | KnownPiece)[] {
  const pieces: (string | KnownPiece)[] = [];
  sections.forEach((section, i) => {
    const lastSection = i === sections.length - 1;
    section.forEach((l, j) => {
      const after = j < section.length - 1 ? "\n" : lastSection ? "" : "\n\n";
      pieces.push(typeof l === "string" ? l + after : { ...l, after });
    });
  });
  return pieces;
}

/** Length of the sections once rendered (lines joined by "\n", sections by "\n\n"). */
function renderedLength(sections: readonly Section[]): number {
  if (!sections.length) return 0;
  let n = 2 * (sections.length - 1);
  for (const section of sections) for (const l of section) n += (typeof l === "string" ? l.length : l.before.length + l.text.length) + 1;
  return n - sections.length;
}

export function renderPrompt(parts: PromptParts, layout: TurnLayout = DEFAULT_CONTEXT_CONFIG.layout): string {
  const { prefix, rest } = promptSections(parts, layout);
  return promptPieces([...prefix, ...rest]).map(pieceText).join("");
}

/** A recalled turn, rescored for the context. */
export interface RankedHit extends SearchHit {
  /** The search score before recency and priority. */
  relevance: number;
}

/**
 * Rescores search hits for the context: × (1 + recency weight / (1 + age in days / half-life))
 * with the age measured back from `now`, and × (1 + priority weight × priority / 10) for a
 * turn that stated a memory (`priorities`: message id → that memory's priority). Best first;
 * equal scores keep the search order.
 */
export function rankRecalled(
  hits: readonly SearchHit[],
  options: { now: number; recency: ContextConfig["recency"]; priority: ContextConfig["priority"]; priorities?: ReadonlyMap<string, number> },
): RankedHit[] {
  const { now, recency, priority, priorities } = options;
  const ranked = hits.map((h, i) => {
    let score = h.score;
    const why = [...h.why];
    if (recency.weight > 0 && recency.halfLifeDays > 0) {
      const ageDays = Math.max(0, now - Date.parse(h.message.createdAt)) / DAY_MS;
      score *= 1 + recency.weight / (1 + ageDays / recency.halfLifeDays);
    }
    const p = priorities?.get(h.message.id);
    if (p !== undefined && priority.weight > 0) {
      score *= 1 + (priority.weight * p) / 10;
      why.push(`states a memory (priority ${p})`);
    }
    return { hit: { ...h, score, why, relevance: h.score }, i };
  });
  ranked.sort((a, b) => descending(a.hit.score, b.hit.score) || a.i - b.i);
  return ranked.map((r) => r.hit);
}

/** The hot tier's window of the session, read under its time limit (it needs only the session id). */
function readHotWindow(deps: StrataDeps, input: ContextInput, degraded: string[], timings: TierTimings): Promise<Message[] | null> {
  return timed("hot", timings, degraded, deps.settings.tierTimeoutMs, deps.log, () => deps.hot.readWindow(input.tenantId, input.sessionId, deps.settings.recentWindow));
}

async function recentWindow(
  deps: StrataDeps,
  session: Session,
  hot: Promise<Message[] | null>,
  degraded: string[],
  timings: TierTimings,
): Promise<{ messages: Message[]; tier: ContextTier }> {
  const n = deps.settings.recentWindow;
  const cached = await hot;
  // A window is trusted only when it ends at the session's last message: an append that
  // failed (hot tier down at ingest) leaves it stale, and then the archive answers.
  const fresh = cached && (cached.length ? cached[cached.length - 1]!.seq === session.lastSeq : session.lastSeq === 0);
  if (cached && fresh) return { messages: cached, tier: "hot" };
  const t0 = performance.now();
  const fromArchive = await deps.archive.listMessages(session.tenantId, session.id, { limit: n });
  timings.archive_recent = performance.now() - t0;
  if (!degraded.includes("hot")) {
    deps.hot.replaceWindow(session.tenantId, session.id, fromArchive, n).catch((e) => {
      deps.log.warn("hot window repair failed", { sessionId: session.id, error: e });
    });
  }
  return { messages: fromArchive, tier: "archive" };
}

const LETTER = /\p{L}/u;

/**
 * The last user turn as a query. In a coding session that turn can be kilobytes of pasted
 * trace or code, hundreds of words, and every word costs: a BM25 posting list, graph lookups
 * (each word is matched against the user's entities and facts), vector dimensions. BM25
 * weighs a word by its IDF, so the rarest words carry the ranking anyway: the query keeps the
 * `max` distinct words of highest IDF in the user's corpus (fewest turns holding them), in
 * their order in the turn. Numbers come after words: the rarest tokens of a pasted trace or
 * log are its line numbers, ports and counts, which say little about what the turn is about.
 * A word no other turn holds is left out, as it can only find the turn itself, which the
 * recent window already has. A turn of `max` words or fewer, or no corpus to weigh them by,
 * leaves the turn as it is.
 */
export function implicitQuery(turn: Pick<Message, "id" | "content">, corpus: Bm25Corpus | null, max: number): string {
  if (!corpus || max <= 0) return turn.content;
  const distinct = queryTerms(turn.content);
  if (distinct.length <= max) return turn.content;
  const self = corpus.has(turn.id) ? 1 : 0;
  const byTerm = new Map<string, { word: string; at: number; df: number; number: boolean }>();
  distinct.forEach((word, at) => {
    const term = stem(word);
    if (byTerm.has(term)) return;
    const df = corpus.docFrequency(term) - self;
    if (df > 0) byTerm.set(term, { word, at, df, number: !LETTER.test(word) });
  });
  const kept = [...byTerm.values()].sort((a, b) => Number(a.number) - Number(b.number) || a.df - b.df || a.at - b.at).slice(0, max);
  return kept
    .sort((a, b) => a.at - b.at)
    .map((k) => k.word)
    .join(" ");
}

/**
 * How many recalled turns a context call asks of search (ContextConfig.recall). Asking for
 * more than can be packed costs every retriever, the fusion and each ranking step their
 * depth, and none of it reaches the prompt: with `fill`, a session of long turns asks for
 * fewer than one of short ones. `recent` is the session's window; without one the turns'
 * length is unknown and the budget alone decides.
 */
export function recallLimit(budget: number, recall: ContextConfig["recall"], shares: ContextConfig["shares"], recent?: readonly Pick<Message, "tokens">[]): number {
  const byBudget = Math.min(100, Math.max(recall.min, Math.ceil(budget / recall.tokensPer)));
  if (!recall.fill || recall.fill <= 0 || !recent?.length) return byBudget;
  let windowTokens = 0;
  for (const m of recent) windowTokens += m.tokens;
  // A turn's line costs its speaker and separator besides its content: a few tokens.
  const perTurn = windowTokens / recent.length + 4;
  const room = budget * (1 - shares.summary - shares.facts) - Math.min(windowTokens, budget * shares.recent);
  return Math.min(byBudget, Math.max(recall.min, Math.ceil((recall.fill * Math.max(0, room)) / perTurn)));
}

/** The strongest facts in a fixed order (weight, then text), so the prefix they open is stable. */
function stableOrder(facts: readonly Fact[]): Fact[] {
  const key = (f: Fact) => factKey(f);
  return [...facts].sort((a, b) => descending(a.weight, b.weight) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export async function assembleContext(deps: SearchDeps, input: ContextInput, config: ContextConfig = DEFAULT_CONTEXT_CONFIG): Promise<ContextOutput> {
  const timings: TierTimings = {};
  const degraded: string[] = [];
  const t0 = performance.now();
  const limitMs = deps.settings.tierTimeoutMs;
  // The hot window needs only the session id: it is read while the archive answers.
  const hotP = readHotWindow(deps, input, degraded, timings);
  // A query and a user named by the caller are all the vector tier needs: its embedding and
  // nearest-neighbour query (a round trip of its own in the managed wiring) start now, beside
  // the first reads, instead of after them. A session found to belong to someone else below
  // discards it unread.
  const explicitQuery = input.query?.trim() ?? "";
  // The vector tier starts before the window is read: it ranks as deep as the budget alone
  // allows, and search keeps the head it needs.
  const earlyLimit = recallLimit(input.budget, config.recall, config.shares);
  const earlyVectors =
    explicitQuery && input.userId
      ? timed("vector", timings, degraded, limitMs, deps.log, () =>
          vectorRanking(deps, { tenantId: input.tenantId, userId: input.userId!, query: explicitQuery, limit: earlyLimit }, config.search),
        )
      : undefined;
  // An archive with readContext answers the session, its summary, the user's memories and
  // the user's version in one round trip (timed as "session"); the version then spares the
  // keyword index a read of its own, and the graph version (with what changed since the graph
  // held) the graph index (shared mode) one. Otherwise the session is read first, the rest after.
  let stored: Session | null;
  let first: ContextReads | null = null;
  if (deps.archive.readContext) {
    // A graph store that holds the user's graph asks for what merges added since (the last
    // turn's extraction, as a rule) in the same statement.
    const graphDelta = input.userId ? deps.graph.catchUpFrom?.(input.tenantId, input.userId) : null;
    first = await deps.archive.readContext(input.tenantId, input.sessionId, { userId: input.userId, memoryLimit: MEMORY_LIMIT, ...(graphDelta ? { graphDelta } : {}) });
    stored = first.session;
  } else {
    stored = await deps.archive.getSession(input.tenantId, input.sessionId);
  }
  timings.session = performance.now() - t0;
  if (stored && input.userId && stored.userId !== input.userId) {
    throw new StrataError("conflict", "SESSION_USER_MISMATCH", `session ${input.sessionId} belongs to another user, not ${input.userId}`);
  }
  if (!stored && !input.userId) {
    throw new StrataError("not_found", "SESSION_NOT_FOUND", `session ${input.sessionId} has no messages yet; pass userId to recall that user's memory`);
  }
  const session: Session = stored ?? {
    tenantId: input.tenantId,
    id: input.sessionId,
    userId: input.userId!,
    lastSeq: 0,
    createdAt: new Date().toISOString(),
  };
  const scope = { tenantId: input.tenantId, userId: session.userId };
  const userVersion = first ? first.userVersion : undefined;
  const graphAsOf = first?.graphVersion ? { asOf: first.graphVersion } : {};

  const recentP = recentWindow(deps, session, hotP, degraded, timings);
  // The user's keyword corpus weighs the words of an implicit query (a failure leaves the query whole; search degrades on its own).
  const index = config.search.keyword === "bm25" && !explicitQuery ? deps.keywords : undefined;
  const corpusP = index ? index.corpus(input.tenantId, session.userId, userVersion).catch(() => null) : Promise.resolve(null);
  const summaryP = first
    ? Promise.resolve(first.summary)
    : stored
      ? timed("summary", timings, degraded, limitMs, deps.log, () => deps.archive.latestSummary(input.tenantId, input.sessionId))
      : Promise.resolve(null as Summary | null);
  const coreFactsP = timed("facts", timings, degraded, limitMs, deps.log, () => deps.graph.facts({ ...scope, terms: [], limit: CORE_FACT_LIMIT, ...graphAsOf }));
  const memoriesP = first
    ? Promise.resolve(first.memories)
    : timed("memories", timings, degraded, limitMs, deps.log, () => deps.archive.listMemories(input.tenantId, session.userId, { limit: MEMORY_LIMIT }));
  const window = await recentP;
  const recent = window.messages;
  const lastTurn = explicitQuery ? undefined : [...recent].reverse().find((m) => m.role === "user");
  const t2 = performance.now();
  const query = explicitQuery || (lastTurn ? implicitQuery(lastTurn, await corpusP, config.implicitQuery.maxWords) : "");
  if (lastTurn) timings.implicit_query = performance.now() - t2;
  // A semantic embedder reads the whole turn; the lexical one is a bag of the words kept.
  const embedText = lastTurn && query !== lastTurn.content && !lexicalEmbedder(deps.embedder.model) ? lastTurn.content : undefined;
  const qTerms = query ? queryTerms(query) : [];
  const recentIds = new Set(recent.map((m) => m.id));
  const [summary, recall, coreFacts, related, memories] = await Promise.all([
    summaryP,
    query
      ? hybridSearch(
          deps,
          {
            tenantId: input.tenantId,
            userId: session.userId,
            query,
            limit: recallLimit(input.budget, config.recall, config.shares, recent),
            exclude: recentIds,
            ...(embedText ? { embedText } : {}),
            ...(userVersion !== undefined ? { userVersion } : {}),
            ...(first?.graphVersion ? { graphVersion: first.graphVersion } : {}),
            ...(earlyVectors ? { vectorRanking: earlyVectors } : {}),
          },
          config.search,
        )
      : Promise.resolve(null),
    coreFactsP,
    qTerms.length
      ? timed("facts_related", timings, degraded, limitMs, deps.log, () => deps.graph.facts({ ...scope, terms: qTerms, limit: RELATED_FACT_LIMIT, ...graphAsOf }))
      : Promise.resolve([] as Fact[]),
    memoriesP,
  ]);
  if (recall) {
    degraded.push(...recall.degraded);
    Object.assign(timings, recall.timings);
  }

  // The session's present: its newest turn, or now for a session with none yet.
  const newest = recent[recent.length - 1];
  const now = newest ? Date.parse(newest.createdAt) : Date.now();
  const priorities = new Map<string, number>();
  for (const m of memories ?? []) if (m.sourceMessageId && !priorities.has(m.sourceMessageId)) priorities.set(m.sourceMessageId, m.priority);

  const t1 = performance.now();
  const packed = pack(deps, input.budget, config, {
    summary,
    coreFacts: stableOrder(coreFacts ?? []),
    related: related ?? [],
    terms: qTerms,
    memories: memories ?? [],
    recalled: rankRecalled(recall?.hits ?? [], { now, recency: config.recency, priority: config.priority, priorities }),
    recent,
    recentTier: window.tier,
  });
  timings.pack = performance.now() - t1;
  timings.total = performance.now() - t0;

  return {
    sessionId: session.id,
    userId: session.userId,
    ...packed,
    budget: input.budget,
    degraded: [...new Set(degraded)],
    timings,
  };
}

interface Candidates {
  summary: Summary | null;
  coreFacts: Fact[];
  related: Fact[];
  /** The query's terms, to say which a related fact names. */
  terms: string[];
  memories: Memory[];
  recalled: RankedHit[];
  recent: Message[];
  recentTier: ContextTier;
}

/** The tier a recalled turn came from: that of the first retriever that found it (neighbours are read off the keyword corpus). */
function recallTier(sources: readonly SearchSource[]): ContextTier {
  const first = sources[0];
  return first === "vector" ? "vectors" : first === "graph" ? "graph" : "keyword";
}

/** The query terms a fact names (its subject or object holds the term as a word). */
function namedTerms(f: Fact, terms: readonly string[]): string[] {
  const words = new Set(`${f.subject} ${f.object}`.toLowerCase().split(/[^\p{L}\p{N}]+/u));
  return terms.filter((t) => words.has(t));
}

function pack(deps: StrataDeps, budget: number, config: ContextConfig, c: Candidates) {
  const { shares: SHARES, layout } = config;
  const tok = deps.tokenizer;
  // The short texts the estimate counts (a turn's speaker prefix, a date line, the headers, a
  // fact or memory line) recur from line to line and from call to call: each is counted once
  // per call, and by the tokenizer's cache where it has one (countJoined of one piece is its count).
  const counted = new Map<string, number>();
  const countShort = (text: string) => {
    let n = counted.get(text);
    if (n === undefined) counted.set(text, (n = tok.countJoined ? tok.countJoined([text]) : tok.count(text)));
    return n;
  };
  // Headers and separators, counted once; the per-line cost adds the line's own prefix.
  const overhead = countShort(`${Object.values(SECTION).join("\n")}${"\n".repeat(10)}`);
  let left = budget - overhead;
  const lineCost = (m: Message) => countShort(speaker(m, layout)) + m.tokens + 1;
  // In the "by-day" layout a turn of a day not yet in its section also pays for the day's line.
  const dayCost = (m: Message, days: Set<string>) => (layout === "by-day" && !days.has(m.createdAt.slice(0, 10)) ? countShort(dayLine(m)) + 1 : 0);
  const recentDays = new Set<string>();
  const recalledDays = new Set<string>();

  // The stable prefix: summary, strongest facts, decisions and tasks. What it holds depends
  // only on the session state and the budget, never on the query.
  let summary: ContextOutput["summary"] = null;
  // A summary run over nothing but small talk records its progress with empty text: no section for it.
  if (c.summary && c.summary.content.trim() && c.summary.tokens <= Math.min(left, budget * SHARES.summary)) {
    summary = { content: c.summary.content, upToSeq: c.summary.upToSeq, tokens: c.summary.tokens, tier: "archive", score: 1, why: ["latest summary"] };
    left -= c.summary.tokens + 1;
  }

  const facts: ContextFact[] = [];
  let factRoom = Math.min(left, budget * SHARES.facts);
  for (const f of c.coreFacts) {
    const t = countShort(factLine(f)) + 1;
    if (t > factRoom) continue;
    facts.push({ ...f, tokens: t, tier: "graph", score: f.weight, why: ["strongest fact"] });
    factRoom -= t;
    left -= t;
  }

  // Decisions and tasks share the facts' allowance: both are short, durable statements.
  const memories: ContextMemory[] = [];
  for (const m of c.memories) {
    const t = countShort(memoryLine(m)) + 1;
    if (t > factRoom) continue;
    memories.push({
      id: m.id,
      kind: m.kind,
      content: m.content,
      priority: m.priority,
      tokens: t,
      sourceMessageId: m.sourceMessageId,
      tier: "archive",
      score: m.priority,
      why: [m.kind, `priority ${m.priority}`],
    });
    factRoom -= t;
    left -= t;
  }
  let core = facts.length;

  // Facts about what the query names take what is left of the allowance, after the prefix.
  const inPrefix = new Set(facts.map(factKey));
  for (const f of c.related) {
    if (inPrefix.has(factKey(f))) continue;
    const t = countShort(factLine(f)) + 1;
    if (t > factRoom) continue;
    const named = namedTerms(f, c.terms);
    facts.push({ ...f, tokens: t, tier: "graph", score: f.weight, why: named.length ? named.map((n) => `names ${n}`) : ["about the query"] });
    factRoom -= t;
    left -= t;
  }

  // Newest first, so the turns nearest the present survive a small budget.
  const recent: Message[] = [];
  let recentRoom = Math.min(left, budget * SHARES.recent);
  for (let i = c.recent.length - 1; i >= 0; i--) {
    const m = c.recent[i]!;
    const t = lineCost(m) + dayCost(m, recentDays);
    if (t > recentRoom) break;
    recent.unshift(m);
    recentDays.add(m.createdAt.slice(0, 10));
    recentRoom -= t;
    left -= t;
  }

  // Search was told to exclude the whole window; this guards the rule itself.
  const windowIds = new Set(c.recent.map((m) => m.id));
  const recalled: RankedHit[] = [];
  for (const hit of c.recalled) {
    if (windowIds.has(hit.message.id)) continue;
    const t = lineCost(hit.message) + dayCost(hit.message, recalledDays);
    if (t > left) continue;
    recalled.push(hit);
    recalledDays.add(hit.message.createdAt.slice(0, 10));
    left -= t;
  }

  // Room left over goes to older turns of the recent window.
  const firstKept = recent[0];
  for (let i = firstKept ? c.recent.indexOf(firstKept) - 1 : c.recent.length - 1; i >= 0; i--) {
    const m = c.recent[i]!;
    const t = lineCost(m) + dayCost(m, recentDays);
    if (t > left) break;
    recent.unshift(m);
    recentDays.add(m.createdAt.slice(0, 10));
    left -= t;
  }

  // The estimate above sums per-line counts; BPE merges across line boundaries can differ by
  // a token or two, so the rendered prompt is counted exactly and trimmed if it must be,
  // from the query-dependent parts first so the prefix stays as long as it can.
  const parts = (): PromptParts => ({
    summary: summary?.content ?? null,
    facts: facts.slice(0, core),
    memories,
    related: facts.slice(core),
    recalled: recalled.map((h) => h.message),
    recent,
  });
  // Exact, and cheap where the tokenizer caches the counts of lines it has seen before.
  const countPieces = (pieces: (string | KnownPiece)[]) => (tok.countJoined ? tok.countJoined(pieces) : tok.count(pieces.map(pieceText).join("")));
  let sections = promptSections(parts(), layout);
  let pieces = promptPieces([...sections.prefix, ...sections.rest]);
  let tokens = countPieces(pieces);
  while (tokens > budget) {
    if (recalled.length) recalled.pop();
    else if (recent.length) recent.shift();
    else if (facts.length > core) facts.pop();
    else if (memories.length) memories.pop();
    else if (core > 0) facts.splice(--core, 1);
    else summary = null;
    sections = promptSections(parts(), layout);
    pieces = promptPieces([...sections.prefix, ...sections.rest]);
    tokens = countPieces(pieces);
  }
  const prompt = pieces.map(pieceText).join("");
  const stablePrefixChars = renderedLength(sections.prefix);

  return {
    recent: recent.map((m) => toItem(m, { tier: c.recentTier, score: 1, why: ["recent window"] }, ["recent"])),
    summary,
    recalled: recalled.map((h) => toItem(h.message, { tier: recallTier(h.sources), score: h.score, why: h.why }, h.sources)),
    facts,
    memories,
    prompt,
    stablePrefixChars,
    tokens,
  };
}
