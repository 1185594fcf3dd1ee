// Search in process, without HTTP (issue 8): an embedded Strata holds the growth user of
// bench/peers.ts (the same generator, seeds and sessions of 100 "chat" messages) at --size
// messages; once the derived tiers are idle, hybridSearch answers the peers' search queries
// --calls times (limit 10, as the peers' search workload asks) and the CPU per call, the
// wall-clock percentiles and the median of each tier's timing are printed. CPU is this
// process' own (process.cpuUsage), which other load on the machine moves far less than
// wall-clock time; the HTTP server adds its own share on top (routing, JSON).
//
// --concurrency N keeps N calls in flight at once (calls/s is then the throughput of the
// process, as the HTTP server's would be without HTTP).
//
// --context times the context call instead, as the peers' growth workload makes it: on the
// user's last session, with the peers' queries and a budget of 4000 tokens.
//
// --write-every N writes a turn to the last session before every Nth timed call (untimed), as
// a user who is chatting does between the context calls: what a write leaves the next read
// to redo (the keyword corpus' statistics, its postings of the words written) is then part
// of the calls timed. The turns are written into the data directory, which later runs then
// refuse: use a copy of it.
//
// --data-dir keeps the embedded data (PGlite) in DIR instead of memory, so a later run with the
// same DIR and --size skips the ingest and the derived work. Run it with npm start's Node options
// (node --max-semi-space-size=64 bench/search.ts ...) to time the calls as the server makes them;
// a line of the output says which options the run had and which npm start gives.
//
// --switch NAME compares two ways of the same code in one run, query by query: each call sets
// globalThis[NAME] to true or false (a switch a temporary patch of lib/ reads), so that every
// query runs once each way, the way flipped for its second run (--calls must be twice the 400
// queries, or a multiple of 800); the median over the queries of the call's time with the
// switch on over off is printed, and of each tier's. Alternating by call alone would give each
// way a different half of the queries (query q runs at calls q and q + 400, of the same parity).
//
// --evict MB writes one byte in every 64 of a buffer of MB megabytes between the calls
// (untimed): each call then starts with the CPU's caches holding none of the user's data, as a
// server's call does after the wait for its next request on a shared machine (the host gives
// the idle core to other work). A large user's call touches far more memory than a small
// one's, so what it costs in cold misses grows with the user where a warm loop hides it.
//
// --cpu-prof writes a V8 profile of the timed calls alone to FILE (bench/cpuprofile-top.ts
// summarises it); --alloc-prof samples what they allocate, garbage included
// (bench/heapprofile-top.ts summarises it).
//
//   node_modules/.bin/node [--max-semi-space-size=64] bench/search.ts [--size 10000] [--calls 1000] [--limit 10] [--context] [--concurrency 1]
//                                                                  [--write-every N] [--data-dir DIR] [--settle S] [--evict MB] [--cpu-prof FILE] [--alloc-prof FILE] [--switch NAME]

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_TENANT } from "../lib/config.ts";
import { assembleContext } from "../lib/core/services/context.ts";
import { ingestMessages } from "../lib/core/services/ingest.ts";
import { denseSums } from "../lib/core/bm25-sums.ts";
import { hybridSearch } from "../lib/core/services/search.ts";
import { HEAP_FLAGS } from "../lib/heap.ts";
import { awaitVectorIndex, drain, openBenchStrata, startAllocationProfile, startProfile, watchGc } from "./in-process.ts";
import { noteTimings, quantile, tierMedians } from "./stats.ts";
import { generateMessages, generateQueries } from "./peers/data.ts";
import { npmStartScript } from "./start-script.ts";
import { parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    size: { type: "string", default: "10000" },
    calls: { type: "string", default: "1000" },
    limit: { type: "string", default: "10" },
    context: { type: "boolean", default: false },
    concurrency: { type: "string", default: "1" },
    "write-every": { type: "string", default: "0" },
    settle: { type: "string", default: "0" },
    evict: { type: "string", default: "0" },
    "data-dir": { type: "string" },
    "cpu-prof": { type: "string" },
    "alloc-prof": { type: "string" },
    switch: { type: "string" },
  },
});

const size = Number(opts.size);
const calls = Number(opts.calls);
const limit = Number(opts.limit);
const concurrency = Number(opts.concurrency);
const writeEvery = Number(opts["write-every"]);
const user = "u-growth";
const SESSION_SIZE = 100;

const QUERY_COUNT = 400;
const switchName = opts.switch;
if (switchName !== undefined && (calls % (2 * QUERY_COUNT) !== 0 || Number(opts.concurrency) !== 1)) {
  throw new Error(`--switch needs --calls a multiple of ${2 * QUERY_COUNT} (each query once each way) and --concurrency 1`);
}
/** --switch: call i's way, flipped on the second run of its query. */
const switchedOn = (i: number) => (i % 2 === 0) !== (Math.floor(i / QUERY_COUNT) % 2 === 1);

const dataDir = opts["data-dir"];
const { strata, reuse, done } = await openBenchStrata(dataDir, "search-bench.json", JSON.stringify({ size }));
try {
  const t0 = performance.now();
  let lastLog = Date.now();
  for (let s = 0; !reuse && s * SESSION_SIZE < size; s++) {
    const from = s * SESSION_SIZE;
    const messages = generateMessages({ seed: 1000 + s, count: Math.min(size, from + SESSION_SIZE) - from, profile: "chat", prefix: "g", start: from });
    await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: `g-${s}`, userId: user, messages });
    if (Date.now() - lastLog > 10_000) {
      process.stdout.write(`ingested ${Math.min(size, from + SESSION_SIZE).toLocaleString()} / ${size.toLocaleString()}\n`);
      lastLog = Date.now();
    }
  }
  await drain(strata);
  done();
  process.stdout.write(`user of ${size} messages ${reuse ? `reused from ${dataDir}` : "ingested and derived"} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const queries = generateQueries(8, QUERY_COUNT);
  const lastSession = `g-${Math.floor((size - 1) / SESSION_SIZE)}`;
  // Written turns continue the last session's: ids and times after every turn of the user.
  let written = 0;
  const writeTurn = async () => {
    const messages = generateMessages({ seed: 7_000_000 + written, count: 1, profile: "chat", prefix: "g", start: size + written++ });
    await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: lastSession, userId: user, messages });
  };
  if (writeEvery > 0 && dataDir) writeFileSync(join(dataDir, "search-bench.json"), JSON.stringify({ size, written: "turns written by --write-every" }));
  const search = opts.context
    ? async (i: number) => {
        const out = await assembleContext(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: lastSession, userId: user, query: queries[i % queries.length]!, budget: 4000 });
        return { timings: out.timings, hits: out.recalled.map((m) => ({ message: m })) };
      }
    : (i: number) => hybridSearch(strata.deps, { tenantId: DEFAULT_TENANT, userId: user, query: queries[i % queries.length]!, limit });
  for (let i = 0; i < 50; i++) await search(i);
  await awaitVectorIndex(strata, user);
  // An index build leaves garbage (a reorder's old blocks): --settle waits that many seconds
  // before timing, so that the collection it brings on is not counted against the calls.
  if (Number(opts.settle) > 0) await new Promise((resolve) => setTimeout(resolve, Number(opts.settle) * 1000));
  const evictMb = Number(opts.evict);
  if (!(evictMb >= 0)) throw new Error(`--evict must be a number of megabytes ≥ 0, got ${opts.evict}`);
  const evictBuffer = new Uint8Array(Math.round(evictMb * 2 ** 20));
  const evict = () => {
    for (let k = 0; k < evictBuffer.length; k += 64) evictBuffer[k] = (evictBuffer[k]! + 1) & 255;
  };
  const ms: number[] = [];
  const tiers = new Map<string, number[]>();
  /** --switch: per query, its call's time and tiers each way. */
  const ways = new Map<number, { on?: Record<string, number>; off?: Record<string, number> }>();
  let first = "";
  const stopProfile = await startProfile(opts["cpu-prof"]);
  const stopAllocations = await startAllocationProfile(opts["alloc-prof"]);
  const gc = watchGc(() => calls);
  // BM25's WebAssembly sums (null where they do not run): how often the timed calls copied a
  // common word's postings into its arena (again after a write: --write-every), and emptied it.
  const sums = denseSums();
  const sums0 = sums && { copies: sums.copies, resets: sums.resets };
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < calls; i = next++) {
        if (writeEvery > 0 && i % writeEvery === 0) await writeTurn();
        if (switchName !== undefined) (globalThis as Record<string, unknown>)[switchName] = switchedOn(i);
        if (evictBuffer.length) evict();
        const t = performance.now();
        const out = await search(i);
        const took = performance.now() - t;
        ms.push(took);
        if (switchName !== undefined) {
          const way = ways.get(i % queries.length) ?? ways.set(i % queries.length, {}).get(i % queries.length)!;
          way[switchedOn(i) ? "on" : "off"] = { call: took, ...out.timings };
        }
        noteTimings(tiers, out.timings);
        if (i === 0) first = out.hits.map((h) => h.message.id).join(",");
      }
    }),
  );
  const wall = performance.now() - w0;
  const cpu = process.cpuUsage(c0);
  await stopProfile();
  await stopAllocations();
  // Entries reach the observer some turns after their collection (and none while the calls
  // keep the loop from its check phase): give them time.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const gcLine = gc();
  const q = quantile;
  process.stdout.write(
    `${opts.context ? "context, budget 4000" : `search, limit ${limit}`}, ${calls} calls: CPU ${((cpu.user + cpu.system) / 1000 / calls).toFixed(3)} ms/call (every thread of the process); ${((calls / wall) * 1000).toFixed(1)} calls/s at ${concurrency} concurrent; p50 ${q(ms, 0.5).toFixed(2)} ms, p95 ${q(ms, 0.95).toFixed(2)} ms, p99 ${q(ms, 0.99).toFixed(2)} ms\n`,
  );
  if (written) process.stdout.write(`${written} turns written between the calls\n`);
  if (sums && sums0) process.stdout.write(`BM25 sums' arena over the timed calls: ${sums.copies - sums0.copies} terms' postings copied, emptied ${sums.resets - sums0.resets} times\n`);
  process.stdout.write(`${tierMedians(tiers)}\n`);
  if (switchName !== undefined) {
    const ratios = new Map<string, number[]>();
    for (const { on, off } of ways.values()) {
      for (const [k, v] of Object.entries(on ?? {})) {
        const base = off?.[k];
        if (base && base > 0) (ratios.get(k) ?? ratios.set(k, []).get(k)!).push(v / base);
      }
    }
    const line = [...ratios].map(([k, v]) => `${k} ${quantile(v, 0.5).toFixed(3)}`).join(", ");
    process.stdout.write(`${switchName} on over off, median over ${ways.size} queries: ${line}\n`);
  }
  process.stdout.write(`${gcLine}\n`);
  process.stdout.write(`first query's hits: ${first}\n`);
  process.stdout.write(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, heap used ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB\n`);
  // The server runs with npm start's Node options (package.json's start script): say whether this run did.
  process.stdout.write(`node options: ${process.execArgv.join(" ") || "none"} (npm start: ${npmStartScript()}), and ${HEAP_FLAGS.join(" ")} set at start (lib/heap.ts; the semi-space size set back applies to the worker threads started after, not to this thread)\n`);
} finally {
  await strata.close();
}
