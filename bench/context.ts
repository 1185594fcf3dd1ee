// The context call in process, without HTTP (issue 8): an embedded Strata in memory holds the
// 738-turn ≈2 MB coding session of bench/strata-load.ts, in a user grown to --size messages;
// once the derived tiers are idle, assembleContext is called --calls times with no query (the
// last user turn is the query) and the CPU per call, the wall-clock percentiles and the median
// of each tier's timing are printed. CPU is this process' own (process.cpuUsage), which other
// load on the machine moves far less than wall-clock time.
//
// --max-words sets how many words of the last user turn the query keeps (0: all of it); with
// --compare, the recall of each cap is compared to that of the whole turn: how many of the
// whole turn's first 10 / 40 / 80 search hits the capped query also returns.
//
// --data-dir keeps the embedded data (PGlite) in DIR instead of memory: a later run with the same
// DIR, --size and --seed skips the ingest and the derived work (minutes at 100k) and loads the
// in-process indexes from what is stored. --cpu-prof writes a V8 profile of the timed calls
// alone (not the ingest) to FILE (bench/cpuprofile-top.ts summarises it).
//
//   node_modules/.bin/node bench/context.ts [--size 1000] [--calls 200] [--budget 2000] [--query TEXT]
//     [--max-words 32] [--compare 8,16,32,64] [--seed 42] [--data-dir DIR] [--cpu-prof FILE]

import { DEFAULT_TENANT } from "../lib/config.ts";
import { assembleContext, DEFAULT_CONTEXT_CONFIG, implicitQuery, type ContextConfig } from "../lib/core/services/context.ts";
import { ingestMessages } from "../lib/core/services/ingest.ts";
import { hybridSearch } from "../lib/core/services/search.ts";
import { terms } from "../lib/core/text.ts";
import { awaitVectorIndex, drain, openBenchStrata, startProfile } from "./in-process.ts";
import { noteTimings, quantile, tierMedians } from "./stats.ts";
import { messagesFor, rng, turn } from "./strata-load.ts";
import { parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    size: { type: "string", default: "1000" },
    calls: { type: "string", default: "200" },
    budget: { type: "string", default: "2000" },
    query: { type: "string" },
    "max-words": { type: "string" },
    compare: { type: "string" },
    seed: { type: "string", default: "42" },
    "data-dir": { type: "string" },
    "cpu-prof": { type: "string" },
  },
});

const seed = Number(opts.seed);
const size = Number(opts.size);
const calls = Number(opts.calls);
const budget = Number(opts.budget);
const day0 = Date.UTC(2026, 4, 1);
const user = "ctx";
const session = "long";

const dataDir = opts["data-dir"];
const { strata, reuse, done } = await openBenchStrata(dataDir, "context-bench.json", JSON.stringify({ size, seed }));
try {
  // The same long session as strata-load's context phase (same generator, same seed).
  const r = rng(seed + 4);
  const long = [];
  for (let i = 0; i < 738; i++) {
    const t = turn(r, i, "Ann");
    let content = t.content;
    while (content.length < 1800 + Math.floor(r() * 1800)) content += "\n" + turn(r, i, "Ann").content;
    long.push({ id: `long-${i}`, ...t, content, createdAt: new Date(day0 + i * 60_000).toISOString() });
  }
  const t0 = performance.now();
  for (let k = 0; !reuse && k < long.length; k += 100) {
    await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: session, userId: user, messages: long.slice(k, k + 100) });
  }
  const grow = rng(seed + 5 + size);
  for (let have = long.length, s = 0; !reuse && have < size; s++) {
    const len = Math.min(size - have, 200);
    const sid = `ctx-${size}-s${s}`;
    await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: sid, userId: user, messages: messagesFor(grow, sid, 0, len, "Ann", day0 - (s + 1) * 86_400_000) });
    have += len;
  }
  await drain(strata);
  done();
  process.stdout.write(`user of ${Math.max(size, long.length)} messages ${reuse ? `reused from ${dataDir}` : "ingested and derived"} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const input = { tenantId: DEFAULT_TENANT, sessionId: session, userId: user, budget, ...(opts.query ? { query: opts.query } : {}) };
  const config: ContextConfig = opts["max-words"] === undefined ? DEFAULT_CONTEXT_CONFIG : { ...DEFAULT_CONTEXT_CONFIG, implicitQuery: { maxWords: Number(opts["max-words"]) } };

  if (opts.compare) {
    const window = await strata.deps.archive.listMessages(DEFAULT_TENANT, session, { limit: strata.deps.settings.recentWindow });
    const last = [...window].reverse().find((m) => m.role === "user")!;
    const corpus = await strata.deps.keywords!.corpus(DEFAULT_TENANT, user);
    const exclude = new Set(window.map((m) => m.id));
    const hits = async (query: string) => (await hybridSearch(strata.deps, { tenantId: DEFAULT_TENANT, userId: user, query, limit: 80, exclude })).hits.map((h) => h.message.id);
    const whole = await hits(last.content);
    process.stdout.write(`last user turn: ${last.content.length} characters, ${new Set(terms(last.content)).size} distinct terms\n`);
    for (const n of opts.compare.split(",").map(Number)) {
      const q = implicitQuery(last, corpus, n);
      const got = await hits(q);
      const c0 = process.cpuUsage();
      for (let i = 0; i < 20; i++) await hits(q);
      const cpu = process.cpuUsage(c0);
      const shared = (k: number) => got.slice(0, k).filter((id) => whole.slice(0, k).includes(id)).length;
      process.stdout.write(
        `max ${n}: ${q.split(" ").length} words; of the whole turn's first 10/40/80 hits it returns ${shared(10)}/${shared(40)}/${shared(80)}; search CPU ${((cpu.user + cpu.system) / 1000 / 20).toFixed(2)} ms\n`,
      );
    }
  }

  for (let i = 0; i < 20; i++) await assembleContext(strata.deps, input, config);
  // A large user's vector queries come from the approximate index once it is built: time the steady state.
  await awaitVectorIndex(strata, user);
  const ms: number[] = [];
  const tiers = new Map<string, number[]>();
  let recalled = "";
  let tokens = 0;
  const stopProfile = await startProfile(opts["cpu-prof"]);
  const c0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    const out = await assembleContext(strata.deps, input, config);
    ms.push(performance.now() - t);
    noteTimings(tiers, out.timings);
    recalled = out.recalled.map((m) => m.id).join(",");
    tokens = out.tokens;
  }
  const cpu = process.cpuUsage(c0);
  await stopProfile();
  const q = quantile;
  process.stdout.write(
    `context, ${calls} calls, budget ${budget}: CPU ${((cpu.user + cpu.system) / 1000 / calls).toFixed(2)} ms/call; p50 ${q(ms, 0.5).toFixed(2)} ms, p95 ${q(ms, 0.95).toFixed(2)} ms, p99 ${q(ms, 0.99).toFixed(2)} ms; ${tokens} tokens\n`,
  );
  process.stdout.write(`${tierMedians(tiers)}\n`);
  process.stdout.write(`recalled: ${recalled}\n`);
  process.stdout.write(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, heap used ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB\n`);
} finally {
  await strata.close();
}
// The local extractor's worker thread outlives close(): leave once done.
process.exit(0);
