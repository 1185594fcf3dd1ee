// A chat's loop over HTTP: a turn written to the user's last session, then the context call,
// back to back, against `strata serve` on a copy of a data directory bench/search.ts built.
// The growth protocol (bench/ab-http.ts) times a user at rest; here every call follows a
// write, and the server is never quiet, so the writes' derived work (embedding, extraction,
// the graph's merge) runs beside the calls, forced by the job runner's bound on waiting
// (QUIET_WAIT_MS). Its tail is what that derived work costs the calls.
//
// Two builds are run one after the other, not at once (two servers' derived work would share
// the two cores), in the order A B B A by default (--runs 2: each build first once), each on a
// fresh copy of the directory, so a run's minute is shared by neither. Per run: the context
// call's and the write's p50, p95, p99 and slowest, and how long the derived work was still
// behind when the pairs stopped.
//
//   node bench/chat-loop.ts --a ../base --b . --data DIR [--pairs 800] [--warm 200] [--runs 2]
//   node bench/chat-loop.ts --a . --b . --data DIR --env-b NAME=VALUE

import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { quantile } from "./stats.ts";
import { generateMessages, generateQueries } from "./peers/data.ts";
import { abBuilds, builtSize, contextPath, getJson, postJson, readyForCalls, spawnServe, warmQueriesFor, watchServer } from "./serve-client.ts";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    a: { type: "string" },
    b: { type: "string", default: "." },
    data: { type: "string" },
    pairs: { type: "string", default: "800" },
    warm: { type: "string", default: "200" },
    runs: { type: "string", default: "2" },
    port: { type: "string", default: "8911" },
    "env-a": { type: "string", multiple: true, default: [] },
    "env-b": { type: "string", multiple: true, default: [] },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

function fail(message: string): never {
  return benchFailure(import.meta.url, message);
}

if (!opts.a || !opts.data) usage("--a and --data are required (see the header of bench/chat-loop.ts)");
const pairs = wholeNumber(import.meta.url, "--pairs", opts.pairs, 1);
const warm = wholeNumber(import.meta.url, "--warm", opts.warm, 0, { of: "calls" });
const runs = wholeNumber(import.meta.url, "--runs", opts.runs, 1);
const port = wholeNumber(import.meta.url, "--port", opts.port, 1, { most: 65535 });
const { roots, env: extraEnv } = abBuilds({ a: opts.a, b: opts.b!, envA: opts["env-a"]!, envB: opts["env-b"]! }, usage);
const data = resolve(opts.data);
const size = builtSize("--data", data, usage);
const lastSession = `g-${Math.floor((size - 1) / 100)}`;
const queries = generateQueries(8, 400);
const warmPaths = warmQueriesFor(queries)
  .slice(0, Math.max(1, warm))
  .map((q) => contextPath(q, size));

const figures = (xs: number[]) => ({ p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), p99: quantile(xs, 0.99), max: Math.max(...xs) });
const fmt = (f: ReturnType<typeof figures>) => `p50 ${f.p50.toFixed(2)}, p95 ${f.p95.toFixed(2)}, p99 ${f.p99.toFixed(2)}, slowest ${f.max.toFixed(1)} ms`;

interface RunResult {
  build: "A" | "B";
  context: ReturnType<typeof figures>;
  write: ReturnType<typeof figures>;
  pairsS: number;
  behindS: number;
}

async function runOnce(build: "A" | "B", run: number): Promise<RunResult> {
  const copy = mkdtempSync(join(tmpdir(), "strata-chat-loop-"));
  cpSync(data, copy, { recursive: true });
  const server = watchServer(spawnServe(roots[build], copy, port, { env: extraEnv[build] }), (how) => {
    rmSync(copy, { recursive: true, force: true });
    fail(`${build}'s server ${how} before the run ended`);
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const get = (path: string) => getJson(agent, port, path);
    await readyForCalls(get, warmPaths);
    // The warm calls' own derived work (none: they write nothing) and any left from the load.
    for (;;) {
      const status = await get("/v1/status");
      if ((status.body?.queue?.pending ?? 0) === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const context: number[] = [];
    const write: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < pairs; i++) {
      const [m] = generateMessages({ seed: 8_000_000 + i, count: 1, profile: "chat", prefix: `cl${run}`, start: size + i });
      write.push(await postJson(agent, port, `/v1/sessions/${lastSession}/messages`, { userId: "u-growth", messages: [m] }));
      context.push((await get(contextPath(queries[i % queries.length]!, size))).ms);
    }
    const t1 = performance.now();
    for (;;) {
      const status = await get("/v1/status");
      if ((status.body?.queue?.pending ?? 0) === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const result: RunResult = { build, context: figures(context), write: figures(write), pairsS: (t1 - t0) / 1000, behindS: (performance.now() - t1) / 1000 };
    process.stdout.write(
      `run ${run + 1}, ${build} (${roots[build]}): context ${fmt(result.context)}; write ${fmt(result.write)}; ${pairs} pairs in ${result.pairsS.toFixed(1)} s, derived work behind by ${result.behindS.toFixed(1)} s\n`,
    );
    return result;
  } finally {
    agent.destroy();
    await server.stop();
    rmSync(copy, { recursive: true, force: true });
  }
}

process.stdout.write(`chat loop on ${data} (${size.toLocaleString()} messages), ${pairs} pairs a run, ${warm} warm calls first\n`);
const order: ("A" | "B")[] = [];
for (let r = 0; r < runs; r++) order.push(...(r % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)));
const results: RunResult[] = [];
try {
  for (const [i, build] of order.entries()) results.push(await runOnce(build, i));
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
/** The median (of an even count, the mean of the middle two). */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
for (const build of ["A", "B"] as const) {
  const mine = results.filter((r) => r.build === build);
  const m = (pick: (r: RunResult) => number) => median(mine.map(pick)).toFixed(2);
  process.stdout.write(
    `${build}, median of ${mine.length} runs: context p50 ${m((r) => r.context.p50)}, p95 ${m((r) => r.context.p95)}, p99 ${m((r) => r.context.p99)} ms; write p50 ${m((r) => r.write.p50)}, p99 ${m((r) => r.write.p99)} ms; behind ${m((r) => r.behindS)} s\n`,
  );
}
