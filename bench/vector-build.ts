// What building a large user's approximate vector index costs the requests that arrive while
// it runs. A user's rows are loaded (the first query after a start, or after an eviction),
// which starts the build in the background; queries then arrive one after another, each
// timed, until the index is ready, while an event-loop delay histogram records the longest
// time the thread was not free to take a request.
//
//   node_modules/.bin/node bench/vector-build.ts [rows ...]   (default: 100000)
//
// Every user is alone in a fresh in-memory PGlite, its rows random unit vectors of 512
// dimensions (a fifth of them non-zero, as the hashing embedder's are) put in the `vectors`
// table with one statement each 10k. Printed per size: the load, how long until the index was
// ready, the event loop's delay (p50, p99, longest) meanwhile, the queries answered meanwhile
// and their p50, p99 and slowest, and the process' RSS.

import { monitorEventLoopDelay } from "node:perf_hooks";
import { createPgliteClient } from "../lib/adapters/pglite/client.ts";
import { createLocalVectorIndex } from "../lib/adapters/local/vector-index.ts";
import { migrate } from "../lib/adapters/sql/migrations.ts";
import { quantileOfSorted as quantile } from "./stats.ts";
import { fmtMs as fmt, rssMb, xorshift } from "./vectors.ts";
import { positionalCounts } from "./args.ts";

const DIMS = 512;
const sizes = positionalCounts(import.meta.url, "rows", [100_000]);

const random = xorshift(11);
/** A unit vector with about a fifth of its dimensions non-zero. */
function sparseUnit(): Float32Array {
  const v = new Float32Array(DIMS);
  let norm = 0;
  for (let d = 0; d < DIMS; d++) {
    if (random() < 0.2) {
      v[d] = random() - 0.5;
      norm += v[d]! * v[d]!;
    }
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let d = 0; d < DIMS; d++) v[d]! *= scale;
  return v;
}

console.log(`${DIMS} dims; per size: load (first query), then queries one after another until the index is ready`);
console.log("rows\tload ms\tbuild s\tloop delay p50 / p99 / max ms\tqueries\tquery p50 / p99 / max ms\tRSS MB");
for (const size of sizes) {
  const sql = await createPgliteClient({ dataDir: "memory://" });
  await migrate(sql);
  const tenantId = "bench";
  const userId = "target";
  const CHUNK = 10_000;
  for (let start = 0; start < size; start += CHUNK) {
    const n = Math.min(CHUNK, size - start);
    const blobs = Array.from({ length: n }, () => Buffer.from(sparseUnit().buffer));
    await sql.query(
      `insert into vectors (tenant_id, kind, id, user_id, session_id, model, dims, embedding)
       select $1, 'message', 'm' || ($3::int + g), $2, 's' || (($3::int + g) / 100), 'bench', $4, ($5::bytea[])[g]
       from generate_series(1, $6::int) as g`,
      [tenantId, userId, start, DIMS, blobs, n],
    );
    process.stderr.write(`${size} rows: ${start + n} stored\n`);
  }
  const index = createLocalVectorIndex({ sql });
  let t0 = performance.now();
  await index.query({ tenantId, userId, vector: sparseUnit(), topK: 10 });
  const load = performance.now() - t0;
  const building = performance.now();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const times: number[] = [];
  let lastLog = Date.now();
  while (index.indexState(tenantId, userId) === "building") {
    const vector = sparseUnit();
    t0 = performance.now();
    await index.query({ tenantId, userId, vector, topK: 10 });
    times.push(performance.now() - t0);
    // A request's worth of other work between queries, so that the build gets its turns.
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (Date.now() - lastLog > 5_000) {
      process.stderr.write(`${size} rows: building, ${times.length} queries so far\n`);
      lastLog = Date.now();
    }
  }
  delay.disable();
  const built = (performance.now() - building) / 1000;
  const sorted = [...times].sort((a, b) => a - b);
  const ms = (ns: number) => ns / 1e6;
  console.log(
    [
      size,
      fmt(load),
      built.toFixed(1),
      `${fmt(ms(delay.percentile(50)))} / ${fmt(ms(delay.percentile(99)))} / ${fmt(ms(delay.max))}`,
      times.length,
      `${fmt(quantile(sorted, 0.5))} / ${fmt(quantile(sorted, 0.99))} / ${fmt(sorted[sorted.length - 1] ?? 0)}`,
      rssMb(),
    ].join("\t"),
  );
  await index.close?.();
  await sql.close();
}
