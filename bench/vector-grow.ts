// What a write costs the embedded vector index when a large user's matrix has to grow: the
// user's rows are loaded (the first query after a start, or after an eviction), then vectors
// are written one at a time, as a chat's turns are embedded, and each write is timed. The
// matrix a load makes has room for the rows it read, so the first write after it grows it.
//
//   node_modules/.bin/node bench/vector-grow.ts [rows ...]   (default: 10000 50000 100000)
//
// Every user is alone in a fresh in-memory PGlite; its rows are put in the `vectors` table with
// one statement (the same random unit vector for each: the scan is not what is timed). Writes go
// through the index's upsert: the table first, then the matrix. Printed per size: the load, the
// first write after it, the median, p99 and slowest of WRITES writes, and the process' RSS.

import { createPgliteClient } from "../lib/adapters/pglite/client.ts";
import { createLocalVectorIndex } from "../lib/adapters/local/vector-index.ts";
import { migrate } from "../lib/adapters/sql/migrations.ts";
import { quantileOfSorted as quantile } from "./stats.ts";
import { fmtMs as fmt, rssMb, unitVector as randomUnitVector, xorshift } from "./vectors.ts";
import { positionalCounts } from "./args.ts";

const DIMS = 512;
const WRITES = 2000;
const sizes = positionalCounts(import.meta.url, "rows", [10_000, 50_000, 100_000]);

const random = xorshift(7);
const unitVector = () => randomUnitVector(DIMS, random);

console.log(`${DIMS} dims; per size: load (first query), first write after it, then ${WRITES} single writes`);
console.log("rows\tload ms\tfirst write ms\twrite p50 ms\twrite p99 ms\tslowest ms\tRSS MB");
for (const size of sizes) {
  const sql = await createPgliteClient({ dataDir: "memory://" });
  await migrate(sql);
  const tenantId = "bench";
  const userId = "target";
  const bytes = Buffer.from(unitVector().buffer);
  await sql.query(
    `insert into vectors (tenant_id, kind, id, user_id, session_id, model, dims, embedding)
     select $1, 'message', 'm' || g, $2, 's' || (g / 100), 'bench', $3, $4::bytea from generate_series(1, $5) as g`,
    [tenantId, userId, DIMS, bytes, size],
  );
  // Exact scans only: the approximate tier's build is not what is measured here.
  const index = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
  let t0 = performance.now();
  await index.query({ tenantId, userId, vector: unitVector(), topK: 10 });
  const load = performance.now() - t0;
  const times: number[] = [];
  let lastLog = Date.now();
  for (let i = 0; i < WRITES; i++) {
    const vector = unitVector();
    t0 = performance.now();
    await index.upsert([{ tenantId, userId, sessionId: "new", kind: "message", id: `new${i}`, model: "bench", vector }]);
    times.push(performance.now() - t0);
    if (Date.now() - lastLog > 10_000) {
      process.stderr.write(`${size} rows: ${i + 1} / ${WRITES} writes\n`);
      lastLog = Date.now();
    }
  }
  const first = times[0]!;
  const sorted = [...times].sort((a, b) => a - b);
  console.log([size, fmt(load), fmt(first), fmt(quantile(sorted, 0.5)), fmt(quantile(sorted, 0.99)), fmt(sorted[sorted.length - 1]!), rssMb()].join("\t"));
  await index.close?.();
  await sql.close();
}
