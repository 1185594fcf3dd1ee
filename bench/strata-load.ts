// Strata-only load test over HTTP (issue 8): starts a Strata server as a child process
// (embedded: `strata serve` on a fresh data directory; managed: `strata serve` on a fresh
// database, with the managed services' counterparts each in a process of its own as
// bench/peers.ts starts them, or `--stand-ins shared` with Upstash, Neon and SQS in one, or
// `--stand-ins dev-cloud` as `npm run dev:cloud` runs them: in the server's parent process,
// whose CPU is then counted as the server's) and drives it with concurrent clients, printing
// median / p95 / p99 latency and throughput for each phase:
//
//   ingest-single  single-message POSTs by N clients, each into its own sessions
//   ingest-batch   POSTs of --batch messages by N clients; this builds the search user
//                  (--search-user messages over sessions of 50–400 turns)
//   workers        embed + extract throughput: messages over the time from the first batch
//                  until GET /v1/status says nothing is pending
//   search         POST /v1/search on the search user at 1, 8 and 32 concurrent clients
//   context        GET /v1/sessions/{id}/context (no query: the last user turn is the query)
//                  on a 738-turn ≈2 MB session of a user grown to each of --context-sizes
//   chat           a chat frontend's turns on a user of --chat-user messages: post the user's
//                  turn, ask for the context at once (timed), post the assistant's turn, wait
//                  --chat-pause ms (the model's time); --chat-turns of them, one client. The
//                  turn's derived work runs meanwhile, as it does for a real frontend
//   users          --users users of --users-size messages each, then --users-calls context
//                  calls, one client, each for a user drawn with Zipf weights (the k-th user
//                  1/k as often as the first), as a service's traffic comes from many users at
//                  once; prints the server's resident memory then and at its peak (VmHWM).
//                  With --node-options=--max-old-space-size=N, under a small Lambda function's
//                  heap
//
// Data is generated from a seed (realistic chat and coding-agent turns of varied length), so
// two runs send the same bytes. Each phase also prints the whole machine's busy CPU a request
// (/proc/stat) and its parts: the server, the counterparts' processes, this client (the load's
// own), and the rest (PostgreSQL, Redis, anything else): on two shared cores, whether a phase
// was bound by the server or by the machine. `--cpu-prof` runs the server under `node --cpu-prof` and
// writes .cpuprofile files to --prof-dir (bench/cpuprofile-top.ts summarises them).
//
//   node_modules/.bin/node bench/strata-load.ts [--wiring embedded|managed] [--stand-ins apart|shared|dev-cloud] [--port 8841]
//     [--phases ingest-single,ingest-batch,search,context] [--clients 8] [--single 2000]
//     [--batch 100] [--search-user 10000] [--search-requests 600] [--context-sizes 1000,10000]
//     [--context-requests 100] [--chat-user 1000] [--chat-turns 200] [--chat-pause 100]
//     [--users 40] [--users-size 2000] [--users-calls 400]
//     [--cpu-prof] [--prof-dir DIR] [--node-options=--flag=value] [--seed 42] [--url URL]

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "./peers/data.ts";
import { benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { startStandInProcs, type StandInProcs } from "./peers/stand-in-procs.ts";
import { machineCpuMs, procMemory, procStat } from "./proc-stat.ts";
import { noteTimings } from "./stats.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  // Read only when run as a script; another script may import the generators below.
  args: import.meta.url === `file://${process.argv[1]}` ? process.argv.slice(2) : [],
  options: {
    wiring: { type: "string", default: "embedded" },
    "stand-ins": { type: "string", default: "apart" },
    port: { type: "string", default: "8841" },
    url: { type: "string" },
    phases: { type: "string", default: "ingest-single,ingest-batch,search,context" },
    clients: { type: "string", default: "8" },
    single: { type: "string", default: "2000" },
    batch: { type: "string", default: "100" },
    "search-user": { type: "string", default: "10000" },
    "search-requests": { type: "string", default: "600" },
    "search-concurrency": { type: "string", default: "1,8,32" },
    "context-sizes": { type: "string", default: "1000,10000" },
    "context-requests": { type: "string", default: "100" },
    "chat-user": { type: "string", default: "1000" },
    "chat-turns": { type: "string", default: "200" },
    "chat-pause": { type: "string", default: "100" },
    users: { type: "string", default: "40" },
    "users-size": { type: "string", default: "2000" },
    "users-calls": { type: "string", default: "400" },
    "cpu-prof": { type: "boolean", default: false },
    "prof-dir": { type: "string", default: "/tmp/strata-prof" },
    seed: { type: "string", default: "42" },
    // "off": the server runs without its job consumer (STRATA_WORKERS=off), which measures the
    // acknowledged-write path alone; phases then do not wait for derived work.
    workers: { type: "string", default: "on" },
    database: { type: "string" },
    // Another checkout to serve from (e.g. the commit before a change), to compare in one session.
    "server-dir": { type: "string", default: "." },
    // The server's NODE_OPTIONS, e.g. --max-old-space-size=921 for the heap a 1,024 MB Lambda
    // function's Node is given.
    "node-options": { type: "string" },
  },
});

// The chat phase's counts, checked before a server starts.
for (const [flag, least] of [["chat-user", 0], ["chat-turns", 1], ["chat-pause", 0], ["users", 1], ["users-size", 1], ["users-calls", 1]] as const) wholeNumber(import.meta.url, `--${flag}`, opts[flag], least);

if (!["embedded", "managed"].includes(opts.wiring!)) benchUsageError(import.meta.url, `--wiring must be embedded or managed, got ${opts.wiring}`);
if (!["apart", "shared", "dev-cloud"].includes(opts["stand-ins"]!)) benchUsageError(import.meta.url, `--stand-ins must be apart, shared or dev-cloud, got ${opts["stand-ins"]}`);

const phases = new Set(opts.phases!.split(","));
const clients = Number(opts.clients);
const seed = Number(opts.seed);

// ---------------------------------------------------------------------------------------
// Deterministic data: mulberry32 (bench/peers/data.ts), and turns assembled from pieces of coding-agent and
// everyday chat, of varied length (one line to a pasted stack trace or code block).

export const rng = mulberry32;

export const NAMES = ["Ann", "Bilal", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hiro", "Ines", "Jonas"];
const PLACES = ["Lisbon", "Kyoto", "Nairobi", "Oslo", "Lake Tahoe", "Montreal", "Cape Town", "Hanoi"];
const TECH = ["Postgres", "Redis", "the Lambda handler", "the webhook", "the React form", "the CI pipeline", "the Terraform module", "the SQS consumer", "the auth middleware", "the rate limiter", "the billing cron", "the search index", "Kafka", "the GraphQL resolver", "the Docker image"];
const PROBLEMS = ["times out after 30 seconds", "returns a 502 under load", "leaks memory on every reconnect", "deadlocks when two writers race", "drops the last message of a batch", "double-charges on retry", "fails the migration on an empty table", "logs the API key in plain text", "is slow on cold start", "rejects valid UTF-8 names"];
const VERBS = ["refactor", "profile", "add a test for", "roll back", "instrument", "document", "cache", "rewrite", "paginate", "shard"];
const DAILY = ["booked flights to", "is learning the cello and practising before", "adopted a rescue dog named Biscuit after moving to", "ran a half marathon in", "started a pottery class near", "is planning a birthday dinner in", "lost their passport on the way to", "found a great ramen place in"];
const FOODS = ["peanuts", "shellfish", "gluten", "dairy", "sesame"];

export function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)]!;
}

function codeBlock(r: () => number): string {
  const fn = pick(r, ["handleBatch", "retryWithBackoff", "parseEvent", "mergeWindow", "claimJobs", "renderPrompt"]);
  const lines = [`\`\`\`ts`, `export async function ${fn}(input: Input): Promise<Output> {`];
  const n = 3 + Math.floor(r() * 25);
  for (let i = 0; i < n; i++) {
    lines.push(`  const v${i} = await step${i}(input.${pick(r, ["id", "items", "cursor", "tenantId", "payload"])}, { timeoutMs: ${Math.floor(r() * 5000)} });`);
  }
  lines.push("  return { ok: true };", "}", "```");
  return lines.join("\n");
}

function stackTrace(r: () => number): string {
  const lines = [`Error: ${pick(r, TECH)} ${pick(r, PROBLEMS)}`];
  const n = 4 + Math.floor(r() * 12);
  for (let i = 0; i < n; i++) lines.push(`    at ${pick(r, ["Object", "Runner", "Pool", "Client"])}.${pick(r, ["query", "send", "flush", "next", "run"])} (/app/src/${pick(r, ["db", "queue", "http", "jobs"])}/${pick(r, ["index", "pool", "worker", "retry"])}.ts:${10 + Math.floor(r() * 400)}:${1 + Math.floor(r() * 40)})`);
  return lines.join("\n");
}

/** One turn: role alternates user/assistant; user turns mostly ask, assistant turns answer at length. */
export function turn(r: () => number, i: number, speaker: string): { role: "user" | "assistant"; name?: string; content: string } {
  const user = i % 2 === 0;
  const x = r();
  if (user) {
    let content: string;
    if (x < 0.35) content = `Can you ${pick(r, VERBS)} ${pick(r, TECH)}? It ${pick(r, PROBLEMS)} since the deploy on ${1 + Math.floor(r() * 28)} ${pick(r, ["May", "June", "July", "August"])}.`;
    else if (x < 0.55) content = `Here is the trace:\n${stackTrace(r)}\nWhat do you think is going on?`;
    else if (x < 0.75) content = `By the way, ${pick(r, NAMES)} ${pick(r, DAILY)} ${pick(r, PLACES)}, and is allergic to ${pick(r, FOODS)}.`;
    else if (x < 0.9) content = `How many retries did we configure for ${pick(r, TECH)} last week?`;
    else content = `ok`;
    return { role: "user", name: speaker, content };
  }
  let content: string;
  if (x < 0.3) content = `Looking at ${pick(r, TECH)}: it ${pick(r, PROBLEMS)} because the pool is exhausted. I would ${pick(r, VERBS)} it like this:\n${codeBlock(r)}\nThen re-run the load test and compare p99.`;
  else if (x < 0.6) {
    const parts: string[] = [];
    const n = 2 + Math.floor(r() * 10);
    for (let k = 0; k < n; k++) parts.push(`${k + 1}. ${pick(r, VERBS)} ${pick(r, TECH)}, which ${pick(r, PROBLEMS)}; measure before and after with ${Math.floor(r() * 64) + 1} workers.`);
    content = `A plan:\n${parts.join("\n")}`;
  } else if (x < 0.85) content = `Noted: ${pick(r, NAMES)} ${pick(r, DAILY)} ${pick(r, PLACES)}. I'll remember to avoid ${pick(r, FOODS)} when suggesting restaurants.`;
  else content = `We configured ${Math.floor(r() * 10)} retries with a ${Math.floor(r() * 900) + 100} ms backoff for ${pick(r, TECH)}.`;
  return { role: "assistant", content };
}

export function messagesFor(r: () => number, prefix: string, start: number, count: number, speaker: string, day0: number) {
  const out = [];
  for (let i = start; i < start + count; i++) {
    const t = turn(r, i, speaker);
    out.push({ id: `${prefix}-${i}`, ...t, createdAt: new Date(day0 + i * 60_000).toISOString() });
  }
  return out;
}

/** Search queries of the kind an agent sends: a user turn's question, or a few words of topic. */
export function queryFor(r: () => number): string {
  const x = r();
  if (x < 0.4) return `why does ${pick(r, TECH)} ${pick(r, PROBLEMS).split(" ").slice(0, 3).join(" ")}`;
  if (x < 0.7) return `where did ${pick(r, NAMES)} travel and what are they allergic to`;
  if (x < 0.85) return `how many retries for ${pick(r, TECH)}`;
  return `${pick(r, VERBS)} ${pick(r, TECH)} in ${pick(r, ["May", "June", "July"])}`;
}

// ---------------------------------------------------------------------------------------
// Statistics and HTTP.

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

// CPU seconds used by the server process and its descendants (Linux /proc), so a phase
// can report server CPU per item: a figure the other load on a shared machine moves far
// less than latency or throughput.
let serverPid: number | null = null;
function treeCpuMs(): number {
  if (serverPid === null) return NaN;
  const stats = new Map<number, { ppid: number; cpuMs: number }>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d)); // null: exited meanwhile
    if (st) stats.set(Number(d), st);
  }
  let ms = 0;
  const todo = [serverPid];
  while (todo.length) {
    const pid = todo.pop()!;
    ms += stats.get(pid)?.cpuMs ?? 0;
    for (const [child, st] of stats) if (st.ppid === pid) todo.push(child);
  }
  return ms;
}

/** The counterparts' processes (managed wiring, apart or shared), whose CPU a phase reports beside the server's. */
let counterpartPids: number[] = [];
function counterpartsCpuMs(): number {
  let ms = 0;
  for (const pid of counterpartPids) ms += procStat(pid)?.cpuMs ?? 0;
  return ms;
}

/** This process' own CPU so far (the load's clients), in ms. */
function clientCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * CPU over a phase, in ms: the server's tree, the counterparts' processes, this client, and
 * the whole machine (which also holds PostgreSQL's and Redis' processes, and anything else
 * running). On two cores they all share, the server's figure alone does not say whether a
 * phase was bound by the machine.
 */
interface PhaseCpu {
  server: number;
  counterparts: number;
  client: number;
  machine: number;
}
function cpuNow(): PhaseCpu {
  return { server: treeCpuMs(), counterparts: counterpartsCpuMs(), client: clientCpuMs(), machine: machineCpuMs() };
}
function cpuSince(c0: PhaseCpu): PhaseCpu {
  const c1 = cpuNow();
  return { server: c1.server - c0.server, counterparts: c1.counterparts - c0.counterparts, client: c1.client - c0.client, machine: c1.machine - c0.machine };
}

interface Row {
  cpuPerItem?: number;
  /** The whole machine's busy CPU a request's item, and the cores it kept busy on average. */
  machinePerItem?: number;
  coresBusy?: number;
  phase: string;
  requests: number;
  items: number;
  seconds: number;
  p50: number;
  p95: number;
  p99: number;
}
const rows: Row[] = [];

function report(phase: string, latencies: number[], items: number, seconds: number, cpu: PhaseCpu): Row {
  const s = [...latencies].sort((a, b) => a - b);
  const row: Row = {
    phase,
    requests: s.length,
    items,
    seconds,
    p50: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    cpuPerItem: cpu.server / items,
    machinePerItem: cpu.machine / items,
    coresBusy: cpu.machine / 1000 / seconds,
  };
  rows.push(row);
  const per = (ms: number) => (ms / items).toFixed(2);
  const others = counterpartPids.length ? `, counterparts ${per(cpu.counterparts)}` : "";
  process.stdout.write(
    `${phase.padEnd(34)} req ${String(row.requests).padStart(6)}  ${(items / seconds).toFixed(1).padStart(9)} items/s  ${(row.requests / seconds).toFixed(1).padStart(8)} req/s  p50 ${row.p50.toFixed(2)} ms  p95 ${row.p95.toFixed(2)} ms  p99 ${row.p99.toFixed(2)} ms  server cpu ${row.cpuPerItem!.toFixed(2)} ms/item\n` +
      `${"".padEnd(34)} machine cpu ${per(cpu.machine)} ms/item (${row.coresBusy!.toFixed(2)} cores busy): server ${per(cpu.server)}${others}, this client ${per(cpu.client)}, the rest ${per(cpu.machine - cpu.server - cpu.counterparts - cpu.client)}\n`,
  );
  return row;
}

let base = "";
// Prefixes every session and user id: the managed wiring's Redis is shared with other runs
// (dev:cloud always uses stage "dev"), and its keys are removed by this prefix at the end.
const tag = `load${Math.random().toString(36).slice(2, 8)}-`;
/** Requests that failed (connection errors), reported with the figures. */
let failures = 0;
/** Requests sent a second time after a connection error. */
let retries = 0;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; ms: number }> {
  const t0 = performance.now();
  const send = () =>
    fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
  let res: Response;
  try {
    res = await send();
  } catch {
    // A keep-alive socket the server closed as it was reused: send again, once. Every request
    // here may be repeated (ingests carry message ids, so a repeat is a no-op).
    retries++;
    res = await send();
  }
  const text = await res.text();
  const ms = performance.now() - t0;
  return { status: res.status, json: text ? JSON.parse(text) : null, ms };
}

/** The per-tier timings an answer reports (its `timings`), if it is an object that has them. */
function timingsOf(answer: unknown): Record<string, unknown> | undefined {
  return (answer as { timings?: Record<string, unknown> } | null)?.timings;
}

/** Prints each tier's median timing (this tool's own quantile, of the sorted timings). */
function printTimings(tiers: Map<string, number[]>): void {
  const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  process.stdout.write(`  timings (median ms): ${[...tiers].map(([k, xs]) => `${k} ${median(xs).toFixed(2)}`).join(", ")}\n`);
}

async function expectOk(method: string, path: string, body: unknown, status: number): Promise<number> {
  const r = await call(method, path, body);
  if (r.status !== status) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`);
  return r.ms;
}

/** Runs `tasks` over `concurrency` workers, each taking the next task; returns latencies and wall time. */
async function drive(concurrency: number, count: number, task: (i: number) => Promise<number>): Promise<{ latencies: number[]; seconds: number; cpu: PhaseCpu }> {
  const latencies: number[] = [];
  let next = 0;
  const c0 = cpuNow();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        try {
          latencies.push(await task(i));
        } catch (e) {
          // An overloaded server may drop connections: count it, and say so, instead of aborting the run.
          failures++;
          if (failures <= 3) process.stderr.write(`request failed: ${(e as Error).message} (${String((e as Error).cause ?? "")})\n`);
        }
      }
    }),
  );
  return { latencies, seconds: (performance.now() - t0) / 1000, cpu: cpuSince(c0) };
}

async function waitDrained(what = ""): Promise<void> {
  if (opts.workers === "off") return;
  let said = performance.now();
  for (;;) {
    const r = await call("GET", "/v1/status");
    const q = (r.json as { queue: { pending: number; failed: number } }).queue;
    if (q.failed > 0) throw new Error(`jobs failed: ${JSON.stringify(q)}`);
    if (q.pending === 0) return;
    if (what && performance.now() - said > 10_000) {
      said = performance.now();
      process.stdout.write(`${what}: ${q.pending} derived jobs pending\n`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

/**
 * Writes one user's history of `size` messages: sessions `${prefix}0`, `${prefix}1`, … of 200
 * turns, each dated a day before the last (from `day0`) and spoken with `speaker()`, 100 turns a
 * request, queued on `adds` and awaited whenever `clients` are in flight. The caller awaits what
 * is left in `adds`.
 */
async function writeHistory(adds: Promise<number>[], r: () => number, h: { prefix: string; userId: string; size: number; speaker: () => string; day0: number }): Promise<void> {
  for (let s = 0, have = 0; have < h.size; s++) {
    const len = Math.min(h.size - have, 200);
    const msgs = messagesFor(r, `${h.prefix}${s}`, 0, len, h.speaker(), h.day0 - (s + 1) * 86_400_000);
    for (let k = 0; k < len; k += 100) adds.push(expectOk("POST", `/v1/sessions/${tag}${h.prefix}${s}/messages`, { userId: h.userId, messages: msgs.slice(k, k + 100) }, 201));
    if (adds.length >= clients) await Promise.all(adds.splice(0));
    have += len;
  }
}

// ---------------------------------------------------------------------------------------
// The server under test.

async function startServer(): Promise<{ child: ChildProcess | null; stop(): Promise<void> }> {
  if (opts.url) {
    base = opts.url;
    return { child: null, async stop() {} };
  }
  const port = opts.port!;
  base = `http://127.0.0.1:${port}`;
  const nodeOptions = [opts["cpu-prof"] ? `--cpu-prof --cpu-prof-dir=${opts["prof-dir"]}` : "", opts["node-options"] ?? ""].filter(Boolean).join(" ");
  const node = process.execPath;
  let child: ChildProcess;
  let dataDir: string | null = null;
  let database: string | null = null;
  let standIns: StandInProcs | null = null;
  // The server (or dev:cloud, its parent) from --server-dir, with `env` beside the run's own settings.
  const start = (argv: string[], env: Record<string, string>) =>
    spawn(node, argv, {
      env: { ...process.env, ...env, STRATA_LOG_LEVEL: "warn", STRATA_WORKERS: opts.workers!, NODE_OPTIONS: nodeOptions },
      stdio: ["ignore", "pipe", "inherit"],
      cwd: opts["server-dir"],
    });
  if (opts.wiring === "managed") database = opts.database ?? `strata_load_${Math.random().toString(36).slice(2, 8)}`;
  if (database !== null && opts["stand-ins"] === "dev-cloud") {
    child = start(["test/stand-ins/dev-cloud.ts", "--port", port, "--database", database, "--fresh"], {});
    process.stdout.write(`managed wiring: database ${database}; the counterparts in the server's parent process (npm run dev:cloud), counted in its CPU\n`);
  } else if (database !== null) {
    const layout = opts["stand-ins"] as "apart" | "shared";
    standIns = await startStandInProcs({ layout, database, onExit: (name, code, tail) => process.stderr.write(`${name} exited (${code}): ${tail}\n`) });
    counterpartPids = standIns.pids;
    child = start(["bin/strata.mjs", "serve"], { ...standIns.env, PORT: port, HOST: "127.0.0.1" });
    process.stdout.write(
      `managed wiring: database ${database}; the counterparts ${layout === "apart" ? "each in a process of its own" : "in two processes (Pinecone; Upstash, Neon and SQS)"}, not counted in the server's CPU\n`,
    );
  } else {
    dataDir = mkdtempSync(join(tmpdir(), "strata-load-"));
    child = start(["bin/strata.mjs", "serve"], { PORT: port, STRATA_DATA_DIR: dataDir });
  }
  child.stdout!.resume();
  serverPid = child.pid ?? null;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      try {
        const r = await fetch(`${base}/v1/health`);
        if (r.ok) break;
      } catch {
        /* not up yet */
      }
      if (i > 600) throw new Error("server did not come up in 60 s");
      await new Promise((res) => setTimeout(res, 100));
    }
  } catch (e) {
    // Nothing left running behind the error: the server, and the counterparts started for it.
    child.kill("SIGKILL");
    await standIns?.stop();
    await dropDatabase();
    throw e;
  }
  return {
    child,
    async stop() {
      const exited = new Promise((res) => child.once("exit", res));
      child.kill("SIGINT");
      await exited;
      await standIns?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      if (opts.wiring === "managed") {
        spawnSync("sh", ["-c", `redis-cli --scan --pattern '*${tag}*' | xargs -r redis-cli del > /dev/null`]);
      }
      await dropDatabase();
    },
  };

  /** Drops the managed wiring's database, unless the caller named it (--database). */
  async function dropDatabase(): Promise<void> {
    if (!database || opts.database) return;
    const { default: pg } = await import("pg");
    const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
    await admin.connect();
    await admin.query(`drop database if exists "${database}" with (force)`);
    await admin.end();
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const server = await startServer();
  const day0 = Date.UTC(2026, 4, 1);
  try {
    const info = await call("GET", "/v1/health");
    process.stdout.write(`server ${base} (${opts.wiring}, ${opts["server-dir"]}); clients ${clients}; seed ${seed}\n${JSON.stringify(info.json)}\n`);

    if (phases.has("ingest-single")) {
      const n = Number(opts.single);
      const r = rng(seed + 1);
      const msgs = messagesFor(r, "single", 0, n, "Ann", day0);
      // Each client writes its own session: one session's writes serialise on its row lock.
      const c0 = treeCpuMs();
      const t0 = performance.now();
      const res = await drive(clients, n, (i) =>
        expectOk("POST", `/v1/sessions/${tag}single-${i % clients}/messages`, { userId: `${tag}load-single`, messages: [msgs[i]] }, 201),
      );
      report(`ingest single (${clients} clients)`, res.latencies, n, res.seconds, res.cpu);
      const backlog = (await call("GET", "/v1/status")).json as { queue: { pending: number } };
      await waitDrained();
      if (opts.workers !== "off") {
        // Each single-message write makes an embed and an extract job of one message.
        const seconds = (performance.now() - t0) / 1000;
        const cpu = treeCpuMs() - c0;
        process.stdout.write(
          `workers after single writes        ${(n / seconds).toFixed(1)} msg/s (${n} messages drained ${seconds.toFixed(1)} s after the first write; ${backlog.queue.pending} jobs pending when ingest ended; server cpu ${(cpu / n).toFixed(2)} ms/msg ingest + derived)\n`,
        );
        rows.push({ phase: "single writes + workers drained", requests: 0, items: n, seconds, p50: NaN, p95: NaN, p99: NaN, cpuPerItem: cpu / n });
      }
    }

    if (phases.has("ingest-batch")) {
      const total = Number(opts["search-user"]);
      const batch = Number(opts.batch);
      const r = rng(seed + 2);
      // Sessions of 50–400 turns, each sent in batches of `batch`.
      const requests: { session: string; messages: unknown[] }[] = [];
      let made = 0;
      for (let s = 0; made < total; s++) {
        const len = Math.min(total - made, 50 + Math.floor(r() * 350));
        const msgs = messagesFor(r, `u10k-s${s}`, 0, len, pick(r, NAMES), day0 + s * 86_400_000);
        for (let k = 0; k < msgs.length; k += batch) requests.push({ session: `u10k-s${s}`, messages: msgs.slice(k, k + batch) });
        made += len;
      }
      // A session's batches go in order by one client: interleave sessions across clients.
      const bySession = new Map<string, typeof requests>();
      for (const q of requests) (bySession.get(q.session) ?? bySession.set(q.session, []).get(q.session)!).push(q);
      const queues: (typeof requests)[] = Array.from({ length: clients }, () => []);
      [...bySession.values()].forEach((list, i) => queues[i % clients]!.push(...list));
      const latencies: number[] = [];
      const c0 = cpuNow();
      const t0 = performance.now();
      await Promise.all(
        queues.map(async (q) => {
          for (const req of q) latencies.push(await expectOk("POST", `/v1/sessions/${tag}${req.session}/messages`, { userId: `${tag}u10k`, messages: req.messages }, 201));
        }),
      );
      const ingestSeconds = (performance.now() - t0) / 1000;
      report(`ingest batch ${batch} (${clients} clients)`, latencies, total, ingestSeconds, cpuSince(c0));
      const backlog = (await call("GET", "/v1/status")).json as { queue: { pending: number } };
      await waitDrained();
      const workerSeconds = (performance.now() - t0) / 1000;
      const allCpu = treeCpuMs() - c0.server;
      process.stdout.write(
        `workers (embed + extract)          ${(total / workerSeconds).toFixed(1)} msg/s (${total} messages drained ${workerSeconds.toFixed(1)} s after the first batch; ${backlog.queue.pending} jobs pending when ingest ended; server cpu ${(allCpu / total).toFixed(2)} ms/msg ingest + derived)\n`,
      );
      rows.push({ phase: "ingest + workers drained", requests: 0, items: total, seconds: workerSeconds, p50: NaN, p95: NaN, p99: NaN, cpuPerItem: allCpu / total });
    }

    if (phases.has("search")) {
      const r = rng(seed + 3);
      const queries = Array.from({ length: 500 }, () => queryFor(r));
      const n = Number(opts["search-requests"]);
      // Warm-up: the first search of a user loads its in-process indexes.
      for (let i = 0; i < 20; i++) await expectOk("POST", "/v1/search", { userId: `${tag}u10k`, query: queries[i]!, limit: 10 }, 200);
      for (const c of opts["search-concurrency"]!.split(",").map(Number)) {
        const res = await drive(c, n, (i) => expectOk("POST", "/v1/search", { userId: `${tag}u10k`, query: queries[i % queries.length]!, limit: 10 }, 200));
        report(`search u10k (${c} clients)`, res.latencies, n, res.seconds, res.cpu);
      }
    }

    if (phases.has("context")) {
      const r = rng(seed + 4);
      const n = Number(opts["context-requests"]);
      // The long session: 738 turns of about 2.7 KB each (≈2 MB), like a long coding session.
      const long: { id: string; role: "user" | "assistant"; name?: string; content: string; createdAt: string }[] = [];
      let bytes = 0;
      for (let i = 0; i < 738; i++) {
        const t = turn(r, i, "Ann");
        let content = t.content;
        while (content.length < 1800 + Math.floor(r() * 1800)) content += "\n" + turn(r, i, "Ann").content;
        bytes += content.length;
        long.push({ id: `long-${i}`, ...t, content, createdAt: new Date(day0 + i * 60_000).toISOString() });
      }
      for (let k = 0; k < long.length; k += 100) await expectOk("POST", `/v1/sessions/${tag}long/messages`, { userId: `${tag}ctx`, messages: long.slice(k, k + 100) }, 201);
      let have = long.length;
      process.stdout.write(`context session: ${long.length} turns, ${(bytes / 1e6).toFixed(2)} MB\n`);
      for (const size of opts["context-sizes"]!.split(",").map(Number)) {
        // Grow the user to `size` messages with other sessions, then let the derived tiers catch up.
        const grow = rng(seed + 5 + size);
        let s = 0;
        const adds: Promise<number>[] = [];
        while (have < size) {
          const len = Math.min(size - have, 200);
          const msgs = messagesFor(grow, `ctx-${size}-s${s}`, 0, len, "Ann", day0 - (s + 1) * 86_400_000);
          adds.push(expectOk("POST", `/v1/sessions/${tag}ctx-${size}-s${s}/messages`, { userId: `${tag}ctx`, messages: msgs }, 201));
          if (adds.length >= clients) await Promise.all(adds.splice(0));
          have += len;
          s++;
        }
        await Promise.all(adds);
        await waitDrained();
        for (let i = 0; i < 10; i++) await expectOk("GET", `/v1/sessions/${tag}long/context?userId=${tag}ctx&budget=2000`, undefined, 200);
        // The per-tier timings each answer reports, to print their medians beside the latencies.
        const tiers = new Map<string, number[]>();
        const res = await drive(1, n, async () => {
          const r = await call("GET", `/v1/sessions/${tag}long/context?userId=${tag}ctx&budget=2000`);
          if (r.status !== 200) throw new Error(`context answered ${r.status}: ${JSON.stringify(r.json).slice(0, 300)}`);
          noteTimings(tiers, timingsOf(r.json));
          return r.ms;
        });
        report(`context long session, user ${have}`, res.latencies, n, res.seconds, res.cpu);
        printTimings(tiers);
      }
    }

    if (phases.has("chat")) {
      const r = rng(seed + 6);
      const size = Number(opts["chat-user"]);
      const turns = Number(opts["chat-turns"]);
      const pause = Number(opts["chat-pause"]);
      // The user's history, written and drained first.
      const adds: Promise<number>[] = [];
      await writeHistory(adds, r, { prefix: "chat-h", userId: `${tag}chat`, size, speaker: () => "Ann", day0 });
      await Promise.all(adds);
      await waitDrained();
      const convo = messagesFor(r, "chat-now", 0, 2 * (turns + 10), "Ann", day0);
      const session = `/v1/sessions/${tag}chat-now`;
      const context = `${session}/context?userId=${tag}chat&budget=2000`;
      const writes: number[] = [];
      const calls: number[] = [];
      const tiers = new Map<string, number[]>();
      const c0 = cpuNow();
      const t0 = performance.now();
      for (let i = 0; i < turns + 10; i++) {
        const warm = i < 10; // the first turns load the user's indexes: not timed
        const w = await expectOk("POST", `${session}/messages`, { userId: `${tag}chat`, messages: [convo[2 * i]] }, 201);
        const c = await call("GET", context);
        if (c.status !== 200) throw new Error(`context answered ${c.status}: ${JSON.stringify(c.json).slice(0, 300)}`);
        await expectOk("POST", `${session}/messages`, { userId: `${tag}chat`, messages: [convo[2 * i + 1]] }, 201);
        if (!warm) {
          writes.push(w);
          calls.push(c.ms);
          noteTimings(tiers, timingsOf(c.json));
        }
        if (pause > 0) await new Promise((res) => setTimeout(res, pause));
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = cpuSince(c0);
      report(`chat: write, user ${size}`, writes, turns, seconds, cpu);
      report(`chat: context after it, user ${size}`, calls, turns, seconds, cpu);
      printTimings(tiers);
    }

    if (phases.has("users")) {
      const r = rng(seed + 7);
      const users = Number(opts.users);
      const size = Number(opts["users-size"]);
      const calls = Number(opts["users-calls"]);
      const user = (u: number) => `${tag}many-${u}`;
      // Each user's history, `clients` requests in flight across users.
      const adds: Promise<number>[] = [];
      for (let u = 0; u < users; u++) {
        await writeHistory(adds, r, { prefix: `many-${u}-s`, userId: user(u), size, speaker: () => pick(r, NAMES), day0 });
        if ((u + 1) % 10 === 0 || u + 1 === users) process.stdout.write(`users: ${u + 1} of ${users} written (${size} messages each)\n`);
      }
      await Promise.all(adds);
      await waitDrained("users");
      // Zipf weights: the k-th user 1/k as often as the first.
      const weights = Array.from({ length: users }, (_, u) => 1 / (u + 1));
      const total = weights.reduce((a, b) => a + b, 0);
      const draw = () => {
        let x = r() * total;
        for (let u = 0; u < users; u++) if ((x -= weights[u]!) <= 0) return u;
        return users - 1;
      };
      const queries = Array.from({ length: 200 }, () => queryFor(r));
      const context = (u: number, i: number) =>
        expectOk("GET", `/v1/sessions/${tag}many-${u}-s0/context?userId=${user(u)}&budget=2000&query=${encodeURIComponent(queries[i % queries.length]!)}`, undefined, 200);
      // Untimed: every user once, so that the timed calls find what a long-running server holds.
      for (let u = 0; u < users; u++) await context(u, u);
      const picks = Array.from({ length: calls }, draw);
      const res = await drive(1, calls, (i) => context(picks[i]!, i));
      report(`context, ${users} users of ${size} (Zipf)`, res.latencies, calls, res.seconds, res.cpu);
      const mem = serverPid === null ? null : procMemory(serverPid);
      if (mem) process.stdout.write(`server memory after the calls: RSS ${mem.rssMb.toFixed(1)} MB, peak ${mem.peakMb.toFixed(1)} MB (VmHWM, since its start)\n`);
    }
  } finally {
    await server.stop();
  }
  if (failures) process.stdout.write(`\n${failures} requests failed (not counted in the latencies)\n`);
  if (retries) process.stdout.write(`\n${retries} requests were sent again after a connection error\n`);
  process.stdout.write("\n| phase | requests | items/s | req/s | p50 ms | p95 ms | p99 ms | server CPU ms/item | machine CPU ms/item (cores busy) |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const r of rows) {
    const f = (x: number) => (Number.isNaN(x) ? "–" : x.toFixed(2));
    process.stdout.write(`| ${r.phase} | ${r.requests || "–"} | ${(r.items / r.seconds).toFixed(1)} | ${r.requests ? (r.requests / r.seconds).toFixed(1) : "–"} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${f(r.cpuPerItem ?? NaN)} | ${r.machinePerItem === undefined ? "–" : `${f(r.machinePerItem)} (${f(r.coresBusy!)})`} |\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`strata-load: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
