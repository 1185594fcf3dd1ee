// Deterministic workload data for bench/peers.ts. Nothing here is copied from a data set:
// every message is assembled from the word lists below by a seeded PRNG, so a run on any
// machine feeds every system the same bytes.
//
// - "coding": a coding agent's working session: short user asks, assistant turns with
//   explanations and code blocks, and large tool results (file reads, test runs, grep hits,
//   stack traces, build logs). 738 of them come to about 2 MB.
// - "chat": the same kinds of turn, with tool output cut to a few lines, for the growth series
//   (100 … 100k messages of one user) so 100k messages stay near 40 MB instead of 270 MB.

import { mulberry32 } from "../../test/fixtures/random.ts";

export { mulberry32 };

export interface BenchMessage {
  id: string;
  role: "user" | "assistant" | "tool";
  name?: string;
  content: string;
  createdAt: string;
}


const MODULES = ["queue-worker", "ingest", "context", "billing", "auth-session", "rate-limiter", "search-index", "webhook-relay", "export-job", "tenant-config", "vector-store", "summary-cron", "mailer", "upload-handler", "cache-layer", "metrics", "scheduler", "graph-sync", "audit-log", "feature-flags"];
const FUNCS = ["retryWithBackoff", "parseHeaders", "loadTenant", "flushBatch", "encodeCursor", "decodeCursor", "mergeEntities", "renderPrompt", "validateInput", "openPool", "drainQueue", "computeDigest", "resolveAlias", "trimWindow", "scoreHits", "packBudget", "readConfig", "writeSnapshot", "acquireLock", "releaseLock", "normaliseEmail", "splitChunks", "hashKey", "pickShard"];
const ERRORS = ["TypeError: Cannot read properties of undefined (reading 'id')", "Error: connect ECONNREFUSED 127.0.0.1:5432", "AssertionError: expected 41 to equal 42", "RangeError: Maximum call stack size exceeded", "Error: deadlock detected", "SyntaxError: Unexpected token } in JSON at position 118", "Error: timeout of 5000ms exceeded", "Error: duplicate key value violates unique constraint \"messages_pkey\"", "TypeError: fetch failed", "Error: ENOENT: no such file or directory, open 'config/tenants.json'"];
const WORDS = ["the", "cursor", "batch", "tenant", "timeout", "retry", "window", "budget", "token", "index", "schema", "migration", "flaky", "test", "regression", "latency", "throughput", "pool", "connection", "deadline", "payload", "header", "webhook", "summary", "embedding", "vector", "shard", "lock", "snapshot", "queue", "backoff", "jitter", "checksum", "cache", "eviction", "fixture", "mock", "release", "deploy", "rollback", "config", "flag", "parser", "encoder", "stream", "buffer", "offset", "limit", "order", "filter", "join", "query", "plan", "vacuum", "trigger", "cron", "job", "worker", "handler", "route"];
const ASKS = [
  "Why does {f} in {m} fail on the second run?",
  "Can you make {m} retry with jitter instead of a fixed delay?",
  "The {m} tests are flaky again, look at {f}.",
  "Refactor {f} so it does not allocate per {w}.",
  "Add a test for {f} when the {w} is empty.",
  "What changed in {m} since the last release?",
  "Run the {m} suite and tell me what breaks.",
  "Is the {w} in {f} ever larger than the {w2}?",
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function sentence(r: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick(r, WORDS));
  const s = out.join(" ");
  return s[0]!.toUpperCase() + s.slice(1) + ".";
}

function codeBlock(r: () => number, lines: number): string {
  const f = pick(r, FUNCS);
  const out = ["```ts", `export async function ${f}(${pick(r, WORDS)}: ${pick(r, ["string", "number", "Buffer", "Tenant", "Batch"])}) {`];
  for (let i = 0; i < lines; i++) {
    const kind = r();
    if (kind < 0.3) out.push(`  const ${pick(r, WORDS)}${i} = await ${pick(r, FUNCS)}(${pick(r, WORDS)}, ${Math.floor(r() * 1000)});`);
    else if (kind < 0.5) out.push(`  if (!${pick(r, WORDS)}) throw new Error("${pick(r, WORDS)} ${pick(r, WORDS)} missing");`);
    else if (kind < 0.7) out.push(`  for (const ${pick(r, WORDS)} of ${pick(r, WORDS)}s) ${pick(r, FUNCS)}(${pick(r, WORDS)});`);
    else if (kind < 0.85) out.push(`  // ${sentence(r, 6 + Math.floor(r() * 8))}`);
    else out.push(`  return { ${pick(r, WORDS)}: ${pick(r, WORDS)}, ${pick(r, WORDS)}: ${Math.floor(r() * 100)} };`);
  }
  out.push("}", "```");
  return out.join("\n");
}

function toolOutput(r: () => number, bytes: number, at: number): { name: string; content: string } {
  const kind = pick(r, ["read_file", "run_tests", "grep", "build", "git_diff"]);
  const m = pick(r, MODULES);
  const lines: string[] = [];
  let size = 0;
  let i = 0;
  while (size < bytes) {
    let l: string;
    if (kind === "read_file") l = `${String(i + 1).padStart(4)}  ${codeBlock(r, 1).split("\n")[2]}`;
    else if (kind === "run_tests") l = r() < 0.1 ? `  ✗ ${m} > ${pick(r, FUNCS)} ${pick(r, WORDS)} (${Math.floor(r() * 900)} ms)\n    ${pick(r, ERRORS)}\n      at ${pick(r, FUNCS)} (src/${m}/${pick(r, WORDS)}.ts:${Math.floor(r() * 400)}:${Math.floor(r() * 40)})` : `  ✓ ${m} > ${pick(r, FUNCS)} handles ${pick(r, WORDS)} ${pick(r, WORDS)} (${Math.floor(r() * 90)} ms)`;
    else if (kind === "grep") l = `src/${pick(r, MODULES)}/${pick(r, WORDS)}.ts:${Math.floor(r() * 500)}:    ${pick(r, FUNCS)}(${pick(r, WORDS)}, ${pick(r, WORDS)});`;
    else if (kind === "build") l = `[${new Date(at + i * 37).toISOString()}] ${pick(r, ["info", "info", "warn", "debug"])} ${m}: ${sentence(r, 5 + Math.floor(r() * 6))}`;
    else l = `${pick(r, ["+", "-", " "])} ${codeBlock(r, 1).split("\n")[2]}`;
    lines.push(l);
    size += l.length + 1;
    i++;
  }
  return { name: kind, content: `$ ${kind} ${m}\n${lines.join("\n")}` };
}

/** Messages of one user, `sessionSize` per session, ids `${prefix}-${n}`, 20 s apart from 2026-01-05. */
export function generateMessages(options: { seed: number; count: number; profile: "coding" | "chat"; prefix: string; start?: number }): BenchMessage[] {
  const r = mulberry32(options.seed);
  const t0 = Date.UTC(2026, 0, 5, 9, 0, 0);
  const out: BenchMessage[] = [];
  const toolBytes = options.profile === "coding" ? () => 1_800 + Math.floor(r() * r() * 15_000) : () => 150 + Math.floor(r() * 450);
  const codeLines = options.profile === "coding" ? () => 4 + Math.floor(r() * 22) : () => Math.floor(r() * 4);
  let phase = 0; // 0 user, then assistant / tool alternation until the next ask
  for (let n = (options.start ?? 0); out.length < options.count; n++) {
    const at = t0 + n * 20_000;
    const createdAt = new Date(at).toISOString();
    const id = `${options.prefix}-${n}`;
    if (phase === 0) {
      const ask = pick(r, ASKS).replace("{f}", pick(r, FUNCS)).replace("{m}", pick(r, MODULES)).replace("{w}", pick(r, WORDS)).replace("{w2}", pick(r, WORDS));
      out.push({ id, role: "user", name: "dev", content: r() < 0.5 ? ask : `${ask} ${sentence(r, 8 + Math.floor(r() * 20))}`, createdAt });
      phase = 1;
    } else if (phase % 2 === 1) {
      const parts = [sentence(r, 10 + Math.floor(r() * 30))];
      const lines = codeLines();
      if (lines) parts.push(codeBlock(r, lines));
      if (r() < 0.5) parts.push(`${sentence(r, 6 + Math.floor(r() * 12))} See ${pick(r, FUNCS)} in src/${pick(r, MODULES)}.`);
      out.push({ id, role: "assistant", content: parts.join("\n\n"), createdAt });
      phase = r() < 0.25 ? 0 : phase + 1;
    } else {
      const t = toolOutput(r, toolBytes(), at);
      out.push({ id, role: "tool", name: t.name, content: t.content, createdAt });
      phase = phase + 1;
    }
  }
  return out;
}

/** Queries for context and search calls, the same sequence for every system. */
export function generateQueries(seed: number, count: number): string[] {
  const r = mulberry32(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const kind = r();
    if (kind < 0.4) out.push(`why does ${pick(r, FUNCS)} in ${pick(r, MODULES)} time out`);
    else if (kind < 0.7) out.push(`${pick(r, ERRORS).split(":")[0]} in ${pick(r, MODULES)} ${pick(r, WORDS)}`);
    else out.push(`what did we decide about the ${pick(r, WORDS)} ${pick(r, WORDS)} of ${pick(r, MODULES)}`);
  }
  return out;
}

/** The 738-message coding session of workload 1. */
export function rehydrationSession(): BenchMessage[] {
  return generateMessages({ seed: 738, count: 738, profile: "coding", prefix: "rh" });
}
