// A server's worst moments over minutes (issue 8): one checkout's `strata serve` (npm start's
// Node options) on a copy of a data directory bench/search.ts built, asked for the growth
// workload's context call (bench/peers.ts: the user's last session, the peers' queries, a
// budget of 4000 tokens) at a steady pace for --seconds, one call at a time. It prints the
// percentiles, the worst call, and each call slower than --slow ms with when it came: work the
// server does on a schedule (a timer every few minutes) shows there, where a benchmark of a
// few hundred calls in a row rarely meets it. Two checkouts can run at once on copies of the
// same directory, each with its own port, to compare them in the same minutes.
//
//   node_modules/.bin/node bench/steady.ts --data DIR [--root .] [--seconds 360] [--every 50] [--slow 100] [--port 8921] [--from-load]
//
// The copy is made in the system's temporary directory and removed at the end. --every is the
// pause in milliseconds between the end of a call and the start of the next. Without
// --from-load the timed calls start once the user is loaded and its vector index built; with
// it, right after the first call, which loads the user (timed on its own): the first minute of
// a large user after a restart or an eviction, its index build included. The calls made while
// the build runs (GET /v1/status, untimed, every 25 calls) and those after it are then also
// summed up apart, with how long the build took.

import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { benchFailure, benchUsageError, parseBenchArgs } from "./args.ts";
import { quantile } from "./stats.ts";
import { generateQueries } from "./peers/data.ts";
import { answering, builtSize, contextPath, getJson, readyForCalls, serveCheckoutProblem, spawnServe, watchServer } from "./serve-client.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    data: { type: "string" },
    root: { type: "string", default: "." },
    seconds: { type: "string", default: "360" },
    every: { type: "string", default: "50" },
    slow: { type: "string", default: "100" },
    port: { type: "string", default: "8921" },
    "from-load": { type: "boolean", default: false },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

if (!opts.data) usage("--data is required");
const seconds = Number(opts.seconds);
const every = Number(opts.every);
const slow = Number(opts.slow);
const port = Number(opts.port);
if (!(seconds > 0)) usage(`--seconds must be a number of seconds > 0, got ${opts.seconds}`);
if (!(every >= 0)) usage(`--every must be a number of milliseconds ≥ 0, got ${opts.every}`);
if (!(slow > 0)) usage(`--slow must be a number of milliseconds > 0, got ${opts.slow}`);
if (!Number.isInteger(port) || port < 1 || port > 65535) usage(`--port must be a port number, got ${opts.port}`);
const root = resolve(opts.root!);
const problem = serveCheckoutProblem("--root", root);
if (problem) usage(problem);
const size = builtSize("--data", resolve(opts.data), usage);

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const copy = mkdtempSync(join(tmpdir(), "strata-steady-"));
const dir = join(copy, "data");
log(`copying ${opts.data}`);
cpSync(resolve(opts.data), dir, { recursive: true });

const server = watchServer(spawnServe(root, dir, port), (how) => {
  rmSync(copy, { recursive: true, force: true });
  benchFailure(import.meta.url, `the server ${how} before the run ended`);
});
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const get = (path: string) => getJson(agent, port, path);
const queries = generateQueries(8, 400);

try {
  const t0 = Date.now();
  const fromLoad = opts["from-load"]!;
  if (fromLoad) {
    await answering(get);
    const first = await get(contextPath(generateQueries(9, 1)[0]!, size));
    log(`server on ${size.toLocaleString()} messages started in ${((Date.now() - t0) / 1000 - first.ms / 1000).toFixed(1)} s; the first call loaded the user in ${(first.ms / 1000).toFixed(1)} s; ${seconds} s of calls from there, one every ${every} ms after the last`);
  } else {
    await readyForCalls(get, generateQueries(9, 30).map((q) => contextPath(q, size)));
    log(`server on ${size.toLocaleString()} messages ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${seconds} s of calls, one every ${every} ms after the last`);
  }
  const ms: number[] = [];
  const slowCalls: { at: number; ms: number }[] = [];
  // With --from-load: the calls made while the vector index was being built, and when it was done.
  let building = fromLoad;
  let builtAt: number | null = null;
  let duringBuild = 0;
  const start = performance.now();
  let lastReport = start;
  for (let i = 0; performance.now() - start < seconds * 1000; i++) {
    if (building && i % 25 === 0 && !((await get("/v1/status")).body?.indexes?.building > 0)) {
      building = false;
      builtAt = performance.now() - start;
      duringBuild = i;
    }
    const at = performance.now() - start;
    const r = await get(contextPath(queries[i % queries.length]!, size));
    ms.push(r.ms);
    if (r.ms > slow) slowCalls.push({ at, ms: r.ms });
    if (performance.now() - lastReport > 60_000) {
      lastReport = performance.now();
      log(`${(at / 1000).toFixed(0)} s: ${ms.length} calls, ${slowCalls.length} over ${slow} ms, worst ${Math.max(...ms).toFixed(1)} ms`);
    }
    if (every > 0) await new Promise((res) => setTimeout(res, every));
  }
  const q = (p: number) => quantile(ms, p).toFixed(2);
  log(`${ms.length} calls: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, p99.9 ${q(0.999)} ms, worst ${Math.max(...ms).toFixed(1)} ms; ${slowCalls.length} over ${slow} ms`);
  for (const s of slowCalls) log(`  at ${(s.at / 1000).toFixed(1)} s: ${s.ms.toFixed(1)} ms`);
  if (fromLoad) {
    if (building) duringBuild = ms.length;
    const part = (name: string, xs: number[]) =>
      xs.length === 0 ? `${name}: no calls` : `${name}: ${xs.length} calls, p50 ${quantile(xs, 0.5).toFixed(2)} ms, p95 ${quantile(xs, 0.95).toFixed(2)} ms, p99 ${quantile(xs, 0.99).toFixed(2)} ms, worst ${Math.max(...xs).toFixed(1)} ms`;
    log(
      builtAt === null
        ? "the vector index was still being built at the end"
        : duringBuild === 0
          ? "no vector index was being built after the load"
          : `the vector index was built ${(builtAt / 1000).toFixed(1)} s after the first call`,
    );
    log(part("during the build", ms.slice(0, duringBuild)));
    log(part("after it", ms.slice(duringBuild)));
  }
} finally {
  agent.destroy();
  await server.stop();
  rmSync(copy, { recursive: true, force: true });
}
