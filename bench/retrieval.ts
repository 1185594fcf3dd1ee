// Offline retrieval benchmark: the protocol of ../shared/eval/locomo-recall.mjs without HTTP.
// One embedded Strata (PGlite in memory, job runner on) gets every LoCoMo conversation as one
// user, ingested exactly as the eval script sends it (ids, roles, names, image captions,
// createdAt per session, batches of 100 through the ingest service); once the derived tiers
// are idle, every question is asked of hybridSearch (limit 50) and, with --mode context, of
// assembleContext (budget 2000 or --budget, the conversation's last session). The data is read in place
// at run time and never copied into the project.
//
//   node_modules/.bin/node bench/retrieval.ts [--variant NAME[,NAME...]|all] [--mode search|context|both] [--budget N]
//                                             [--data DIR] [--json OUT] [--per-conv] [--merge] [--dump OUT]
//
// For each variant it prints the fused figures overall and by category, each retriever's
// own figures (its ranking before fusion) so the contribution of each is visible, the
// per-conversation R@10 (robustness: a change should help each conversation, not only the
// mean), and search latency p50/p95 measured around hybridSearch.

import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { DEFAULT_TENANT, loadConfig } from "../lib/config.ts";
import { createStrata, type Strata } from "../lib/runtime.ts";
import { ingestMessages, type IngestMessageInput } from "../lib/core/services/ingest.ts";
import { hybridSearch, DEFAULT_SEARCH_CONFIG, type SearchConfig } from "../lib/core/services/search.ts";
import { assembleContext, DEFAULT_CONTEXT_CONFIG, type ContextConfig } from "../lib/core/services/context.ts";
import { VARIANTS, type Variant } from "./retrieval-variants.ts";
import { benchUsageError, parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    data: { type: "string", default: "/work/shared/data/locomo-dev" },
    mode: { type: "string", default: "search" },
    variant: { type: "string", default: "default" },
    json: { type: "string" },
    "per-conv": { type: "boolean", default: false },
    dump: { type: "string" },
    merge: { type: "boolean", default: false },
    budget: { type: "string", default: "2000" },
  },
});
const dataArg = opts.data;
const mode = opts.mode;
if (!["search", "context", "both"].includes(mode)) benchUsageError(import.meta.url, `--mode must be search, context or both, got ${mode}`);
const variantArg = opts.variant;
const jsonOut = opts.json;
const perConv = opts["per-conv"];
// Writes each question's per-retriever rankings (ids without the user prefix) for offline analysis.
const dumpOut = opts.dump;
// Every conversation in one user's memory (about 2,760 turns, ten speakers): a harder
// haystack, and the latency of a user four times the size the issue budgets for.
const merge = opts.merge;

const KS = [1, 5, 10, 25, 50] as const;
const LIMIT = 50;
const BUDGET = Number(opts.budget);
if (!(BUDGET > 0)) benchUsageError(import.meta.url, `--budget must be a positive number of tokens, got ${opts.budget}`);
const CATS: Record<number, string> = { 1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial" };
const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}
interface QA {
  question: string;
  evidence?: unknown[];
  category: number;
}
interface Conversation {
  id: string;
  /** Prefix of the message ids (the eval's user id). */
  userId: string;
  /** The user whose memory holds the conversation (userId, or one shared user with --merge). */
  owner: string;
  sessions: { id: string; messages: IngestMessageInput[] }[];
  known: Set<string>;
  qa: QA[];
}

/** "1:56 pm on 8 May, 2023", as the eval parses it. */
function parseWhen(s: unknown): Date | null {
  const m = /(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})/i.exec(String(s ?? ""));
  if (!m) return null;
  let hour = Number(m[1]) % 12;
  if (m[3]!.toLowerCase() === "pm") hour += 12;
  const month = MONTHS.indexOf(m[5]!.toLowerCase());
  return new Date(Date.UTC(Number(m[6]), month < 0 ? 0 : month, Number(m[4]), hour, Number(m[2])));
}

/** Evidence ids are sometimes malformed ("D8:6; D9:17", "D:11:26", "D30:05"); same rules as the eval. */
function normaliseEvidence(list: unknown[] | undefined): string[] {
  const out = new Set<string>();
  for (const raw of list ?? []) {
    for (const part of String(raw).split(/[;,\s]+/)) {
      const m = /^D:?(\d+):0*(\d+)$/.exec(part.trim());
      if (m) out.add(`D${Number(m[1])}:${Number(m[2])}`);
    }
  }
  return [...out];
}

function loadConversations(): Conversation[] {
  const files = dataArg.split(",").flatMap((p) =>
    statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith(".json")).sort().map((f) => join(p, f)) : [p],
  );
  return files.map((file) => {
    const conv = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    const id = basename(file, ".json");
    const userId = `locomo-${id}-bench`;
    const known = new Set<string>();
    const keys = Object.keys(conv)
      .filter((k) => /^session_\d+$/.test(k) && Array.isArray(conv[k]) && (conv[k] as unknown[]).length)
      .sort((a, b) => Number(a.split("_")[1]) - Number(b.split("_")[1]));
    const sessions = keys.map((k) => {
      const n = k.split("_")[1];
      const start = parseWhen(conv[`${k}_date_time`]) ?? new Date(Date.UTC(2023, 0, 1));
      const messages = (conv[k] as Turn[]).map((turn, i): IngestMessageInput => {
        known.add(turn.dia_id);
        const caption = turn.blip_caption ? ` [shares an image: ${turn.blip_caption}]` : "";
        return {
          id: `${userId}/${turn.dia_id}`,
          role: turn.speaker === conv.speaker_a ? "user" : "assistant",
          name: turn.speaker,
          content: `${turn.text}${caption}`,
          createdAt: new Date(start.getTime() + i * 30_000).toISOString(),
        };
      });
      return { id: `${userId}-s${n}`, messages };
    });
    return { id, userId, owner: merge ? "locomo-merged-bench" : userId, sessions, known, qa: (conv.qa ?? []) as QA[] };
  });
}

async function ingest(strata: Strata, convs: Conversation[]): Promise<{ messages: number; seconds: number }> {
  const t0 = performance.now();
  let messages = 0;
  for (const c of convs) {
    for (const s of c.sessions) {
      for (let i = 0; i < s.messages.length; i += 100) {
        await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: s.id, userId: c.owner, messages: s.messages.slice(i, i + 100) });
      }
      messages += s.messages.length;
    }
  }
  // As the eval does: wait until no derived work is pending.
  for (;;) {
    await strata.idle();
    const stats = await strata.deps.archive.queueStats(DEFAULT_TENANT);
    if (stats.pending === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { messages, seconds: (performance.now() - t0) / 1000 };
}

interface Row {
  conv: string;
  category: number;
  recall: Record<number, number>;
  ndcg10: number;
  rr: number;
}

function score(conv: string, category: number, evidence: string[], rankedIds: string[], userId: string): Row {
  const prefix = `${userId}/`;
  const seen = new Set<string>();
  const ranked: string[] = [];
  for (const raw of rankedIds) {
    const id = raw.startsWith(prefix) ? raw.slice(prefix.length) : null;
    if (id && !seen.has(id)) {
      seen.add(id);
      ranked.push(id);
    }
  }
  const ev = new Set(evidence);
  const recall = Object.fromEntries(KS.map((k) => [k, ranked.slice(0, k).filter((id) => ev.has(id)).length / ev.size]));
  let dcg = 0;
  ranked.slice(0, 10).forEach((id, i) => (dcg += ev.has(id) ? 1 / Math.log2(i + 2) : 0));
  let idcg = 0;
  for (let i = 0; i < Math.min(ev.size, 10); i++) idcg += 1 / Math.log2(i + 2);
  const first = ranked.findIndex((id) => ev.has(id));
  return { conv, category, recall, ndcg10: dcg / idcg, rr: first < 0 ? 0 : 1 / (first + 1) };
}

interface Summary {
  n: number;
  r: Record<number, number>;
  ndcg10: number;
  mrr: number;
}

function summarise(rows: Row[]): Summary {
  const mean = (f: (r: Row) => number) => (rows.length ? (100 * rows.reduce((s, r) => s + f(r), 0)) / rows.length : NaN);
  return { n: rows.length, r: Object.fromEntries(KS.map((k) => [k, mean((r) => r.recall[k]!)])), ndcg10: mean((r) => r.ndcg10), mrr: mean((r) => r.rr) };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

function slices<T extends { category: number }>(rows: T[]): [string, T[]][] {
  return [
    ["overall", rows],
    ["overall-no-adv", rows.filter((r) => r.category !== 5)],
    ...Object.entries(CATS).map(([c, name]) => [name, rows.filter((r) => r.category === Number(c))] as [string, T[]]),
  ];
}

function printSearchTable(title: string, rows: Row[]): Record<string, Summary> {
  console.log(`\n${title}`);
  console.log(["slice", "n", ...KS.map((k) => `R@${k}`), "NDCG@10", "MRR"].join("\t"));
  const out: Record<string, Summary> = {};
  for (const [name, part] of slices(rows)) {
    const s = summarise(part);
    out[name] = s;
    console.log([name, s.n, ...KS.map((k) => fmt(s.r[k]!)), fmt(s.ndcg10), fmt(s.mrr)].join("\t"));
  }
  return out;
}

async function runSearch(strata: Strata, convs: Conversation[], variant: Variant) {
  const config: SearchConfig = { ...DEFAULT_SEARCH_CONFIG, ...variant.search };
  const per: Record<string, Row[]> = { fused: [], keyword: [], vector: [], graph: [] };
  const ms: number[] = [];
  const dump: unknown[] = [];
  for (const c of convs) {
    const strip = (id: string) => (id.startsWith(`${c.userId}/`) ? id.slice(c.userId.length + 1) : id);
    for (const qa of c.qa) {
      const evidence = normaliseEvidence(qa.evidence).filter((id) => c.known.has(id));
      if (!evidence.length) continue;
      const t0 = performance.now();
      const out = await hybridSearch(strata.deps, { tenantId: DEFAULT_TENANT, userId: c.owner, query: qa.question, limit: LIMIT, explain: true }, config);
      ms.push(performance.now() - t0);
      per.fused!.push(score(c.id, qa.category, evidence, out.hits.map((h) => h.message.id), c.userId));
      if (dumpOut) {
        dump.push({
          conv: c.id, category: qa.category, question: qa.question, evidence,
          fused: out.hits.map((h) => strip(h.message.id)),
          ...Object.fromEntries(Object.entries(out.rankings ?? {}).map(([k, v]) => [k, v.map((r) => [strip(r.id), r.score])])),
        });
      }
      for (const name of ["keyword", "vector", "graph"] as const) {
        const list = (out.rankings?.[name] ?? []).slice(0, LIMIT).map((r) => r.id);
        per[name]!.push(score(c.id, qa.category, evidence, list, c.userId));
      }
    }
  }
  if (dumpOut) writeFileSync(dumpOut, JSON.stringify(dump));
  const sorted = [...ms].sort((a, b) => a - b);
  const latency = { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  console.log(`\n=== variant ${variant.name} (search): ${variant.description}`);
  console.log(`search latency p50 ${fmt(latency.p50)} ms, p95 ${fmt(latency.p95)} ms, p99 ${fmt(latency.p99)} ms`);
  const fused = printSearchTable("fused (hybridSearch, limit 50)", per.fused!);
  const retrievers: Record<string, Summary> = {};
  console.log("\nper retriever (its own ranking, top 50), overall and by category R@10:");
  console.log(["retriever", "R@10", "R@50", "NDCG@10", ...Object.values(CATS).map((c) => `${c} R@10`)].join("\t"));
  for (const name of ["keyword", "vector", "graph", "fused"]) {
    const rows = per[name]!;
    const s = summarise(rows);
    retrievers[name] = s;
    const cats = Object.keys(CATS).map((c) => fmt(summarise(rows.filter((r) => r.category === Number(c))).r[10]!));
    console.log([name, fmt(s.r[10]!), fmt(s.r[50]!), fmt(s.ndcg10), ...cats].join("\t"));
  }
  const byConv: Record<string, Summary> = {};
  console.log("\nper conversation (fused): " + convs.map((c) => {
    const s = summarise(per.fused!.filter((r) => r.conv === c.id));
    byConv[c.id] = s;
    return `${c.id} R@10 ${fmt(s.r[10]!)} R@50 ${fmt(s.r[50]!)} NDCG ${fmt(s.ndcg10)}`;
  }).join(" | "));
  if (perConv) for (const c of convs) printSearchTable(`conversation ${c.id}`, per.fused!.filter((r) => r.conv === c.id));
  console.log(`locomo[${variant.name}] R@10=${fmt(fused.overall!.r[10]!)} R@50=${fmt(fused.overall!.r[50]!)} NDCG@10=${fmt(fused.overall!.ndcg10)} ` +
    Object.values(CATS).map((c) => `${c}=${fmt(fused[c]!.r[10]!)}/${fmt(fused[c]!.r[50]!)}/${fmt(fused[c]!.ndcg10)}`).join(" "));
  return { latency, fused, retrievers, byConv };
}

async function runContext(strata: Strata, convs: Conversation[], variant: Variant) {
  const search: SearchConfig = { ...DEFAULT_SEARCH_CONFIG, ...variant.search };
  const config: ContextConfig = { ...DEFAULT_CONTEXT_CONFIG, ...variant.context, search };
  const rows: { conv: string; category: number; inContext: number; over: boolean }[] = [];
  const ms: number[] = [];
  const parts = { tokens: 0, recent: 0, recentTokens: 0, recalled: 0, recalledTokens: 0, facts: 0, memories: 0 };
  for (const c of convs) {
    const last = c.sessions[c.sessions.length - 1]!.id;
    const prefix = `${c.userId}/`;
    for (const qa of c.qa) {
      const evidence = normaliseEvidence(qa.evidence).filter((id) => c.known.has(id));
      if (!evidence.length) continue;
      const t0 = performance.now();
      const ctx = await assembleContext(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: last, userId: c.owner, query: qa.question, budget: BUDGET }, config);
      ms.push(performance.now() - t0);
      parts.tokens += ctx.tokens;
      parts.recent += ctx.recent.length;
      parts.recentTokens += ctx.recent.reduce((n, m) => n + m.tokens, 0);
      parts.recalled += ctx.recalled.length;
      parts.recalledTokens += ctx.recalled.reduce((n, m) => n + m.tokens, 0);
      parts.facts += ctx.facts.length;
      parts.memories += ctx.memories.length;
      const ids = new Set([...ctx.recent, ...ctx.recalled].map((m) => (m.id.startsWith(prefix) ? m.id.slice(prefix.length) : m.id)));
      rows.push({ conv: c.id, category: qa.category, inContext: evidence.filter((e) => ids.has(e)).length / evidence.length, over: !(ctx.tokens <= BUDGET) });
    }
  }
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(`\n=== variant ${variant.name} (context, budget ${BUDGET}): p50 ${fmt(percentile(sorted, 50))} ms, p95 ${fmt(percentile(sorted, 95))} ms`);
  const per = (x: number) => fmt(x / rows.length);
  console.log(`mean per call: prompt ${per(parts.tokens)} tokens; recent ${per(parts.recent)} turns (${per(parts.recentTokens)} content tokens); recalled ${per(parts.recalled)} turns (${per(parts.recalledTokens)} content tokens); facts ${per(parts.facts)}; memories ${per(parts.memories)}`);
  console.log(["slice", "n", "in-context", "over-budget"].join("\t"));
  const out: Record<string, number> = {};
  for (const [name, part] of slices(rows)) {
    const inCtx = part.length ? (100 * part.reduce((s, r) => s + r.inContext, 0)) / part.length : NaN;
    const over = part.length ? (100 * part.filter((r) => r.over).length) / part.length : NaN;
    out[name] = inCtx;
    console.log([name, part.length, fmt(inCtx), fmt(over)].join("\t"));
  }
  console.log("per conversation: " + convs.map((c) => {
    const part = rows.filter((r) => r.conv === c.id);
    return `${c.id} ${fmt((100 * part.reduce((s, r) => s + r.inContext, 0)) / part.length)}`;
  }).join(" | "));
  console.log(`locomo-context[${variant.name}] in-context=${fmt(out.overall!)} ` + Object.values(CATS).map((c) => `${c}=${fmt(out[c]!)}`).join(" "));
  return { inContext: out, latency: { p50: percentile(sorted, 50), p95: percentile(sorted, 95) } };
}

const names = variantArg === "all" ? Object.keys(VARIANTS) : variantArg.split(",");
for (const n of names) if (!VARIANTS[n]) benchUsageError(import.meta.url, `unknown variant "${n}"; known: ${Object.keys(VARIANTS).join(", ")}`);

const convs = loadConversations();
// The embedded server's own wiring (what `npm start` runs), in memory, with the same environment-free config.
const strata = await createStrata(loadConfig({}, { dataDir: "memory://", logLevel: "silent", workers: true }));
try {
  const ing = await ingest(strata, convs);
  console.log(`conversations ${convs.map((c) => c.id).join(", ")}; ${ing.messages} messages ingested and derived in ${fmt(ing.seconds)} s`);
  const report: Record<string, unknown> = {};
  for (const n of names) {
    const variant = VARIANTS[n]!;
    // One warm-up pass per user, so lazily built per-user structures are not timed as search
    // (the first variant's pass is the cold load: the keyword index reading a user's turns).
    const cold: string[] = [];
    for (const c of convs) {
      const t0 = performance.now();
      await hybridSearch(strata.deps, { tenantId: DEFAULT_TENANT, userId: c.owner, query: "warm up", limit: 10 }, { ...DEFAULT_SEARCH_CONFIG, ...variant.search });
      cold.push(`${c.id} ${fmt(performance.now() - t0)} ms`);
    }
    if (n === names[0]) console.log(`first search per user (cold: loads the user's keyword corpus): ${cold.join(", ")}`);
    const entry: Record<string, unknown> = {};
    if (mode === "search" || mode === "both") entry.search = await runSearch(strata, convs, variant);
    if (mode === "context" || mode === "both") entry.context = await runContext(strata, convs, variant);
    report[n] = entry;
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 2));
} finally {
  await strata.close();
}
