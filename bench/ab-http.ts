// Two builds of Strata side by side over HTTP: each checkout's `strata serve` (npm start's
// Node options) on its own copy of one data directory, and the growth workload's context calls
// (bench/peers.ts: the user's last session, the peers' queries, a budget of 4000 tokens)
// sent to one and then the other, query by query, in alternating order. On a shared machine
// whose speed drifts from one minute to the next, two runs one after the other compare the
// minutes as much as the code; here both builds see the same minutes. Two servers of the same
// build still do not time alike (the place a server holds biases it), so there are two rounds,
// each build holding each place once, and the median per-query ratios of the two rounds are
// combined by their geometric mean.
//
//   node bench/ab-http.ts --a ../base --b . --data DIR [--size 100000] [--calls 400] [--settle 10] [--warm 400]
//   node bench/ab-http.ts --a . --b . --data DIR_1K --data-b DIR_100K --warm 15000 --calls 1000
//   node bench/ab-http.ts --a . --b . --data DIR --env-b NAME=VALUE [--env-b ...]
//   node bench/ab-http.ts --a ../base --b . --data DIR --queries FILE
//
// DIR is a data directory bench/search.ts built (`--data-dir DIR --size N`: user "u-growth",
// sessions of 100 turns; --size defaults to the size it was built with). A PGlite directory
// serves one process: the second server gets a copy, made here and removed afterwards. With
// --data-b, B runs on that directory instead, of its own size: one build on two sizes of the
// user side by side, the growth workload's ratio (100k over 1k) measured in the same minutes.
// Both servers load the user at once, and one ready before the other (the 1k server beside a
// 100k one, a minute earlier) keeps answering untimed calls until both are. After the settle,
// --warm query pairs (other queries of the same kinds) go to both, alternated and untimed.
// Loaded one after the other, with 400 warm pairs, the server started first timed slower
// whichever build it ran (B/A 0.86–0.91 with A first, 1.07–1.09 with B first, and 0.93–0.95
// against 1.06–1.09 on the twenty-first round's day): it had waited idle for a minute. Loaded
// at once, an A/A run on the 100k directory read 0.991 and 0.977. The growth ratio with both
// servers busy throughout read 1.78–2.03, and 1.86 in both rounds with --warm 15000, where the
// old protocol's 1k server, idle for a minute or barely warm, had read 1.6 (BENCHMARKS.md,
// twentieth and twenty-first rounds).
// A checkout needs its own node_modules (a worktree can link the main one). --env-a and
// --env-b (NAME=VALUE, repeatable) add to one server's environment: one build under two
// settings of its process (a C library tunable, say) side by side. --queries FILE (a JSON array
// of strings) times those queries, in their order and round again, instead of the peers' 400.

import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { noteTimings, pairedRatio, quantile, tierMedians } from "./stats.ts";
import { generateQueries } from "./peers/data.ts";
import { abBuilds, builtSize, contextPath, getJson, readyForCalls, spawnServe, warmQueriesFor, watchServer, type WatchedServer } from "./serve-client.ts";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    a: { type: "string" },
    b: { type: "string", default: "." },
    data: { type: "string" },
    "data-b": { type: "string" },
    size: { type: "string" },
    calls: { type: "string", default: "400" },
    settle: { type: "string", default: "10" },
    warm: { type: "string", default: "400" },
    port: { type: "string", default: "8901" },
    "env-a": { type: "string", multiple: true, default: [] },
    "env-b": { type: "string", multiple: true, default: [] },
    queries: { type: "string" },
  },
});

/** A command line the tool cannot use: the message and the header's command lines, exit 2. */
function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

/** --queries' file: a JSON array of one or more strings. */
function readQueries(file: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    return usage(`--queries ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((q) => typeof q === "string" && q.trim() !== "")) {
    return usage(`--queries ${file} must hold a JSON array of one or more non-empty strings`);
  }
  return parsed;
}

/** A run that went wrong after its command line was accepted: exit 1. */
function fail(message: string): never {
  return benchFailure(import.meta.url, message);
}

if (!opts.a || !opts.data) usage("--a and --data are required (see the header of bench/ab-http.ts)");
const calls = wholeNumber(import.meta.url, "--calls", opts.calls, 1, { of: "context calls" });
const settle = Number(opts.settle);
const port = Number(opts.port);
if (!(settle >= 0)) usage(`--settle must be a number of seconds ≥ 0, got ${opts.settle}`);
const warmPairs = wholeNumber(import.meta.url, "--warm", opts.warm, 0, { of: "query pairs" });
const queries = opts.queries ? readQueries(opts.queries) : generateQueries(8, 400);
const { roots, env: extraEnv } = abBuilds({ a: opts.a, b: opts.b!, envA: opts["env-a"]!, envB: opts["env-b"]! }, usage);
const data = resolve(opts.data);
const builtA = builtSize("--data", data, usage);
const dataB = opts["data-b"] === undefined ? null : resolve(opts["data-b"]);
if (dataB === data) usage("--data-b must be another directory than --data (one PGlite directory serves one process)");
const sizeA = opts.size === undefined ? builtA : wholeNumber(import.meta.url, "--size", opts.size, 1, { of: "messages" });
const sizes = { A: sizeA, B: dataB ? builtSize("--data-b", dataB, usage) : sizeA };

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const copyRoot = mkdtempSync(join(tmpdir(), "strata-ab-"));
// B's directory: its own, or a copy of A's.
const dirB = dataB ?? join(copyRoot, "data");
if (!dataB) {
  log(`copying ${data} for B`);
  cpSync(data, dirB, { recursive: true });
}

const agent = new Agent({ keepAlive: true, maxSockets: 2 });
const get = (p: number, path: string) => getJson(agent, p, path);

const servers: { name: "A" | "B"; port: number; server: WatchedServer }[] = [];
function start(name: "A" | "B", root: string, dir: string, p: number) {
  const server = watchServer(spawnServe(root, dir, p, { env: extraEnv[name] }), async (how) => {
    await stopAll();
    fail(`server ${name} (${root}) ${how} before the run ended`);
  });
  servers.push({ name, port: p, server });
}
/** Stops the servers (each waited for), then removes B's copy of the directory. */
const stopAll = async () => {
  agent.destroy();
  await Promise.all(servers.map((s) => s.server.stop()));
  rmSync(copyRoot, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  void stopAll().finally(() => process.exit(130));
});

// --warm's queries: of the same kinds and words, none of them a timed query's string.
const warmQueries = warmQueriesFor(queries);
const median = (xs: readonly number[]) => quantile(xs, 0.5);

/** Starts both builds (`first` on the original directory, the first port, started first), times them, stops them; B/A per query's median. */
async function round(first: "A" | "B"): Promise<number> {
  const second = first === "A" ? "B" : "A";
  servers.length = 0;
  const dirs = { A: data, B: dirB };
  start(first, roots[first], dirs[first], port);
  start(second, roots[second], dirs[second], port + 1);
  // Both load the user at once (the first calls load it), and one that is ready before the
  // other goes on answering untimed calls until both are: loaded one after the other, the
  // first server waited idle for a minute at 100k, and it then timed slower whichever build
  // it ran (the place bias of BENCHMARKS.md, twentieth and twenty-first rounds).
  let loading = servers.length;
  await Promise.all(
    servers.map(async (s) => {
      const t0 = Date.now();
      try {
        await readyForCalls(
          (p) => get(s.port, p),
          Array.from({ length: 30 }, (_, i) => contextPath(queries[i % queries.length]!, sizes[s.name])),
        );
      } catch (e) {
        // Thrown rather than fail(): the run's finally stops both servers and removes the copy.
        throw new Error(`server ${s.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
      log(`server ${s.name} (${roots[s.name]}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      loading--;
      for (let i = 0; loading > 0; i++) await get(s.port, contextPath(warmQueries[i % warmQueries.length]!, sizes[s.name]));
    }),
  );
  if (settle > 0) await new Promise((r) => setTimeout(r, settle * 1000));
  for (let i = 0; i < warmPairs; i++) {
    const q = warmQueries[i % warmQueries.length]!;
    for (const s of i % 2 === 0 ? servers : [...servers].reverse()) await get(s.port, contextPath(q, sizes[s.name]));
  }
  // Each call's time at the client, and the server's timings from its answer (total included).
  const newRun = () => ({ ms: [] as number[], timings: new Map<string, number[]>() });
  const runs = { A: newRun(), B: newRun() };
  for (let i = 0; i < calls; i++) {
    const q = queries[(i + 30) % queries.length]!;
    const order = i % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) {
      const r = await get(s.port, contextPath(q, sizes[s.name]));
      runs[s.name].ms.push(r.ms);
      noteTimings(runs[s.name].timings, r.body.timings);
    }
    if ((i + 1) % 100 === 0 && i + 1 < calls) log(`${i + 1} / ${calls} query pairs`);
  }
  await Promise.all(servers.map((s) => s.server.stop()));
  const ratio = pairedRatio(runs.A.ms, runs.B.ms);
  const envText = (name: "A" | "B") => Object.entries(extraEnv[name]).map(([k, v]) => ` ${k}=${v}`).join("");
  const line = (name: "A" | "B") =>
    `${name} ${roots[name]}${envText(name)} on ${sizes[name].toLocaleString()} messages: p50 ${median(runs[name].ms).toFixed(2)} ms, p95 ${quantile(runs[name].ms, 0.95).toFixed(2)} ms; server's own total p50 ${median(runs[name].timings.get("total") ?? []).toFixed(2)} ms`;
  // The server's steps (the answer's timings; the tiers run at once, so they overlap and do
  // not add up to the total): where the two servers' own times differ. A step a call skipped
  // is not counted, so its median is over the calls that ran it.
  const stepsLine = (name: "A" | "B") => `${name}'s ${tierMedians(runs[name].timings, 3)}`;
  log(`${first} first: ${calls} context calls each, alternated query by query:`);
  log(line("A"));
  log(line("B"));
  log(stepsLine("A"));
  log(stepsLine("B"));
  log(`median of B/A per query: ${ratio.toFixed(3)}`);
  return ratio;
}

try {
  // Two servers of one build do not time alike: in this machine's A/A runs the one started
  // second, on the copy, read 0.87 and 0.95 of the first. So each build takes each place once,
  // and the two rounds' ratios are combined (their geometric mean), which cancels a bias of
  // the place whichever build holds it.
  const r1 = await round("A");
  const r2 = await round("B");
  log(`B/A: ${r1.toFixed(3)} with A first, ${r2.toFixed(3)} with B first; combined ${Math.sqrt(r1 * r2).toFixed(3)}`);
} finally {
  await stopAll();
}
