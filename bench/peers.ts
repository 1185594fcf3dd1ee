// Strata against what users would pick instead (issue 8), side by side on this machine in
// one run. Every system under test runs in its own child process and is driven over loopback
// HTTP by the same client with the same concurrency; its peak RSS is read from
// /proc/<pid>/status (VmHWM), reset before each workload through /proc/<pid>/clear_refs.
//
//   npm run bench:peers -- [--workloads rehydrate,ingest,growth,search] [--sizes 100,1000,10000,100000]
//                          [--systems strata-embedded,...] [--quick] [--calls 300] [--port 8811] [--name peers]
//                          [--ingest-batched 10000] [--stand-ins apart|shared] [--strata-env NAME=VALUE ...]
//                          [--delay-ms 0] [--delay-procs one|each]
//
// Systems: strata-embedded (`strata serve`, PGlite), strata-managed (`strata serve` against
// the local counterparts of Upstash, Neon, SQS and Pinecone in bench/peers/stand-ins.ts, each
// in a process of its own; `--stand-ins shared` runs the first three in one, as before 2026-12-05),
// mastra-libsql, mastra-managed (Mastra on the same PostgreSQL and on a Pinecone stand-in of its
// own process, the managed wiring's counterpart), langchain-upstash, langchain-pg, naive-json,
// floor-local, floor-managed (bench/peers/*.ts say what each one does). Workloads:
//   rehydrate  a 738-message, ~2 MB coding-agent session; context call p50/p95/p99
//   ingest     acknowledged messages/s, one message per request (8 clients) and batches of
//              100 (4 clients); worker throughput = messages / time until the queue is empty
//   growth     one user's history at each size; context call latency at each, and again with
//              a turn written (acknowledged, untimed) before each call, as a chatting user's
//              frontend posts the turn and then asks for the context. Timed once the derived
//              work drained and no vector index is being built (GET /v1/status); and at
//              each size from 1k, side by side in the same server with a second user of 1k
//              messages written before the growth (one query to both, the order alternating)
//   search     1, 8 and 32 concurrent clients on the growth user at 10k messages (400, 2,000
//              and 3,200 searches after 20 untimed ones, a level stopped after 20 s), once the
//              growth step's derived work drained
// --delay-ms D puts a network delay of D ms each way (bench/peers/delay-proxy.ts, a process of
// its own) in front of every service a system reaches over the network: PostgreSQL and Redis
// for the peers and floors, and each managed counterpart (the Neon proxy, the Upstash bridge,
// SQS, Pinecone) for Strata's managed wiring and the rest; the counterparts' own connections to
// PostgreSQL and Redis stay direct, as a managed service's are inside it. On loopback a round
// trip costs tens of microseconds, in a deployment a millisecond or more: the default, 0, adds
// nothing and starts no proxy. strata-embedded, mastra-libsql and naive-json reach nothing over
// the network and are not affected. `--delay-procs each` gives every service its own proxy
// process; by default (`one`) the services reached from one setting share one (the managed
// counterparts one, PostgreSQL and Redis another, Mastra's Pinecone a third), so a call's
// parallel reads of several services queue in one process, as on a network they would not.
// Every server runs with the Node options of package.json's start script (as `npm start`
// starts Strata), peers included. Writes bench/results/<date>-<name>.json, .md (tables and
// target verdicts) and SVG charts.
// Needs redis-server on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres).

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { Redis as IoRedis } from "ioredis";
import pg from "pg";
import { generateMessages, generateQueries, rehydrationSession, type BenchMessage } from "./peers/data.ts";
import { barChart, lineChart } from "./peers/svg.ts";
import { startNodeFlags } from "./start-script.ts";
import { startStandInProcs, stopChild, type StandInProcs } from "./peers/stand-in-procs.ts";
import { benchUsageError, parseBenchArgs } from "./args.ts";
import { envPairs } from "./serve-client.ts";
import { noteTimings } from "./stats.ts";
import { MASTRA_PINECONE_INDEX } from "./peers/config.ts";
import { procMemory } from "./proc-stat.ts";
import { addLabel, delayMsOf, proxyGroups, startDelayProxies, targetOf, throughProxy, type DelayProxies, type HeldSummary } from "./peers/delay-proxy.ts";

const ALL_SYSTEMS = ["floor-local", "strata-embedded", "naive-json", "langchain-pg", "langchain-upstash", "floor-managed", "strata-managed", "mastra-libsql", "mastra-managed"] as const;
type SystemName = (typeof ALL_SYSTEMS)[number];
const ALL_WORKLOADS = ["rehydrate", "ingest", "growth", "search"] as const;
const PG_BASE = "postgres://postgres@127.0.0.1:5432";
const REDIS_URL = "redis://127.0.0.1:6379";
const BUDGET = 4000;
const SESSION_SIZE = 100;
const SEARCH_AT = 10_000;

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    workloads: { type: "string", default: ALL_WORKLOADS.join(",") },
    sizes: { type: "string" },
    systems: { type: "string", default: ALL_SYSTEMS.join(",") },
    quick: { type: "boolean", default: false },
    calls: { type: "string" },
    // Messages of the batched ingest phase (100 a request). The default of 10,000 makes it
    // about 100 requests: at 2,000 (20 requests, under half a second for Strata) the rate
    // moved by 2x between identical runs.
    "ingest-batched": { type: "string" },
    port: { type: "string", default: "8811" },
    name: { type: "string", default: "peers" },
    // "apart": each managed counterpart in a process of its own, as the services are deployed;
    // "shared": the Upstash bridge, the Neon proxy and SQS in one (the layout of the runs
    // before the twelfth), to compare the two.
    "stand-ins": { type: "string", default: "apart" },
    // Settings for both Strata servers on top of the runner's own (repeatable), e.g.
    // STRATA_PGLITE_THREAD=on: the caller's STRATA_* variables are not passed on.
    "strata-env": { type: "string", multiple: true, default: [] },
    "delay-ms": { type: "string", default: "0" },
    "delay-procs": { type: "string", default: "one" },
  },
});
const DELAY_MS = delayMsOf(args["delay-ms"]) ?? benchUsageError(import.meta.url, `--delay-ms must be a number of milliseconds ≥ 0, got ${args["delay-ms"]}`);
if (args["delay-procs"] !== "one" && args["delay-procs"] !== "each") benchUsageError(import.meta.url, `--delay-procs is one or each, got ${args["delay-procs"]}`);
const DELAY_PROCS: "one" | "each" = args["delay-procs"];
if (args["stand-ins"] !== "apart" && args["stand-ins"] !== "shared") benchUsageError(import.meta.url, `--stand-ins is apart or shared, got ${args["stand-ins"]}`);
const strataEnv = envPairs("--strata-env", args["strata-env"]!, (message) => benchUsageError(import.meta.url, message));
const workloads = new Set(args.workloads!.split(","));
const sizes = (args.sizes ?? (args.quick ? "100,1000" : "100,1000,10000,100000")).split(",").map(Number);
const systems = args.systems!.split(",") as SystemName[];
for (const s of systems) if (!ALL_SYSTEMS.includes(s)) throw new Error(`unknown system ${s}; one of ${ALL_SYSTEMS.join(", ")}`);
const CALLS = Number(args.calls ?? (args.quick ? 60 : 300));
const GROWTH_CALLS = Math.max(30, Math.round(CALLS / 3));
// Timed searches a level (after SEARCH_WARM untimed ones). At 8 clients 400 took about a second
// on a 2-core machine, so its p99 was its 4th-slowest search: one pause decided it.
const SEARCH_REQUESTS: Record<number, number> = args.quick ? { 1: 60, 8: 160, 32: 320 } : { 1: 400, 8: 2000, 32: 3200 };
const SEARCH_WARM = 20;
// The growth workload's side-by-side reading: a second user of REF_SIZE messages (the same turns
// as the growing user's first REF_SIZE), and at each size from REF_SIZE GROWTH_CALLS context
// calls to each user, query by query in alternating order, after PAIRED_WARM untimed pairs.
const REF_SIZE = 1000;
const REF_USER = "u-ref";
const PAIRED_WARM = 50;
const SEARCH_MAX_MS = 20_000;
const INGEST_SINGLE = args.quick ? 200 : 500;
const INGEST_BATCHED = Number(args["ingest-batched"] ?? (args.quick ? 1000 : 10_000));
const basePort = Number(args.port);
const runId = randomBytes(3).toString("hex");

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

// ---------------------------------------------------------------------------------------
// The one client every system gets: node:http with keep-alive sockets, JSON bodies.

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface Reply {
  status: number;
  body: any;
  ms: number;
}

// A server may close an idle keep-alive socket just as the client reuses it; as Node's docs
// advise, such a request (reused socket, ECONNRESET) is sent once more.
async function request(base: string, method: string, path: string, body?: unknown): Promise<Reply> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send(base, method, path, body);
    } catch (e) {
      if (!(e as { reused?: boolean }).reused || attempt === 3) throw e;
    }
  }
}

function send(base: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      { agent, method, hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {}, timeout: 300_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ms = performance.now() - t0;
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: json, ms });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", (e: NodeJS.ErrnoException) => reject(Object.assign(e, { reused: req.reusedSocket && e.code === "ECONNRESET" })));
    if (payload) req.write(payload);
    req.end();
  });
}

async function ok(base: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const r = await request(base, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r;
}

/** Runs `total` tasks on `concurrency` workers; returns the wall time in ms. */
async function pool(total: number, concurrency: number, task: (i: number, worker: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < total) await task(next++, w);
    }),
  );
  return performance.now() - t0;
}

interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  const r = (v: number) => Math.round(v * 100) / 100;
  return { n: s.length, p50: r(q(50)), p95: r(q(95)), p99: r(q(99)), mean: r(s.reduce((a, b) => a + b, 0) / s.length), max: r(s[s.length - 1]!) };
}

// ---------------------------------------------------------------------------------------
// Servers: one child process per system, peak RSS from /proc.

interface Running {
  name: SystemName;
  base: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
  logTail(): string;
}

function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // Without permission the peak covers the process' whole life so far; the JSON says so.
  }
}

function peakRssMb(pid: number): number | null {
  const m = procMemory(pid);
  return m && Number.isFinite(m.peakMb) ? Math.round(m.peakMb * 10) / 10 : null;
}

// Every server starts with the Node options `npm start` gives Strata's (package.json's start
// script, e.g. the young generation's size), the peers' alike: Strata is measured as it is
// started, and no peer runs with less.
const NODE_FLAGS = startNodeFlags();

function startChild(name: string, argv: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; tail: () => string } {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...argv], { env, stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const keep = (d: Buffer) => {
    tail = (tail + d.toString("utf8")).slice(-4000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.once("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM") log(`${name} exited (${code ?? signal}): ${tail.slice(-800)}`);
  });
  return { child, tail: () => tail };
}

async function waitUp(base: string, path: string, child: ChildProcess, what: string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited before it answered`);
    try {
      const r = await request(base, "GET", path);
      if (r.status === 200) return;
    } catch {}
    if (Date.now() - t0 > 120_000) throw new Error(`${what} did not answer ${path} in 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Shared {
  /** PostgreSQL and Redis as the peers and floors reach them (through the delay proxy with --delay-ms). */
  pgUrl: string;
  redisUrl: string;
  prefix: string;
  cloudEnv: Record<string, string> | null;
  tmp: string;
}

function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(UPSTASH_|DATABASE_URL|STRATA_|PINECONE_|NEO4J_|AWS_|OPENAI_)/.test(k)) delete env[k];
  return env;
}

// The delay proxies started so far (--delay-ms), stopped at the end of the run, and the round
// trip each process measured through a proxy of its own as it started (ms).
const delayProxies: DelayProxies[] = [];
const delayRoundTrips: number[] = [];
// The service each delayed target stands for ("HOST:PORT" -> the variables that named it).
const delayLabels: Record<string, string> = {};

// What a managed counterpart's variables point at, each through the delay: the services' own
// addresses, not the database names or tokens beside them. The queue's URL names it
// (sqs.REGION.127.0.0.1:PORT, a host no one resolves): the SQS client is sent to the endpoint.
const DELAYED_CLOUD_KEYS = ["STRATA_NEON_WS_PROXY", "STRATA_NEON_FETCH_ENDPOINT", "UPSTASH_REDIS_REST_URL", "PINECONE_HOST", "AWS_ENDPOINT_URL_SQS"];

/**
 * `env` with the addresses under `keys` sent through a delay proxy of DELAY_MS each way (one
 * process for the lot, or one a service with --delay-procs each); `env` itself when there is no
 * delay. Every key must name a loopback address with a port: a service the delay would miss
 * fails the run rather than go undelayed.
 */
async function delayed<T extends Record<string, string>>(env: T, keys: readonly string[], owner = ""): Promise<T> {
  if (DELAY_MS === 0) return env;
  const targets = keys.map((k) => {
    const value = env[k];
    const target = value === undefined ? null : targetOf(value);
    if (!target || !target.startsWith("127.0.0.1:")) throw new Error(`--delay-ms: ${k} (${value ?? "unset"}) names no loopback host:port to put the delay in front of`);
    addLabel(delayLabels, target, owner ? `${k} (${owner})` : k);
    return target;
  });
  const groups = proxyGroups(targets, DELAY_PROCS);
  const ports: Record<string, number> = {};
  for (const group of groups) {
    const proxies = await startDelayProxies(group, DELAY_MS, NODE_FLAGS);
    delayProxies.push(proxies);
    delayRoundTrips.push(proxies.roundTripMs);
    Object.assign(ports, proxies.ports);
  }
  const out: Record<string, string> = { ...env };
  for (const k of keys) out[k] = throughProxy(env[k]!, ports);
  return out as T;
}

/** How long every delay proxy held its chunks since the last take, by the service it stands for; counting starts again. */
async function takeDelayHeld(): Promise<Record<string, HeldSummary>> {
  const out: Record<string, HeldSummary> = {};
  for (const taken of await Promise.all(delayProxies.map((p) => p.takeHeld()))) {
    for (const [target, held] of Object.entries(taken)) if (held) out[delayLabels[target] ?? target] = held;
  }
  return out;
}

/** Runs one workload of a system; with a delay, records how long the proxies held its chunks (what passed before it is dropped). */
async function withDelayHeld<T>(result: SystemResult, workload: "rehydrate" | "ingest" | "growth", run: () => Promise<T>): Promise<T> {
  if (DELAY_MS === 0) return run();
  await takeDelayHeld();
  const out = await run();
  const held = await takeDelayHeld();
  if (Object.keys(held).length) (result.delayHeld ??= {})[workload] = held;
  return out;
}

async function startSystem(name: SystemName, port: number, shared: Shared): Promise<Running> {
  const base = `http://127.0.0.1:${port}`;
  let started: { child: ChildProcess; tail: () => string };
  let ready = "/v1/status";
  let pinecone: StandInProcs | null = null;
  if (name === "strata-embedded" || name === "strata-managed") {
    const env: NodeJS.ProcessEnv = { ...baseEnv(), PORT: String(port), HOST: "127.0.0.1", STRATA_LOG_LEVEL: "warn", ...strataEnv };
    if (name === "strata-embedded") env.STRATA_DATA_DIR = join(shared.tmp, "strata");
    else Object.assign(env, shared.cloudEnv!, { STRATA_STAGE: `bench${runId}` });
    started = startChild(name, ["bin/strata.mjs", "serve"], env);
    ready = "/v1/health";
  } else {
    const env: NodeJS.ProcessEnv = { ...baseEnv(), BENCH_PG_URL: shared.pgUrl, BENCH_REDIS_URL: shared.redisUrl, BENCH_PREFIX: `${shared.prefix}_${name.replace(/-/g, "_")}` };
    if (shared.cloudEnv) {
      env.UPSTASH_REDIS_REST_URL = shared.cloudEnv.UPSTASH_REDIS_REST_URL;
      env.UPSTASH_REDIS_REST_TOKEN = shared.cloudEnv.UPSTASH_REDIS_REST_TOKEN;
    }
    if (name === "mastra-managed") {
      // Its own Pinecone stand-in, in a process of its own as Strata's is: Mastra finds its
      // index by name on the control plane and the index has one dimension.
      pinecone = await startStandInProcs({ layout: "pinecone", pineconeIndex: MASTRA_PINECONE_INDEX, nodeFlags: NODE_FLAGS, env: baseEnv(), onExit: (n, code, tail) => log(`${n} exited (${code}): ${tail}`) });
      try {
        env.BENCH_PINECONE_HOST = (await delayed({ PINECONE_HOST: pinecone.env.PINECONE_HOST! }, ["PINECONE_HOST"], "Mastra's")).PINECONE_HOST;
      } catch (e) {
        await pinecone.stop();
        throw e;
      }
      env.BENCH_PINECONE_API_KEY = pinecone.env.PINECONE_API_KEY;
    }
    started = startChild(name, ["bench/peers/serve-peer.ts", name, "--port", String(port), "--dir", join(shared.tmp, name)], env);
  }
  try {
    await waitUp(base, ready, started.child, name);
  } catch (e) {
    await Promise.all([stopChild(started.child), pinecone?.stop()]);
    throw e;
  }
  const stop = async () => {
    await stopChild(started.child);
    await pinecone?.stop();
  };
  return { name, base, pid: started.child.pid!, child: started.child, stop, logTail: started.tail };
}

// ---------------------------------------------------------------------------------------
// Workloads.

const queries = generateQueries(8, 400);

async function ingest(sys: Running, sessionId: string, userId: string, messages: BenchMessage[], batch: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < messages.length; i += batch) {
    await ok(sys.base, "POST", `/v1/sessions/${encodeURIComponent(sessionId)}/messages`, { userId, messages: messages.slice(i, i + batch) });
  }
  return performance.now() - t0;
}

/**
 * Polls GET /v1/status until `left` reads 0 from its body, saying every 10 s how much is left
 * (`unit`); returns the time it read 0, and whether it read more than 0 first.
 */
async function untilStatus(sys: Running, what: string, left: (body: any) => number, unit: string, logNow: boolean): Promise<{ at: number; waited: boolean }> {
  let last = logNow ? 0 : Date.now();
  for (let first = true; ; first = false) {
    const r = await ok(sys.base, "GET", "/v1/status");
    const n = left(r.body);
    if (n === 0) return { at: performance.now(), waited: !first };
    if (Date.now() - last > 10_000) {
      log(`${sys.name} ${what}: ${n} ${unit}`);
      last = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the queue holds no derived job; returns the time it did. */
async function idle(sys: Running, what: string): Promise<number> {
  const q = (body: any) => (body?.queue?.pending ?? 0) + (body?.queue?.inFlight ?? 0);
  return (await untilStatus(sys, what, q, "derived jobs pending", true)).at;
}

/**
 * Waits, after the queue drained, until the server builds no vector index in the background
 * (GET /v1/status's indexes.building; a server without the field builds none) and returns the
 * time it did, or null when none was in flight at the first look. A user past the embedded
 * index's threshold (20k vectors) has theirs built over tens of seconds once their vectors are
 * written, answering their queries by an exact scan meanwhile: timed calls then would measure
 * the build (bench/vector-build.ts does), not the steady state the growth workload compares
 * across sizes.
 */
async function indexesBuilt(sys: Running, what: string): Promise<number | null> {
  const r = await untilStatus(sys, what, (body) => body?.indexes?.building ?? 0, "vector index build(s) in flight", false);
  return r.waited ? r.at : null;
}

interface ContextRun extends Stats {
  /** Median size of the answer in bytes. */
  bytes: number;
  /** Medians of the per-tier timings a Strata answer reports (its own profile of the call). */
  tiers?: Record<string, number>;
  /** The slowest calls (1%, at least 3), each with the timings its answer reported: where a tail is. */
  slowest?: { ms: number; tiers: Record<string, number> }[];
}

/**
 * `n` context calls (after 20 untimed ones). With `write`, a turn is written to the session
 * before each timed call and acknowledged first (not timed): what a write leaves the read
 * path to redo is then part of the calls.
 */
/** The context call's path for one session, user and query, at the runs' budget. */
function contextPath(sessionId: string, userId: string, q: string): string {
  return `/v1/sessions/${encodeURIComponent(sessionId)}/context?userId=${encodeURIComponent(userId)}&query=${encodeURIComponent(q)}&budget=${BUDGET}`;
}

async function contextCalls(sys: Running, sessionId: string, userId: string, n: number, write?: (i: number) => Promise<void>): Promise<ContextRun> {
  const path = (q: string) => contextPath(sessionId, userId, q);
  for (let i = 0; i < Math.min(20, n); i++) await ok(sys.base, "GET", path(queries[i % queries.length]!));
  const ms: number[] = [];
  const bytes: number[] = [];
  const tiers = new Map<string, number[]>();
  const calls: { ms: number; tiers: Record<string, number> }[] = [];
  for (let i = 0; i < n; i++) {
    if (write) await write(i);
    const r = await ok(sys.base, "GET", path(queries[(i + 20) % queries.length]!));
    ms.push(r.ms);
    bytes.push(JSON.stringify(r.body).length);
    const timings = (r.body?.timings ?? {}) as Record<string, number>;
    noteTimings(tiers, timings);
    calls.push({ ms: Math.round(r.ms * 100) / 100, tiers: timings });
  }
  const out: ContextRun = { ...stats(ms), bytes: stats(bytes).p50 };
  if (tiers.size) {
    out.tiers = Object.fromEntries([...tiers].map(([k, v]) => [k, stats(v).p50]));
    out.slowest = calls.sort((a, b) => b.ms - a.ms).slice(0, Math.max(3, Math.ceil(n / 100)));
  }
  return out;
}

interface SystemResult {
  rehydrate?: { context: ContextRun; ingestMs: number; rssMb: number | null };
  ingest?: { singleMsgPerSec: number; batchedMsgPerSec: number; workerMsgPerSec: number | null; rssMb: number | null };
  growth?: {
    size: number;
    context: ContextRun;
    afterWrite?: ContextRun;
    ingestMsgPerSec: number;
    drainMs: number | null;
    /** From the drain until no vector index was being built (null: the system has no queue). */
    indexBuildMs?: number | null;
    rssMb: number | null;
    /** This size's user and the REF_SIZE user in the same server, side by side (see pairedCalls). */
    paired?: Paired;
  }[];
  search?: { size: number; clients: number; qps: number; latency: Stats; rssMb: number | null }[] | { unsupported: string };
  /**
   * With --delay-ms: how long the delay proxies held the chunks of each workload ("growth"
   * includes the search on the growth user), by the service they stood in front of.
   */
  delayHeld?: Partial<Record<"rehydrate" | "ingest" | "growth", Record<string, HeldSummary>>>;
  errors?: string[];
}

const NO_QUEUE = new Set<SystemName>(["floor-local", "floor-managed", "naive-json", "langchain-pg", "langchain-upstash", "mastra-libsql", "mastra-managed"]);

async function runRehydrate(sys: Running): Promise<SystemResult["rehydrate"]> {
  const session = rehydrationSession();
  resetPeak(sys.pid);
  const ingestMs = await ingest(sys, "rehydrate", "u-rehydrate", session, 50);
  await idle(sys, "rehydrate");
  log(`${sys.name} rehydrate: 738 messages in ${(ingestMs / 1000).toFixed(1)} s; ${CALLS} context calls`);
  const context = await contextCalls(sys, "rehydrate", "u-rehydrate", CALLS);
  const r = { context, ingestMs: Math.round(ingestMs), rssMb: peakRssMb(sys.pid) };
  log(`${sys.name} rehydrate: p50 ${context.p50} ms, p95 ${context.p95}, p99 ${context.p99}; peak RSS ${r.rssMb} MB`);
  return r;
}

async function runIngest(sys: Running): Promise<SystemResult["ingest"]> {
  resetPeak(sys.pid);
  const single = generateMessages({ seed: 21, count: INGEST_SINGLE, profile: "chat", prefix: "is" });
  const singleMs = await pool(single.length, 8, async (i, w) => {
    await ok(sys.base, "POST", `/v1/sessions/ingest-single-${w}/messages`, { userId: "u-ingest", messages: [single[i]!] });
  });
  const batched = generateMessages({ seed: 22, count: INGEST_BATCHED, profile: "chat", prefix: "ib" });
  const batches = Math.ceil(batched.length / 100);
  const t0 = performance.now();
  const batchedMs = await pool(batches, 4, async (i, w) => {
    await ok(sys.base, "POST", `/v1/sessions/ingest-batched-${w}/messages`, { userId: "u-ingest", messages: batched.slice(i * 100, i * 100 + 100) });
  });
  const drained = NO_QUEUE.has(sys.name) ? null : await idle(sys, "ingest");
  const r = {
    singleMsgPerSec: Math.round((single.length / singleMs) * 1000),
    batchedMsgPerSec: Math.round((batched.length / batchedMs) * 1000),
    // Jobs of the single-message phase may still be running when the batched one starts:
    // counting all of them against the time from the batched start to empty is the honest rate.
    workerMsgPerSec: drained === null ? null : Math.round(((single.length + batched.length) / (drained - t0)) * 1000),
    rssMb: peakRssMb(sys.pid),
  };
  log(`${sys.name} ingest: single ${r.singleMsgPerSec} msg/s, batched ${r.batchedMsgPerSec} msg/s, workers ${r.workerMsgPerSec ?? "inline"} msg/s; peak RSS ${r.rssMb} MB`);
  return r;
}

// Rough rates for the up-front estimate of a growth run (this machine, quiet, before issue 8's
// work): acknowledged msg/s of the two growth clients, msg/s of derived work, and the context
// call's seconds per message the user holds. Only a guide for whether to wait or come back.
const GROWTH_RATES: Partial<Record<SystemName, { ingest: number; derived: number; contextSPerMsg: number }>> = {
  "strata-embedded": { ingest: 1000, derived: 120, contextSPerMsg: 0.4 / 10_000 },
  "strata-managed": { ingest: 1000, derived: 110, contextSPerMsg: 0.2 / 10_000 },
  "mastra-libsql": { ingest: 15, derived: Infinity, contextSPerMsg: 0.05 / 10_000 },
  "mastra-managed": { ingest: 1500, derived: Infinity, contextSPerMsg: 0.01 / 10_000 },
};

function growthEstimateS(name: SystemName): number {
  const r = GROWTH_RATES[name] ?? { ingest: 2000, derived: Infinity, contextSPerMsg: 0.01 / 10_000 };
  const top = Math.max(...sizes);
  // Derived work runs beside the ingest; the queue drains at the slower of the two rates.
  const write = top / Math.min(r.ingest, r.derived);
  const calls = sizes.reduce((t, n) => t + (GROWTH_CALLS + Math.min(20, GROWTH_CALLS)) * Math.max(0.01, n * r.contextSPerMsg), 0);
  return write + calls;
}

/** Context calls to the REF_SIZE user and to the growing user, side by side. */
interface Paired {
  refSize: number;
  /** The REF_SIZE user's calls, and the growing user's, at this size. */
  ref: Stats;
  grown: Stats;
  /** grown.p50 / ref.p50. */
  ratio: number;
}

/**
 * The growing user's context call against the REF_SIZE user's, in the same server at the same
 * moment: each pair sends one query to both, the order alternating from pair to pair. Timed one
 * size after the other, the sizes met different moments of the machine and of the server (the
 * 1k calls, right after their drain, read slower than the 10k calls in four rounds running).
 * The ratio is of the two medians, not the median of the pairs' ratios: in one server the second
 * call of a pair can find what the first left in the caches (the query's embedding, its words),
 * which would split the pairs' ratios in two groups, one each way, with their median anywhere
 * between; each side's calls are first and second alike, so their medians compare.
 */
async function pairedCalls(sys: Running, refSession: string, grownSession: string): Promise<Paired> {
  const ref: number[] = [];
  const grown: number[] = [];
  for (let i = 0; i < PAIRED_WARM + GROWTH_CALLS; i++) {
    const q = queries[(i + 40) % queries.length]!;
    const a = () => ok(sys.base, "GET", contextPath(refSession, REF_USER, q));
    const b = () => ok(sys.base, "GET", contextPath(grownSession, "u-growth", q));
    let ra: Reply, rb: Reply;
    if (i % 2 === 0) {
      ra = await a();
      rb = await b();
    } else {
      rb = await b();
      ra = await a();
    }
    if (i < PAIRED_WARM) continue;
    ref.push(ra.ms);
    grown.push(rb.ms);
  }
  const out = { refSize: REF_SIZE, ref: stats(ref), grown: stats(grown) };
  return { ...out, ratio: Math.round((out.grown.p50 / out.ref.p50) * 1000) / 1000 };
}

/** Writes `count` messages of the growth data (sessions of SESSION_SIZE from `from`) for `user`, two clients at once. */
async function writeHistory(sys: Running, user: string, prefix: string, from: number, count: number, progress: (to: number) => void): Promise<void> {
  const sessionsToWrite: number[] = [];
  for (let s = Math.floor(from / SESSION_SIZE); s * SESSION_SIZE < from + count; s++) sessionsToWrite.push(s);
  await pool(sessionsToWrite.length, 2, async (i) => {
    const s = sessionsToWrite[i]!;
    const start = Math.max(from, s * SESSION_SIZE);
    const to = Math.min(from + count, (s + 1) * SESSION_SIZE);
    const msgs = generateMessages({ seed: 1000 + s, count: to - start, profile: "chat", prefix, start });
    await ok(sys.base, "POST", `/v1/sessions/${prefix}-${s}/messages`, { userId: user, messages: msgs });
    progress(to);
  });
}

async function runGrowth(sys: Running, result: SystemResult): Promise<void> {
  const growth: NonNullable<SystemResult["growth"]> = [];
  result.growth = growth;
  log(`${sys.name} growth to ${Math.max(...sizes).toLocaleString()} messages: about ${Math.ceil(growthEstimateS(sys.name) / 60)} min on a quiet machine (ingest, derived work, ${GROWTH_CALLS} context calls a size)`);
  // The side-by-side reference: a user holding what the growing user holds at REF_SIZE, written
  // (and its derived work drained) before the growth starts.
  const withRef = sizes.includes(REF_SIZE) && Math.max(...sizes) > REF_SIZE;
  const refSession = `r-${Math.floor((REF_SIZE - 1) / SESSION_SIZE)}`;
  if (withRef) {
    await writeHistory(sys, REF_USER, "r", 0, REF_SIZE, () => {});
    await settled(sys, `reference user of ${REF_SIZE.toLocaleString()}`);
    log(`${sys.name} growth: a reference user of ${REF_SIZE.toLocaleString()} messages written, for the side-by-side calls`);
  }
  let have = 0;
  const doSearch = workloads.has("search");
  const searchSize = sizes.includes(SEARCH_AT) ? SEARCH_AT : Math.max(...sizes.filter((s) => s <= SEARCH_AT));
  for (const size of [...sizes].sort((a, b) => a - b)) {
    resetPeak(sys.pid);
    const t0 = performance.now();
    let lastLog = Date.now();
    const add = size - have;
    // Sessions of 100 messages; two clients write different sessions at once.
    await writeHistory(sys, "u-growth", "g", have, add, (to) => {
      if (Date.now() - lastLog > 10_000) {
        log(`${sys.name} growth: ${to.toLocaleString()} / ${size.toLocaleString()} messages`);
        lastLog = Date.now();
      }
    });
    const ingestMs = performance.now() - t0;
    have = size;
    const acked = performance.now();
    log(`${sys.name} growth ${size}: ${add.toLocaleString()} messages acknowledged in ${(ingestMs / 1000).toFixed(1)} s; waiting for derived work`);
    // Drain: from the last acknowledgement until the queue is empty (derived work that ran
    // during the ingest is not counted here; the ingest time covers it).
    const drained = NO_QUEUE.has(sys.name) ? null : await idle(sys, `growth ${size}`);
    const drainMs = drained === null ? null : Math.round(drained - acked);
    // Then the vector index's build, when the size took the user past its threshold.
    const built = drained === null ? null : await indexesBuilt(sys, `growth ${size}`);
    const indexBuildMs = drained === null ? null : built === null ? 0 : Math.round(built - drained);
    const lastSession = `g-${Math.floor((size - 1) / SESSION_SIZE)}`;
    const context = await contextCalls(sys, lastSession, "u-growth", GROWTH_CALLS);
    // Then side by side with the reference user, before any turn is written to this size's last
    // session: at REF_SIZE the two users hold the same turns, so that ratio is the control.
    let paired: Paired | undefined;
    if (withRef && size >= REF_SIZE) {
      paired = await pairedCalls(sys, refSession, lastSession);
      log(`${sys.name} growth ${size}: side by side with the ${REF_SIZE.toLocaleString()}-message user, p50 ${paired.grown.p50} ms against ${paired.ref.p50}, a ratio of ${paired.ratio}`);
    }
    // Then a chatting user: a turn written to the session before each call. The turns stay
    // (GROWTH_CALLS more messages at each size, beside the size's own).
    const afterWrite = await contextCalls(sys, lastSession, "u-growth", GROWTH_CALLS, async (i) => {
      const [m] = generateMessages({ seed: 5_000_000 + size + i, count: 1, profile: "chat", prefix: `w${size}`, start: size + i });
      await ok(sys.base, "POST", `/v1/sessions/${lastSession}/messages`, { userId: "u-growth", messages: [m] });
    });
    const step = { size, context, afterWrite, ingestMsgPerSec: Math.round((add / ingestMs) * 1000), drainMs, indexBuildMs, rssMb: peakRssMb(sys.pid), ...(paired ? { paired } : {}) };
    growth.push(step);
    log(`${sys.name} growth ${size}: context p50 ${context.p50} ms, p99 ${context.p99}; after a write p50 ${afterWrite.p50} ms, p99 ${afterWrite.p99}; ingest ${step.ingestMsgPerSec} msg/s; drain ${drainMs === null ? "—" : `${(drainMs / 1000).toFixed(1)} s`}; vector index built ${indexBuildMs ? `${(indexBuildMs / 1000).toFixed(1)} s after it` : "—"}; peak RSS ${step.rssMb} MB`);
    if (doSearch && size === searchSize) result.search = await runSearch(sys, size);
  }
}

/** Waits until a system with a queue has no derived work pending and no vector index building. */
async function settled(sys: Running, what: string): Promise<void> {
  if (NO_QUEUE.has(sys.name)) return;
  await idle(sys, what);
  await indexesBuilt(sys, what);
}

async function runSearch(sys: Running, size: number): Promise<SystemResult["search"]> {
  // The growth step before it wrote a turn before each of its after-a-write calls: the derived
  // work those turns left (and a vector index build they started) is that step's, so the search
  // waits for it as the growth step's calls wait for theirs, rather than timing queries beside it.
  await settled(sys, "search");
  const probe = await request(sys.base, "POST", "/v1/search", { userId: "u-growth", query: queries[0], limit: 10 });
  if (probe.status === 501) return { unsupported: probe.body?.error?.message ?? "no search" };
  if (probe.status >= 300) throw new Error(`search -> ${probe.status} ${JSON.stringify(probe.body).slice(0, 200)}`);
  const out: { size: number; clients: number; qps: number; latency: Stats; rssMb: number | null }[] = [];
  for (const clients of [1, 8, 32]) {
    resetPeak(sys.pid);
    const total = SEARCH_REQUESTS[clients]!;
    // Warm-up from the same 400 queries the level cycles through (every level times each of them).
    await pool(SEARCH_WARM, clients, async (i) => {
      await ok(sys.base, "POST", "/v1/search", { userId: "u-growth", query: queries[i % queries.length], limit: 10 });
    });
    const ms: number[] = [];
    // A slow system (the naive baseline scans every turn) stops being sent searches after
    // SEARCH_MAX_MS: its figures are then of the searches it answered.
    const deadline = performance.now() + SEARCH_MAX_MS;
    const wall = await pool(total, clients, async (i) => {
      if (performance.now() > deadline) return;
      ms.push((await ok(sys.base, "POST", "/v1/search", { userId: "u-growth", query: queries[i % queries.length], limit: 10 })).ms);
    });
    const r = { size, clients, qps: Math.round((ms.length / wall) * 10000) / 10, latency: stats(ms), rssMb: peakRssMb(sys.pid) };
    out.push(r);
    const cut = ms.length < total ? ` (${ms.length} of ${total} searches: stopped after ${SEARCH_MAX_MS / 1000} s)` : "";
    log(`${sys.name} search ${clients} clients @ ${size}: ${r.qps} qps, p50 ${r.latency.p50} ms, p99 ${r.latency.p99}${cut}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Report: JSON, markdown tables with target verdicts, SVG charts.

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a && b ? Math.round((a / b) * 100) / 100 : null;
}

interface Verdict {
  target: string;
  measured: string;
  ratio: number | null;
  met: boolean | null;
  /** What the verdict is worth, when this run alone cannot settle it. */
  caveat?: string;
}

function verdicts(results: Partial<Record<SystemName, SystemResult>>): Verdict[] {
  const v: Verdict[] = [];
  for (const [strata, floor] of [["strata-embedded", "floor-local"], ["strata-managed", "floor-managed"]] as const) {
    const s = results[strata]?.rehydrate?.context, f = results[floor]?.rehydrate?.context;
    if (s && f) v.push({ target: `${strata} context p50 ≤ 2× ${floor}`, measured: `${s.p50} ms vs ${f.p50} ms`, ratio: ratio(s.p50, f.p50), met: s.p50 <= 2 * f.p50 });
  }
  // Each wiring against Mastra on libsql (in its process, as the earlier runs compared both),
  // and the managed wiring also against Mastra on PostgreSQL and Pinecone, its own counterpart.
  const mastras = { "strata-embedded": ["mastra-libsql"], "strata-managed": ["mastra-libsql", "mastra-managed"] } as const;
  for (const strata of ["strata-embedded", "strata-managed"] as const) {
    const s = results[strata]?.rehydrate?.context;
    for (const mastra of mastras[strata]) {
      const m = results[mastra]?.rehydrate?.context;
      if (!s || !m) continue;
      v.push({ target: `${strata} context ≥ 3× faster than ${mastra} at p50`, measured: `${s.p50} ms vs ${m.p50} ms`, ratio: ratio(m.p50, s.p50), met: m.p50 >= 3 * s.p50 });
      v.push({ target: `${strata} context ≥ 3× faster than ${mastra} at p99`, measured: `${s.p99} ms vs ${m.p99} ms`, ratio: ratio(m.p99, s.p99), met: m.p99 >= 3 * s.p99 });
    }
    const g = results[strata]?.growth ?? [];
    const at1k = g.find((x) => x.size === 1000), top = g.at(-1);
    const growthTarget = (full: boolean) => `${strata} context at 100k ≤ 1.5× at 1k${full ? "" : ` (largest run: ${top!.size.toLocaleString()})`}`;
    if (top?.paired && top.size > top.paired.refSize) {
      const p = top.paired;
      const full = top.size === 100_000 && p.refSize === 1000;
      v.push({
        target: growthTarget(full),
        measured: `${p.grown.p50} ms at ${top.size.toLocaleString()} vs ${p.ref.p50} ms for a user of ${p.refSize.toLocaleString()} (p50, side by side in one server)`,
        ratio: p.ratio,
        met: full ? p.ratio <= 1.5 : null,
        caveat:
          strata === "strata-embedded"
            ? "both users in one server; bench/ab-http.ts, each size in a server of its own, decides the embedded target"
            : // One Pinecone namespace a tenant (lib/adapters/pinecone/vector-index.ts): the stand-in
              // scores only the rows a user's filter passes (when fewer than half), so the 1k
              // user's query does not read the growing user's vectors; the growing user's it scores
              // exactly, every one, where the service's index does not scan.
              "both users in one tenant's Pinecone namespace; the stand-in scores the growing user's every vector exactly for its query, where the service's index does not scan; compare the 1k user's call with its own at the 1k step",
      });
    } else if (at1k && top && top.size > 1000) {
      const full = top.size === 100_000;
      v.push({
        target: growthTarget(full),
        measured: `${top.context.p50} ms at ${top.size.toLocaleString()} vs ${at1k.context.p50} ms at 1k (p50)`,
        ratio: ratio(top.context.p50, at1k.context.p50),
        met: full ? top.context.p50 <= 1.5 * at1k.context.p50 : null,
        // Each size is timed right after its own drain, one after the other: the 1k calls run
        // cold (BENCHMARKS.md, twenty-first and thirty-fourth rounds). bench/ab-http.ts times
        // both sizes side by side, each server restarted on its data and warmed.
        caveat: "each size timed after its drain, one after the other; bench/ab-http.ts, both sizes side by side, decides the target",
      });
    }
    const ing = results[strata]?.ingest;
    if (ing) v.push({ target: `${strata} ingest ≥ 2,000 acknowledged msg/s (batched)`, measured: `${ing.batchedMsgPerSec} msg/s batched, ${ing.singleMsgPerSec} single`, ratio: ratio(ing.batchedMsgPerSec, 2000), met: ing.batchedMsgPerSec >= 2000 });
    const se = results[strata]?.search;
    if (Array.isArray(se) && se.length) {
      const best = [...se].sort((a, b) => b.qps - a.qps)[0]!;
      const okLevels = se.filter((x) => x.latency.p99 <= 50);
      const bestOk = okLevels.sort((a, b) => b.qps - a.qps)[0];
      v.push({
        target: `${strata} search ≥ 300 qps with p99 ≤ 50 ms at ${se[0]!.size.toLocaleString()} messages`,
        measured: bestOk ? `${bestOk.qps} qps at ${bestOk.clients} clients, p99 ${bestOk.latency.p99} ms (best overall ${best.qps} qps, p99 ${best.latency.p99} ms at ${best.clients})` : `no level with p99 ≤ 50 ms; best ${best.qps} qps, p99 ${best.latency.p99} ms at ${best.clients} clients`,
        ratio: ratio(bestOk?.qps ?? 0, 300),
        met: se[0]!.size === SEARCH_AT ? !!bestOk && bestOk.qps >= 300 : null,
      });
    }
  }
  return v;
}

function markdown(results: Partial<Record<SystemName, SystemResult>>, vs: Verdict[], meta: Record<string, unknown>): string {
  const names = Object.keys(results) as SystemName[];
  const fmt = (x: number | null | undefined) => (x === null || x === undefined ? "—" : x.toLocaleString("en-US"));
  let md = `Run ${meta.date}, ${meta.machine}. Command: \`${meta.command}\`. Servers started with \`node ${(meta.serverNodeFlags as string[]).join(" ")}\` (as \`npm start\`).\n\n`;
  if (names.some((n) => n === "strata-managed" || n === "floor-managed" || n === "langchain-upstash")) {
    const standIns = (meta.options as { standIns: string }).standIns;
    md += standIns === "apart" ? "The managed counterparts (Upstash bridge, Neon proxy, SQS, Pinecone) ran each in a process of its own.\n\n" : "The Upstash bridge, the Neon proxy and SQS ran in one process, Pinecone in another.\n\n";
  }
  const delayMs = (meta.options as { delayMs: number }).delayMs;
  if (delayMs > 0) {
    const trips = (meta.delayRoundTripMs as number[] | undefined) ?? [];
    const each = (meta.options as { delayProcs?: string }).delayProcs === "each";
    md += `**A network delay of ${delayMs} ms each way** (bench/peers/delay-proxy.ts) stood in front of PostgreSQL, Redis and every managed counterpart, for every system reaching them, ${each ? "each service's in a proxy process of its own" : "the managed counterparts' in one proxy process, PostgreSQL's and Redis's in another (Mastra's Pinecone stand-in, when it ran, in a third)"}: an idle round trip through it took ${trips.join(", ")} ms (median of 100 in each proxy process as it started; the timers' lateness included). strata-embedded, mastra-libsql and naive-json reach nothing over the network. The targets of issue 8 are read without it.\n\n`;
  }
  // Each workload's section only when some system ran it.
  if (names.some((n) => results[n]!.rehydrate)) {
    md += "Context call on the 738-message session (budget 4000 tokens, sequential, one client):\n\n| system | p50 ms | p95 ms | p99 ms | mean ms | calls | ingest of the session s | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n";
    for (const n of names) {
      const r = results[n]!.rehydrate;
      if (r) md += `| ${n} | ${r.context.p50} | ${r.context.p95} | ${r.context.p99} | ${r.context.mean} | ${r.context.n} | ${(r.ingestMs / 1000).toFixed(1)} | ${fmt(r.rssMb)} |\n`;
    }
    for (const n of names) {
      const t = results[n]!.rehydrate?.context.tiers;
      if (t) md += `\n${n}: median per-tier timings the server reports (ms): ${Object.entries(t).map(([k, v]) => `${k} ${v}`).join(", ")}.\n`;
    }
    md += `\nMedian answer size (bytes): ${names.filter((n) => results[n]!.rehydrate).map((n) => `${n} ${results[n]!.rehydrate!.context.bytes}`).join(", ")}.\n\n`;
  }
  if (names.some((n) => results[n]!.ingest)) {
    md += "Ingest (acknowledged messages/s over HTTP; workers: all messages / time from the batched start until the queue is empty):\n\n| system | single, 8 clients | batches of 100, 4 clients | workers (embed + extract) | peak RSS MB |\n|---|---|---|---|---|\n";
    for (const n of names) {
      const r = results[n]!.ingest;
      if (r) md += `| ${n} | ${fmt(r.singleMsgPerSec)} | ${fmt(r.batchedMsgPerSec)} | ${r.workerMsgPerSec === null ? "inline (in the ack)" : fmt(r.workerMsgPerSec)} | ${fmt(r.rssMb)} |\n`;
    }
  }
  const gsizes = [...new Set(names.flatMap((n) => (results[n]!.growth ?? []).map((g) => g.size)))].sort((a, b) => a - b);
  if (gsizes.length) {
    md += `\nContext call p50 / p99 ms as one user's history grows (last session of 100 messages):\n\n| system | ${gsizes.map((s) => s.toLocaleString("en-US")).join(" | ")} | peak RSS MB at largest |\n|---|${gsizes.map(() => "---|").join("")}---|\n`;
    for (const n of names) {
      const g = results[n]!.growth;
      if (!g) continue;
      md += `| ${n} | ${gsizes.map((s) => {
        const x = g.find((y) => y.size === s);
        return x ? `${x.context.p50} / ${x.context.p99}` : "—";
      }).join(" | ")} | ${fmt(g.at(-1)?.rssMb)} |\n`;
    }
    const written = names.filter((n) => results[n]!.growth?.some((g) => g.afterWrite));
    if (written.length) {
      md += `\nThe same, with a turn written to the session (and acknowledged, untimed) before each call:\n\n| system | ${gsizes.map((s) => s.toLocaleString("en-US")).join(" | ")} |\n|---|${gsizes.map(() => "---|").join("")}\n`;
      for (const n of written) {
        const g = results[n]!.growth!;
        md += `| ${n} | ${gsizes.map((s) => {
          const x = g.find((y) => y.size === s)?.afterWrite;
          return x ? `${x.p50} / ${x.p99}` : "—";
        }).join(" | ")} |\n`;
      }
    }
    const pairedRows = names.filter((n) => results[n]!.growth?.some((g) => g.paired));
    if (pairedRows.length) {
      md += `\nSide by side in the same server: the growing user's context call and a user of ${REF_SIZE.toLocaleString("en-US")} messages (the same turns as the growing user's first ${REF_SIZE.toLocaleString("en-US")}), one query to both, ${GROWTH_CALLS} pairs after ${PAIRED_WARM} untimed, the order alternating; p50 / p99 ms, and the ratio of the p50s:\n\n| system | messages | ${REF_SIZE.toLocaleString("en-US")}-message user | growing user | ratio |\n|---|---|---|---|---|\n`;
      for (const n of pairedRows) {
        for (const g of results[n]!.growth!) {
          if (g.paired) md += `| ${n} | ${g.size.toLocaleString("en-US")} | ${g.paired.ref.p50} / ${g.paired.ref.p99} | ${g.paired.grown.p50} / ${g.paired.grown.p99} | ${g.paired.ratio} |\n`;
        }
      }
    }
    const drains = names.filter((n) => results[n]!.growth?.some((g) => g.drainMs != null));
    if (drains.length) md += `\nDerived work left when the last message of each size was acknowledged, drained in (s): ${drains.map((n) => `${n} ${results[n]!.growth!.map((g) => `${g.size.toLocaleString("en-US")}: ${g.drainMs == null ? "—" : (g.drainMs / 1000).toFixed(1)}`).join(", ")}`).join("; ")}.\n`;
    const builds = names.filter((n) => results[n]!.growth?.some((g) => g.indexBuildMs));
    if (builds.length) md += `\nThe context calls of a size were timed once the vector index was built too (GET /v1/status's indexes.building at 0), this long after the drain (s): ${builds.map((n) => `${n} ${results[n]!.growth!.map((g) => `${g.size.toLocaleString("en-US")}: ${g.indexBuildMs == null ? "—" : (g.indexBuildMs / 1000).toFixed(1)}`).join(", ")}`).join("; ")}.\n`;
  }
  const searchRows = names.map((n) => [n, results[n]!.search] as const).filter(([, s]) => s);
  if (searchRows.length) {
    md += "\nSearch on the growth user (limit 10):\n\n| system | messages | clients | qps | p50 ms | p95 ms | p99 ms | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n";
    for (const [n, s] of searchRows) {
      if (!Array.isArray(s)) md += `| ${n} | — | — | no search: ${s!.unsupported} | | | | |\n`;
      else for (const x of s) md += `| ${n} | ${x.size.toLocaleString("en-US")} | ${x.clients} | ${x.qps} | ${x.latency.p50} | ${x.latency.p95} | ${x.latency.p99} | ${fmt(x.rssMb)} |\n`;
    }
  }
  md += "\nTargets:\n\n| target | measured | ratio | verdict |\n|---|---|---|---|\n";
  for (const v of vs) md += `| ${v.target} | ${v.measured} | ${v.ratio ?? "—"} | ${v.met === null ? "not decided (size not run)" : v.met ? "met" : "**missed**"}${v.caveat && v.met !== null ? ` (${v.caveat})` : ""} |\n`;
  const held = names.flatMap((n) => Object.entries(results[n]!.delayHeld ?? {}).flatMap(([w, byService]) => Object.entries(byService!).map(([service, h]) => ({ n, w, service, h }))));
  if (held.length) {
    md += `\nHow long the delay proxies held each chunk, from its arrival to its write, by workload and service (ms; the setting ${delayMs} ms each way; a chunk's wait for the proxy's event loop before its arrival was seen is not in these):\n\n| system | workload | service | chunks | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|\n`;
    for (const { n, w, service, h } of held) md += `| ${n} | ${w} | ${service} | ${h.chunks.toLocaleString("en-US")} | ${h.p50} | ${h.p90} | ${h.p99} | ${h.max} |\n`;
  }
  const errs = names.filter((n) => results[n]!.errors?.length);
  if (errs.length) md += `\nErrors:\n\n${errs.map((n) => `- ${n}: ${results[n]!.errors!.join("; ")}`).join("\n")}\n`;
  return md;
}

function charts(results: Partial<Record<SystemName, SystemResult>>, stem: string): string[] {
  const names = Object.keys(results) as SystemName[];
  const files: string[] = [];
  const write = (suffix: string, svg: string) => {
    const f = `${stem}-${suffix}.svg`;
    writeFileSync(f, svg);
    files.push(f);
  };
  const rh = names.filter((n) => results[n]!.rehydrate);
  if (rh.length)
    write("rehydrate", barChart({ title: "Context call, 738-message session (lower is better)", unit: "ms", log: true, categories: rh, series: (["p50", "p95", "p99"] as const).map((p) => ({ name: p, values: rh.map((n) => results[n]!.rehydrate!.context[p]) })) }));
  const gr = names.filter((n) => results[n]!.growth?.length);
  if (gr.length) {
    const xs = [...new Set(gr.flatMap((n) => results[n]!.growth!.map((g) => g.size)))].sort((a, b) => a - b);
    write("growth", lineChart({ title: "Context call p50 as history grows (lower is better)", unit: "ms", log: true, xs, xLog: true, xLabel: "messages of the user", series: gr.map((n) => ({ name: n, values: xs.map((x) => results[n]!.growth!.find((g) => g.size === x)?.context.p50 ?? null) })) }));
  }
  const se = names.filter((n) => Array.isArray(results[n]!.search));
  if (se.length)
    write("search", barChart({ title: "Search throughput by concurrent clients (higher is better)", unit: "queries/s", categories: ["1 client", "8 clients", "32 clients"], series: se.map((n) => ({ name: n, values: [1, 8, 32].map((c) => (results[n]!.search as { clients: number; qps: number }[]).find((x) => x.clients === c)?.qps ?? null) })) }));
  const ing = names.filter((n) => results[n]!.ingest);
  if (ing.length)
    write("ingest", barChart({ title: "Acknowledged ingest (higher is better)", unit: "messages/s", log: true, categories: ing, series: [
      { name: "single, 8 clients", values: ing.map((n) => results[n]!.ingest!.singleMsgPerSec) },
      { name: "batches of 100", values: ing.map((n) => results[n]!.ingest!.batchedMsgPerSec) },
      { name: "workers", values: ing.map((n) => results[n]!.ingest!.workerMsgPerSec) },
    ] }));
  const rss = names;
  write("rss", barChart({ title: "Peak RSS of the server per workload (lower is better)", unit: "MB", categories: rss, series: [
    { name: "rehydrate", values: rss.map((n) => results[n]!.rehydrate?.rssMb ?? null) },
    { name: "ingest", values: rss.map((n) => results[n]!.ingest?.rssMb ?? null) },
    { name: "growth (largest)", values: rss.map((n) => results[n]!.growth?.at(-1)?.rssMb ?? null) },
    { name: "search", values: rss.map((n) => { const s = results[n]!.search; return Array.isArray(s) ? Math.max(...s.map((x) => x.rssMb ?? 0)) : null; }) },
  ] }));
  return files;
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(os.tmpdir(), "strata-peers-"));
  const prefix = `bp${runId}`;
  const pgDb = `bench_peers_${runId}`;
  const cloudDb = `strata_bench_${runId}`;
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  await admin.query(`create database "${pgDb}"`);
  await admin.end();
  const needCloud = systems.some((s) => s === "strata-managed" || s === "floor-managed" || s === "langchain-upstash");
  let standIns: StandInProcs | null = null;
  let cloudEnv: Record<string, string> | null = null;
  const results: Partial<Record<SystemName, SystemResult>> = {};
  let running: Running | null = null;
  const cleanup = async () => {
    if (running) await running.stop();
    await standIns?.stop();
    await Promise.all(delayProxies.map((p) => p.stop()));
    const redis = new IoRedis(REDIS_URL);
    for (const pattern of [`${prefix}*`, `strata:bench${runId}:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== "0");
    }
    await redis.quit();
    const a = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
    await a.connect();
    for (const db of [pgDb, cloudDb]) await a.query(`drop database if exists "${db}" with (force)`);
    await a.end();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once("SIGINT", () => {
    log("interrupted: cleaning up");
    cleanup().finally(() => process.exit(130));
  });
  try {
    if (needCloud) {
      standIns = await startStandInProcs({
        layout: args["stand-ins"] === "apart" ? "apart" : "shared",
        database: cloudDb,
        nodeFlags: NODE_FLAGS,
        env: baseEnv(),
        onExit: (name, code, tail) => log(`${name} exited (${code}): ${tail}`),
      });
      cloudEnv = await delayed(standIns.env, DELAYED_CLOUD_KEYS);
      log(args["stand-ins"] === "apart" ? "stand-ins up (Upstash bridge, Neon proxy, SQS and Pinecone, each in a process of its own)" : "stand-ins up (Upstash bridge, Neon proxy and SQS in one process, Pinecone in another)");
    }
    const direct = { BENCH_PG_URL: `${PG_BASE}/${pgDb}`, BENCH_REDIS_URL: REDIS_URL };
    const reached = await delayed(direct, Object.keys(direct));
    if (DELAY_MS > 0) log(`a delay of ${DELAY_MS} ms each way in front of PostgreSQL, Redis${needCloud ? " and each managed counterpart" : ""}: an idle round trip through it ${delayRoundTrips.join(", ")} ms`);
    const shared: Shared = { pgUrl: reached.BENCH_PG_URL, redisUrl: reached.BENCH_REDIS_URL, prefix, cloudEnv, tmp };
    let port = basePort;
    for (const name of systems) {
      const result: SystemResult = {};
      results[name] = result;
      log(`== ${name}`);
      try {
        running = await startSystem(name, port++, shared);
        const system = running;
        if (workloads.has("rehydrate")) result.rehydrate = await withDelayHeld(result, "rehydrate", () => runRehydrate(system));
        if (workloads.has("ingest")) result.ingest = await withDelayHeld(result, "ingest", () => runIngest(system));
        if (workloads.has("growth") || workloads.has("search")) await withDelayHeld(result, "growth", () => runGrowth(system, result));
      } catch (e) {
        (result.errors ??= []).push((e as Error).message);
        log(`${name} failed: ${(e as Error).message}\n${running?.logTail().slice(-1500) ?? ""}`);
      } finally {
        await running?.stop();
        running = null;
      }
      report(results, false);
    }
  } finally {
    await cleanup();
    agent.destroy();
  }

  report(results, true);
}

// The day the run started (UTC): its files keep one name even when the run goes past midnight
// (the partial results written after each system were named by the day each was written, and a
// run that crossed midnight left the first day's partial files beside the second day's).
const RUN_DATE = new Date().toISOString().slice(0, 10);

/** Writes the JSON, markdown and charts; called after every system so a cut-short run keeps what it measured. */
function report(results: Partial<Record<SystemName, SystemResult>>, final: boolean): void {
  const date = RUN_DATE;
  const meta = {
    date,
    machine: `${os.type()} ${os.release()}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.versions.node}`,
    command: `npm run bench:peers -- ${process.argv.slice(2).join(" ")}`.trim(),
    complete: final,
    serverNodeFlags: NODE_FLAGS,
    options: { workloads: [...workloads], sizes, systems, calls: CALLS, growthCalls: GROWTH_CALLS, searchRequests: SEARCH_REQUESTS, ingestSingle: INGEST_SINGLE, ingestBatched: INGEST_BATCHED, budget: BUDGET, standIns: args["stand-ins"], delayMs: DELAY_MS, delayProcs: DELAY_PROCS },
    ...(DELAY_MS > 0 ? { delayRoundTripMs: [...delayRoundTrips] } : {}),
  };
  const vs = verdicts(results);
  mkdirSync("bench/results", { recursive: true });
  const stem = `bench/results/${date}-${args.name}`;
  writeFileSync(`${stem}.json`, JSON.stringify({ ...meta, results, targets: vs }, null, 2) + "\n");
  const md = markdown(results, vs, meta);
  writeFileSync(`${stem}.md`, md);
  const files = charts(results, stem);
  if (final) process.stdout.write(md + `\nWrote ${stem}.json, ${stem}.md, ${files.join(", ")}\n`);
  else log(`partial results written to ${stem}.json`);
}

main().catch((e) => {
  process.stderr.write(`bench:peers: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
