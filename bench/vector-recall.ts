// Recall and speed of the embedded vector index's approximate tier (ivf.ts) against its
// exact scan, on hashing-embedder vectors of the synthetic chat that bench/strata-load.ts
// and bench/context.ts ingest.
//
//   node_modules/.bin/node bench/vector-recall.ts [--probe F] [sizes...]   (default: 10000 100000)
//
// For each size one user gets that many messages' vectors. Two indexes read the same table:
// one always exact, one with the approximate tier on for every size (exactBelowRows 0).
// Queries: 200 search-style queries (queryFor) and 200 user turns, searched for the top 50
// messages as hybrid search does. "recall@k" is the share of the exact top k the
// approximate top k holds (by id); "score recall@k" counts an approximate hit as right when
// its score reaches the exact k-th score, so that rows tied with it (the synthetic chat
// repeats itself a lot) are not counted as misses.

import { createLocalEmbedder } from "../lib/adapters/local/embedder.ts";
import { createLocalVectorIndex } from "../lib/adapters/local/vector-index.ts";
import { createPgliteClient } from "../lib/adapters/pglite/client.ts";
import { migrate } from "../lib/adapters/sql/migrations.ts";
import type { VectorMatch, VectorRecord } from "../lib/core/ports.ts";
import { messagesFor, queryFor, rng, turn } from "./strata-load.ts";
import { parseBenchArgs } from "./args.ts";

const { values: opts, positionals } = parseBenchArgs(import.meta.url, { options: { probe: { type: "string" } }, allowPositionals: true });
const sizes = positionals.map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 100_000);
const probeFraction = opts.probe === undefined ? undefined : Number(opts.probe);
const TOP = 50;
const tenantId = "t";
const userId = "u";

const embedder = createLocalEmbedder();
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

const qr = rng(5);
const queryTexts: string[] = [];
for (let i = 0; i < 200; i++) queryTexts.push(queryFor(qr));
for (let i = 0; i < 200; i++) queryTexts.push(turn(qr, 2 * i, "Ann").content);
const queries = await embedder.embed(queryTexts);

console.log("| rows | lists | build s | exact p50 ms | approx p50 ms | approx p95 ms | recall@10 | recall@40 | score recall@10 | score recall@40 |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const size of sizes) {
  const sql = await createPgliteClient({ dataDir: "memory://" });
  await migrate(sql);
  const exact = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
  const approx = createLocalVectorIndex({ sql, exactBelowRows: 0, ...(probeFraction ? { probeFraction } : {}) });
  const r = rng(11);
  for (let s = 0, have = 0; have < size; s++) {
    const msgs = messagesFor(r, `s${s}`, 0, Math.min(200, size - have), "Ann", 0);
    const vecs = await embedder.embed(msgs.map((m) => m.content));
    const records: VectorRecord[] = msgs.map((m, i) => ({
      tenantId, userId, sessionId: `s${s}`, kind: "message", id: m.id, model: embedder.model, vector: vecs[i]!,
    }));
    await exact.upsert(records);
    have += msgs.length;
  }
  const dims = queries[0]!.length;
  const t0 = performance.now();
  if (!(await approx.indexed(tenantId, userId, dims))) throw new Error("approximate index did not build");
  const build = (performance.now() - t0) / 1000;
  const lists = Math.max(1, Math.round(Math.sqrt(size)));
  const te: number[] = [], ta: number[] = [];
  let r10 = 0, r40 = 0, s10 = 0, s40 = 0;
  const ask = async (index: typeof exact, vector: Float32Array, times: number[]): Promise<VectorMatch[]> => {
    const t = performance.now();
    const out = await index.query({ tenantId, userId, vector, topK: TOP, kinds: ["message"] });
    times.push(performance.now() - t);
    return out;
  };
  for (const q of queries) {
    const e = await ask(exact, q, te);
    const a = await ask(approx, q, ta);
    const overlap = (k: number) => {
      const want = new Set(e.slice(0, k).map((m) => m.id));
      return a.slice(0, k).filter((m) => want.has(m.id)).length / Math.min(k, Math.max(1, want.size));
    };
    const byScore = (k: number) => {
      if (e.length === 0) return 1;
      const bar = e[Math.min(k, e.length) - 1]!.score;
      return a.slice(0, k).filter((m) => m.score >= bar).length / Math.min(k, e.length);
    };
    r10 += overlap(10); r40 += overlap(40); s10 += byScore(10); s40 += byScore(40);
  }
  const n = queries.length;
  te.sort((x, y) => x - y);
  ta.sort((x, y) => x - y);
  const f = (x: number) => (x / n).toFixed(3);
  console.log(`| ${size} | ${lists} | ${build.toFixed(1)} | ${percentile(te, 50).toFixed(2)} | ${percentile(ta, 50).toFixed(2)} | ${percentile(ta, 95).toFixed(2)} | ${f(r10)} | ${f(r40)} | ${f(s10)} | ${f(s40)} |`);
  await exact.close();
  await approx.close();
  await sql.close();
}
