// The first context calls after a restart (issue 8): what a user waits for when the server
// that answers them has just started and holds none of their indexes, as after a deploy, a
// crash or a new Lambda instance. Every other benchmark times calls after the user is loaded
// (bench/ab-http.ts and the peers runner warm first); this one times the load itself.
//
// A copy of a data directory bench/search.ts built (user "u-growth", sessions of 100 turns) is
// served by `strata serve` (npm start's Node options) once to write a second, small user
// ("u-small": --small turns in one session), then stopped and started again, cold. From the
// moment the second start answers /v1/health, two clients run side by side for --seconds:
//   big    the growth workload's context call for u-growth (its last session, the peers'
//          queries, a budget of 4000 tokens), one call after another;
//   small  u-small's context call every 100 ms: a user whose indexes load in a moment, to show
//          whether another user's load holds its calls up;
// and GET /v1/status once a second says whether a vector index is being built (its
// approximate tier, trained after the user's rows are loaded; the loads themselves it does not
// show). Prints the first big call (ms, the tiers it degraded, its slowest tiers), then each
// client's calls in stretches by what the last status answer said when each call began: none
// yet, a build running, none running: count, p50, p95, max, and how many degraded a tier.
//
//   node_modules/.bin/node bench/cold-start.ts --data DIR [--dir CHECKOUT] [--seconds 60] [--small 40] [--port 8871]
//
// `--dir` serves another checkout (it needs node_modules: a worktree can link the main one's).

import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { generateQueries } from "./peers/data.ts";
import { answering, builtSize, contextPath, getJson, postJson, serveCheckoutProblem, spawnServe, watchServer, type WatchedServer } from "./serve-client.ts";
import { coldPhases, type ColdCall } from "./stats.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    data: { type: "string" },
    dir: { type: "string", default: "." },
    seconds: { type: "string", default: "60" },
    small: { type: "string", default: "40" },
    port: { type: "string", default: "8871" },
  },
});

const usage = (message: string): never => benchUsageError(import.meta.url, message);
const fail = (message: string): never => benchFailure(import.meta.url, message);

if (!opts.data) usage("--data is required (a directory bench/search.ts built; see the header of bench/cold-start.ts)");
const root = resolve(opts.dir!);
const problem = serveCheckoutProblem("--dir", root);
if (problem) usage(problem);
const data = resolve(opts.data!);
const size = builtSize("--data", data, usage);
const seconds = wholeNumber(import.meta.url, "--seconds", opts.seconds, 1, { of: "seconds" });
const smallTurns = wholeNumber(import.meta.url, "--small", opts.small, 2, { most: 1000, of: "turns" });
const port = wholeNumber(import.meta.url, "--port", opts.port, 1, { most: 65535 });

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const copyRoot = mkdtempSync(join(tmpdir(), "strata-cold-"));
const dir = join(copyRoot, "data");
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const get = (path: string) => getJson(agent, port, path);
let server: WatchedServer | null = null;

const cleanUp = async () => {
  agent.destroy();
  await server?.stop();
  rmSync(copyRoot, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  void cleanUp().finally(() => process.exit(130));
});

function start(): WatchedServer {
  return watchServer(spawnServe(root, dir, port), async (how) => {
    server = null;
    await cleanUp();
    fail(`the server (${root}) ${how} before the run ended`);
  });
}

log(`copying ${data} (a user of ${size.toLocaleString("en-US")} messages)`);
cpSync(data, dir, { recursive: true });

// The small user, written by a first start (which loads none of u-growth's indexes).
server = start();
await answering(get);
const smallSession = "cold-small";
const smallMessages = Array.from({ length: smallTurns }, (_, i) => ({
  role: i % 2 === 0 ? "user" : "assistant",
  content: i % 2 === 0 ? `Turn ${i}: what did we decide about the garden shed and the paint for it?` : `Turn ${i}: the shed goes by the fence, painted sage green, on Saturday.`,
}));
await postJson(agent, port, `/v1/sessions/${smallSession}/messages`, { userId: "u-small", messages: smallMessages });
// Its derived work done first, so that the second start has none to run.
for (const t = performance.now(); ; ) {
  const status = await get("/v1/status");
  if (!(status.body?.queue?.pending > 0)) break;
  if (performance.now() - t > 300_000) {
    await cleanUp();
    fail(`u-small's derived work was still pending after 5 minutes: ${JSON.stringify(status.body?.queue)}`);
  }
  await new Promise((r) => setTimeout(r, 200));
}
await server.stop();
log(`wrote u-small (${smallTurns} turns) and stopped the server; starting it again, cold`);

const t0 = performance.now();
server = start();
await answering(get);
const healthAt = performance.now() - t0;
log(`/v1/health answered ${(healthAt / 1000).toFixed(2)} s after the start`);

const queries = generateQueries(8, 400);
const end = performance.now() + seconds * 1000;
let building: boolean | null = null;
const calls: Record<"big" | "small", ColdCall[]> = { big: [], small: [] };
let first: { ms: number; degraded: string[]; timings: Record<string, number> } | null = null;

async function bigClient() {
  for (let i = 0; performance.now() < end; i++) {
    const at = performance.now();
    const state = building;
    const r = await get(contextPath(queries[i % queries.length]!, size));
    const degraded: string[] = r.body.degraded ?? [];
    if (!first) {
      first = { ms: r.ms, degraded, timings: r.body.timings ?? {} };
      log(`first call for u-growth: ${r.ms.toFixed(1)} ms, degraded [${degraded.join(", ")}]`);
    }
    calls.big.push({ at: at - t0, ms: r.ms, degraded: degraded.length > 0, building: state });
    if (i % 200 === 199) log(`${i + 1} calls for u-growth`);
  }
}
async function smallClient() {
  const path = `/v1/sessions/${smallSession}/context?userId=u-small&budget=2000`;
  while (performance.now() < end) {
    const at = performance.now();
    const state = building;
    const r = await get(path);
    if (calls.small.length === 0) log(`first call for u-small: ${r.ms.toFixed(1)} ms, degraded [${(r.body.degraded ?? []).join(", ")}]`);
    calls.small.push({ at: at - t0, ms: r.ms, degraded: (r.body.degraded ?? []).length > 0, building: state });
    await new Promise((res) => setTimeout(res, 100));
  }
}
async function statusClient() {
  while (performance.now() < end) {
    const s = await get("/v1/status");
    const now = (s.body?.indexes?.building ?? 0) > 0;
    if (building !== now) log(`vector index building: ${now ? "yes" : "no"} (${((performance.now() - t0) / 1000).toFixed(2)} s after the start)`);
    building = now;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

try {
  await Promise.all([bigClient(), smallClient(), statusClient()]);
} catch (e) {
  await cleanUp();
  fail(e instanceof Error ? e.message : String(e));
}

const f = first as { ms: number; degraded: string[]; timings: Record<string, number> } | null;
if (f) {
  const slowest = Object.entries(f.timings)
    .filter(([k]) => k !== "total")
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(", ");
  log(`first u-growth call: ${f.ms.toFixed(1)} ms over HTTP; degraded [${f.degraded.join(", ")}]; slowest tiers (ms): ${slowest}`);
}
for (const name of ["big", "small"] as const) {
  for (const p of coldPhases(calls[name])) {
    log(
      `${name === "big" ? "u-growth" : "u-small "} ${p.phase.padEnd(13)} ${String(p.count).padStart(5)} calls from ${(p.fromMs / 1000).toFixed(1)} s: ` +
        `p50 ${p.p50.toFixed(1)} ms, p95 ${p.p95.toFixed(1)}, max ${p.max.toFixed(1)}; ${p.degraded} degraded`,
    );
  }
}
await cleanUp();
