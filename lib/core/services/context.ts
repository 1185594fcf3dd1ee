// The read path of DESIGN.md: one call assembles what an agent puts before its model. The
// tiers are read in parallel, each under a time limit; the result is packed into the token
// budget using the token counts stored at ingest, and the final prompt is counted once more
// with the real tokenizer so `tokens` can never exceed `budget`.
//
// Prompt layout: summary and facts first (they change slowly, so a model's prompt cache
// keeps hitting on that prefix), then recalled older turns, then the recent window. Turns
// are grouped by day under one date line rather than each carrying a timestamp: the date
// is what a model reasons with, and the budget then holds about a quarter more turns.

import { StrataError } from "../errors.ts";
import type { StrataDeps } from "../deps.ts";
import type { Fact, Memory, Message, Session, Summary } from "../types.ts";
import { DEFAULT_SEARCH_CONFIG, hybridSearch, queryTerms, type SearchConfig, type SearchDeps, type SearchSource } from "./search.ts";
import { timed, type TierTimings } from "./timing.ts";

export interface ContextInput {
  tenantId: string;
  sessionId: string;
  userId?: string;
  query?: string;
  budget: number;
}

export interface ContextItem {
  id: string;
  sessionId: string;
  seq: number;
  role: Message["role"];
  name: string | null;
  content: string;
  createdAt: string;
  tokens: number;
  score?: number;
  sources?: SearchSource[];
}

export interface ContextOutput {
  sessionId: string;
  userId: string;
  recent: ContextItem[];
  summary: { content: string; upToSeq: number; tokens: number } | null;
  recalled: ContextItem[];
  facts: (Fact & { tokens: number })[];
  /** Typed memories (decisions, tasks, ...) by priority. */
  memories: Pick<Memory, "id" | "kind" | "content" | "priority" | "tokens" | "sourceMessageId">[];
  prompt: string;
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
  /** Recalled turns asked of search: at least `min`, more for a big budget (one per `tokensPer` tokens). */
  recall: { min: number; tokensPer: number };
  layout: TurnLayout;
}

export const DEFAULT_CONTEXT_CONFIG: ContextConfig = {
  search: DEFAULT_SEARCH_CONFIG,
  shares: { summary: 0.15, facts: 0.1, recent: 0.35 },
  recall: { min: 40, tokensPer: 40 },
  layout: "by-day",
};

const FACT_LIMIT = 12;
const MEMORY_LIMIT = 10;

type Turn = Pick<Message, "createdAt" | "name" | "role" | "content">;

function line(m: Turn, layout: TurnLayout = "timestamped"): string {
  if (layout === "by-day") return `${m.name ?? m.role}: ${m.content}`;
  return `[${m.createdAt.slice(0, 16).replace("T", " ")}] ${m.name ?? m.role}: ${m.content}`;
}

/** The line that opens a day's turns in the "by-day" layout. */
function dayLine(m: Pick<Message, "createdAt">): string {
  return `[${m.createdAt.slice(0, 10)}]`;
}

function renderTurns(turns: Turn[], layout: TurnLayout): string {
  if (layout === "timestamped") return turns.map((m) => line(m)).join("\n");
  const out: string[] = [];
  let day = "";
  for (const m of turns) {
    const d = m.createdAt.slice(0, 10);
    if (d !== day) out.push(dayLine(m));
    day = d;
    out.push(line(m, layout));
  }
  return out.join("\n");
}

function factLine(f: Fact): string {
  return `- ${f.subject} ${f.predicate.replaceAll("_", " ")} ${f.object}`;
}

function toItem(m: Message, extra: { score?: number; sources?: SearchSource[] } = {}): ContextItem {
  return {
    id: m.id,
    sessionId: m.sessionId,
    seq: m.seq,
    role: m.role,
    name: m.name,
    content: m.content,
    createdAt: m.createdAt,
    tokens: m.tokens,
    ...extra,
  };
}

function memoryLine(m: Pick<Memory, "kind" | "content">): string {
  return `- [${m.kind}] ${m.content}`;
}

export function renderPrompt(
  parts: {
    summary: string | null;
    facts: Fact[];
    memories?: Pick<Memory, "kind" | "content">[];
    recalled: Message[];
    recent: Message[];
  },
  layout: TurnLayout = DEFAULT_CONTEXT_CONFIG.layout,
): string {
  const sections: string[] = [];
  if (parts.summary) sections.push(`## Summary of the conversation so far\n${parts.summary}`);
  if (parts.facts.length) sections.push(`## Known facts\n${parts.facts.map(factLine).join("\n")}`);
  if (parts.memories?.length) sections.push(`## Decisions and tasks\n${parts.memories.map(memoryLine).join("\n")}`);
  if (parts.recalled.length) {
    const chronological = [...parts.recalled].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.seq - b.seq);
    sections.push(`## Relevant earlier messages\n${renderTurns(chronological, layout)}`);
  }
  if (parts.recent.length) sections.push(`## Recent messages\n${renderTurns(parts.recent, layout)}`);
  return sections.join("\n\n");
}

async function recentWindow(deps: StrataDeps, session: Session, degraded: string[], timings: TierTimings): Promise<Message[]> {
  const n = deps.settings.recentWindow;
  const cached = await timed("hot", timings, degraded, deps.settings.tierTimeoutMs, deps.log, () =>
    deps.hot.readWindow(session.tenantId, session.id, n),
  );
  // A window is trusted only when it ends at the session's last message: an append that
  // failed (hot tier down at ingest) leaves it stale, and then the archive answers.
  const fresh = cached && (cached.length ? cached[cached.length - 1]!.seq === session.lastSeq : session.lastSeq === 0);
  if (cached && fresh) return cached;
  const t0 = performance.now();
  const fromArchive = await deps.archive.listMessages(session.tenantId, session.id, { limit: n });
  timings.archive_recent = performance.now() - t0;
  if (!degraded.includes("hot")) {
    deps.hot.replaceWindow(session.tenantId, session.id, fromArchive, n).catch((e) => {
      deps.log.warn("hot window repair failed", { sessionId: session.id, error: e });
    });
  }
  return fromArchive;
}

export async function assembleContext(deps: SearchDeps, input: ContextInput, config: ContextConfig = DEFAULT_CONTEXT_CONFIG): Promise<ContextOutput> {
  const timings: TierTimings = {};
  const degraded: string[] = [];
  const t0 = performance.now();
  const stored = await deps.archive.getSession(input.tenantId, input.sessionId);
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
  const limitMs = deps.settings.tierTimeoutMs;

  const recentP = recentWindow(deps, session, degraded, timings);
  const summaryP = stored
    ? timed("summary", timings, degraded, limitMs, deps.log, () => deps.archive.latestSummary(input.tenantId, input.sessionId))
    : Promise.resolve(null as Summary | null);
  const recent = await recentP;
  const query = input.query?.trim() || [...recent].reverse().find((m) => m.role === "user")?.content || "";
  const recentIds = new Set(recent.map((m) => m.id));
  const [summary, recall, facts, memories] = await Promise.all([
    summaryP,
    query
      ? hybridSearch(
          deps,
          {
            tenantId: input.tenantId,
            userId: session.userId,
            query,
            limit: Math.min(100, Math.max(config.recall.min, Math.ceil(input.budget / config.recall.tokensPer))),
            exclude: recentIds,
          },
          config.search,
        )
      : Promise.resolve(null),
    timed("facts", timings, degraded, limitMs, deps.log, () =>
      deps.graph.facts({ tenantId: input.tenantId, userId: session.userId, terms: query ? queryTerms(query) : [], limit: FACT_LIMIT }),
    ),
    timed("memories", timings, degraded, limitMs, deps.log, () =>
      deps.archive.listMemories(input.tenantId, session.userId, { limit: MEMORY_LIMIT }),
    ),
  ]);
  if (recall) {
    degraded.push(...recall.degraded);
    Object.assign(timings, recall.timings);
  }

  const t1 = performance.now();
  const packed = pack(deps, input.budget, config, {
    summary,
    facts: facts ?? [],
    memories: memories ?? [],
    recalled: recall?.hits ?? [],
    recent,
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
  facts: Fact[];
  memories: Memory[];
  recalled: { message: Message; score: number; sources: SearchSource[] }[];
  recent: Message[];
}

function pack(deps: StrataDeps, budget: number, config: ContextConfig, c: Candidates) {
  const { shares: SHARES, layout } = config;
  const tok = deps.tokenizer;
  // Headers and separators, counted once; the per-line cost adds the line's own prefix.
  const overhead = tok.count(
    "## Summary of the conversation so far\n## Known facts\n## Decisions and tasks\n## Relevant earlier messages\n## Recent messages\n\n\n\n\n\n\n\n\n",
  );
  let left = budget - overhead;
  const lineCost = (m: Message) => tok.count(line({ ...m, content: "" }, layout)) + m.tokens + 1;
  // In the "by-day" layout a turn of a day not yet in its section also pays for the day's line.
  const dayCost = (m: Message, days: Set<string>) => (layout === "by-day" && !days.has(m.createdAt.slice(0, 10)) ? tok.count(dayLine(m)) + 1 : 0);
  const recentDays = new Set<string>();
  const recalledDays = new Set<string>();

  let summary: ContextOutput["summary"] = null;
  if (c.summary && c.summary.tokens <= Math.min(left, budget * SHARES.summary)) {
    summary = { content: c.summary.content, upToSeq: c.summary.upToSeq, tokens: c.summary.tokens };
    left -= c.summary.tokens + 1;
  }

  const facts: (Fact & { tokens: number })[] = [];
  let factRoom = Math.min(left, budget * SHARES.facts);
  for (const f of c.facts) {
    const t = tok.count(factLine(f)) + 1;
    if (t > factRoom) continue;
    facts.push({ ...f, tokens: t });
    factRoom -= t;
    left -= t;
  }

  // Decisions and tasks share the facts' allowance: both are short, durable statements.
  const memories: ContextOutput["memories"] = [];
  for (const m of c.memories) {
    const t = tok.count(memoryLine(m)) + 1;
    if (t > factRoom) continue;
    memories.push({ id: m.id, kind: m.kind, content: m.content, priority: m.priority, tokens: t, sourceMessageId: m.sourceMessageId });
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

  const recalled: Candidates["recalled"] = [];
  for (const hit of c.recalled) {
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
  // a token or two, so the rendered prompt is counted exactly and trimmed if it must be.
  const render = () => renderPrompt({ summary: summary?.content ?? null, facts, memories, recalled: recalled.map((h) => h.message), recent }, layout);
  let prompt = render();
  let tokens = tok.count(prompt);
  while (tokens > budget) {
    if (recalled.length) recalled.pop();
    else if (recent.length) recent.shift();
    else if (memories.length) memories.pop();
    else if (facts.length) facts.pop();
    else summary = null;
    prompt = render();
    tokens = tok.count(prompt);
  }

  return {
    recent: recent.map((m) => toItem(m, { sources: ["recent"] })),
    summary,
    recalled: recalled.map((h) => toItem(h.message, { score: h.score, sources: h.sources })),
    facts,
    memories,
    prompt,
    tokens,
  };
}
