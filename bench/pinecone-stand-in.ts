// What a vector query costs the Pinecone stand-in (issue 8). The managed wiring's benchmarks
// run the stand-in on the same two cores as the server under test, so each query's CPU in the
// stand-in is taken from the server; real Pinecone spends it on its own machines. Starts the
// stand-in in a process of its own (bench/peers/stand-ins.ts, as bench/peers.ts does), fills
// one user's namespace through Strata's Pinecone adapter with the local hashing embedder's
// vectors of generated chat turns (with a second user's as many beside them, as a tenant
// holds several users), then asks the managed tier's query (topK 50, kind "message", the
// user's filter) for the growth queries, one at a time, and prints per size: the query's
// median and p95 through the adapter, and the stand-in's CPU a query (its process' user and
// system time over the queries, from /proc).
//
//   node_modules/.bin/node bench/pinecone-stand-in.ts [--sizes 1000,10000,100000] [--queries 400]

import { createLocalEmbedder } from "../lib/adapters/local/embedder.ts";
import { createPineconeVectorIndex } from "../lib/adapters/pinecone/vector-index.ts";
import type { VectorRecord } from "../lib/core/ports.ts";
import { benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { quantile } from "./stats.ts";
import { generateMessages, generateQueries } from "./peers/data.ts";
import { startStandInProcs } from "./peers/stand-in-procs.ts";
import { procStat } from "./proc-stat.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    sizes: { type: "string", default: "1000,10000,100000" },
    queries: { type: "string", default: "400" },
  },
});
const sizes = opts.sizes.split(",").map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 1)) benchUsageError(import.meta.url, `--sizes must be whole numbers of at least 1, got ${opts.sizes}`);
const queryCount = wholeNumber(import.meta.url, "--queries", opts.queries, 1);

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** The stand-in's CPU so far (user + system), in ms. */
function cpuMs(pid: number): number {
  const st = procStat(pid);
  if (!st) throw new Error(`the stand-in (pid ${pid}) has exited`);
  return st.cpuMs;
}

const standIn = await startStandInProcs({
  layout: "pinecone",
  onExit: (name, code, tail) => {
    process.stderr.write(`${name} exited (${code}): ${tail}\n`);
    process.exit(1);
  },
});
const { env } = standIn;
const standInPid = standIn.pids[0]!;

try {
  const embedder = createLocalEmbedder();
  const queries = generateQueries(8, queryCount);
  const rows: string[] = [];
  const tenantId = "bench";
  for (const size of [...sizes].sort((a, b) => a - b)) {
    // Each size in a namespace of its own (one per tenant): the users "u" and "other" of `size` turns each.
    const vectors = createPineconeVectorIndex({
      config: { apiKey: env.PINECONE_API_KEY!, indexHost: env.PINECONE_HOST!, namespacePrefix: `s${size}` },
    });
    const t0 = performance.now();
    let last = t0;
    for (const userId of ["u", "other"]) {
      const messages = generateMessages({ seed: userId === "u" ? 1 : 2, count: size, profile: "chat", prefix: `${userId}-` });
      for (let i = 0; i < messages.length; i += 500) {
        const batch = messages.slice(i, i + 500);
        const embedded = await embedder.embed(batch.map((m) => m.content));
        const records: VectorRecord[] = batch.map((m, k) => ({ tenantId, userId, sessionId: `${userId}-s${Math.floor((i + k) / 200)}`, kind: "message", id: `${userId}-${i + k}`, model: embedder.model, vector: embedded[k]! }));
        await vectors.upsert(records);
        if (performance.now() - last > 10_000) {
          log(`${size.toLocaleString()}: ${userId} ${(i + batch.length).toLocaleString()} / ${size.toLocaleString()} vectors written`);
          last = performance.now();
        }
      }
    }
    log(`${size.toLocaleString()} vectors a user written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const embeddedQueries = await embedder.embed(queries);
    // Warm: the first queries compile the stand-in's loops and fill its filter's rows.
    for (let i = 0; i < Math.min(50, queries.length); i++) await vectors.query({ tenantId, userId: "u", vector: embeddedQueries[i]!, topK: 50, kinds: ["message"] });
    const times: number[] = [];
    const cpu0 = cpuMs(standInPid);
    for (let i = 0; i < queries.length; i++) {
      const q0 = performance.now();
      const matches = await vectors.query({ tenantId, userId: "u", vector: embeddedQueries[i]!, topK: 50, kinds: ["message"] });
      times.push(performance.now() - q0);
      if (matches.length === 0) throw new Error(`query ${i} found nothing`);
    }
    const cpu = (cpuMs(standInPid) - cpu0) / queries.length;
    times.sort((a, b) => a - b);
    const row = `| ${size.toLocaleString()} | ${quantile(times, 0.5).toFixed(2)} | ${quantile(times, 0.95).toFixed(2)} | ${cpu.toFixed(2)} |`;
    log(`${size.toLocaleString()} vectors a user (${(2 * size).toLocaleString()} in the namespace): ${queries.length} queries, p50 ${quantile(times, 0.5).toFixed(2)} ms, p95 ${quantile(times, 0.95).toFixed(2)} ms, stand-in CPU ${cpu.toFixed(2)} ms a query`);
    rows.push(row);
    await vectors.close();
  }
  process.stdout.write(`\n| vectors a user | p50 ms | p95 ms | stand-in CPU ms a query |\n|---|---|---|---|\n${rows.join("\n")}\n`);
} finally {
  await standIn.stop();
}
