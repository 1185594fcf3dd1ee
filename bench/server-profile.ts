// A CPU profile of the server itself while it answers the growth workload's context calls
// (issue 8): `strata serve` with npm start's Node options and --cpu-prof, on a data directory
// bench/search.ts built, timed as bench/ab-http.ts times it (the user's last session, the peers'
// queries, a budget of 4000 tokens). The profile is cut to the timed calls: loading the user and
// the untimed calls come before an idle spell (--settle), so the timed calls are the time they
// took (as the client timed them, one after another) from the first context call after it. The
// server's own profile differs from bench/search.ts's in-process one: between two calls it runs
// its HTTP work and waits, and the next call starts with colder caches.
//
// Before the idle spell, --warm untimed calls ask other queries of the same kinds and words
// (bench/ab-http.ts's warm queries), so that the timed calls find what a long-running server
// holds: with only the 30 calls that load the user, the timed calls' first sights of common
// words (their postings copied into BM25's WebAssembly arena) were part of the profile, 18 µs a
// call over 3,000 calls at 100k turns, which bench/ab-http.ts's warmed servers do not spend.
//
//   node_modules/.bin/node bench/server-profile.ts --data DIR [--calls 800] [--warm 400] [--settle 5] [--interval 100] [--out FILE]
//   node_modules/.bin/node bench/cpuprofile-top.ts FILE
//
// The server runs on DIR itself (a PGlite directory serves one process: stop any other server on it).

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { quantile } from "./stats.ts";
import { generateQueries } from "./peers/data.ts";
import { builtSize, contextPath, getJson, readyForCalls, spawnServe, warmQueriesFor, watchServer } from "./serve-client.ts";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    data: { type: "string" },
    calls: { type: "string", default: "800" },
    warm: { type: "string", default: "400" },
    settle: { type: "string", default: "5" },
    out: { type: "string" },
    port: { type: "string", default: "8911" },
    // Microseconds between samples: V8's default (1000) is as long as a third of a call.
    interval: { type: "string", default: "100" },
  },
});

/** A command line the tool cannot use: the message and the header's command lines, exit 2. */
function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

/** A run that went wrong after its command line was accepted: exit 1. */
function fail(message: string): never {
  return benchFailure(import.meta.url, message);
}

if (!opts.data) usage("--data is required (see the header of bench/server-profile.ts)");
const calls = wholeNumber(import.meta.url, "--calls", opts.calls, 1, { of: "calls" });
const warm = wholeNumber(import.meta.url, "--warm", opts.warm, 0, { of: "calls" });
const settle = Number(opts.settle);
const port = Number(opts.port);
const interval = wholeNumber(import.meta.url, "--interval", opts.interval, 10, { of: "microseconds" });
// The idle spell before the calls must stand out from the waits between them.
if (!(settle >= 2)) usage(`--settle must be at least 2 seconds, got ${opts.settle}`);
const data = resolve(opts.data);
const size = builtSize("--data", data, usage);
const out = resolve(opts.out ?? join(tmpdir(), `strata-server-${size}.cpuprofile`));
const root = resolve(new URL("..", import.meta.url).pathname);

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const get = (path: string) => getJson(agent, port, path);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long the timed calls took, in µs (the profile's unit). */
let tookUs = 0;

const profDir = mkdtempSync(join(tmpdir(), "strata-prof-"));
const server = watchServer(spawnServe(root, data, port, { extraFlags: ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${interval}`] }), (how) => {
  rmSync(profDir, { recursive: true, force: true });
  fail(`the server ${how} before the run ended`);
});

const queries = generateQueries(8, 400);
const path = (q: string) => contextPath(q, size);

try {
  const t0 = Date.now();
  await readyForCalls(get, Array.from({ length: 30 }, (_, i) => path(queries[i % queries.length]!)));
  log(`server on ${size.toLocaleString()} messages ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${warm} untimed calls, idle ${settle} s, then ${calls} timed calls`);
  const warmQueries = warmQueriesFor(queries);
  for (let i = 0; i < warm; i++) {
    await get(path(warmQueries[i % warmQueries.length]!));
    if ((i + 1) % 1000 === 0 && i + 1 < warm) log(`${i + 1} / ${warm} untimed calls`);
  }
  await sleep(settle * 1000);
  const ms: number[] = [];
  const began = performance.now();
  const own: number[] = [];
  for (let i = 0; i < calls; i++) {
    const r = await get(path(queries[(i + 30) % queries.length]!));
    ms.push(r.ms);
    own.push(r.body.timings.total);
    if ((i + 1) % 200 === 0 && i + 1 < calls) log(`${i + 1} / ${calls} calls`);
  }
  tookUs = (performance.now() - began) * 1000;
  log(`${calls} context calls in ${(tookUs / 1e6).toFixed(1)} s: p50 ${quantile(ms, 0.5).toFixed(2)} ms over HTTP, server's own total p50 ${quantile(own, 0.5).toFixed(2)} ms`);
} finally {
  agent.destroy();
}
// SIGINT: the server writes its profile as it exits.
await server.stop("SIGINT");

interface Profile {
  nodes: { id: number; callFrame: { functionName: string }; hitCount?: number; positionTicks?: unknown; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}
// The main thread's profile is the largest (a worker's, when one ran, is mostly idle).
const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
if (!files.length) fail(`the server wrote no profile in ${profDir}`);
const profiles = files.map((f) => JSON.parse(readFileSync(join(profDir, f), "utf8")) as Profile);
const p = profiles.reduce((a, b) => (b.samples.length > a.samples.length ? b : a));
rmSync(profDir, { recursive: true, force: true });

// The timed calls begin with the first context call after the idle spell (--settle): the
// first sample under assembleContext after a gap of most of that spell without one, backed up
// to where the thread last woke (the request's parsing). They end as long after as the
// client timed them.
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const inContext = new Map<number, boolean>();
const underContext = (id: number): boolean => {
  let hit = inContext.get(id);
  if (hit === undefined) {
    hit = false;
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) if (byId.get(x)!.callFrame.functionName === "assembleContext") hit = true;
    inContext.set(id, hit);
  }
  return hit;
};
const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
const times: number[] = [];
let t = p.startTime;
for (const d of p.timeDeltas) times.push((t += d));
let from = -1;
let last = -Infinity;
for (let i = 0; i < p.samples.length; i++) {
  if (!underContext(p.samples[i]!)) continue;
  if (times[i]! - last >= settle * 0.8 * 1e6) from = i;
  last = times[i]!;
}
if (from < 0) fail("the profile shows no context call after an idle spell: rerun with a longer --settle");
while (from > 0 && !idle.has(p.samples[from - 1]!)) from--;
let to = from;
while (to < p.samples.length && times[to]! <= times[from]! + tookUs) to++;
const counts = new Map<number, number>();
for (let i = from; i < to; i++) counts.set(p.samples[i]!, (counts.get(p.samples[i]!) ?? 0) + 1);
const cut: Profile = {
  ...p,
  samples: p.samples.slice(from, to),
  timeDeltas: [0, ...times.slice(from + 1, to).map((x, k) => x - times[from + k]!)],
  startTime: times[from]!,
  endTime: times[to - 1]!,
  // Per-line ticks count the whole run: left out rather than misread.
  nodes: p.nodes.map(({ positionTicks: _, ...n }) => ({ ...n, hitCount: counts.get(n.id) ?? 0 })),
};
writeFileSync(out, JSON.stringify(cut));
log(`profile of the ${calls} calls (${((cut.endTime - cut.startTime) / 1e6).toFixed(1)} s) written to ${out}; per call, divide its figures by ${calls}`);
