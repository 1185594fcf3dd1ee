// Why the embedded vector tier is an in-process index persisted in PGlite, not a search
// inside PGlite: query latency and upsert throughput of both, on the same data.
//
//   node_modules/.bin/node bench/vector-index.ts [sizes...]   (default: 1000 5000 20000)
//
// For each size one user gets that many random unit vectors of 384 dims, mixed with as
// many rows of three other users. "local" is createLocalVectorIndex (warm: the user's
// matrix loaded; "load" is the first query, which reads the user's rows from the table).
// "sql" is the exact scan PGlite can do without pgvector: real[] rows and a dot product
// over unnest(), filtered by tenant and user through an index.

import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { createPgliteClient } from "../lib/adapters/pglite/client.ts";
import { createLocalVectorIndex } from "../lib/adapters/local/vector-index.ts";
import { migrate } from "../lib/adapters/sql/migrations.ts";
import type { VectorRecord } from "../lib/core/ports.ts";
import { unitVector as randomUnitVector, xorshift } from "./vectors.ts";
import { quantileOfSorted } from "./stats.ts";
import { positionalCounts } from "./args.ts";

const DIMS = 384;
const TOP_K = 10;
const BATCH = 100;
const OTHER_USERS = 3;
const sizes = positionalCounts(import.meta.url, "rows", [1_000, 5_000, 20_000]);

const random = xorshift(42);
const unitVector = () => randomUnitVector(DIMS, random);

async function timeQueries(n: number, run: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: quantileOfSorted(times, 0.5), p95: quantileOfSorted(times, 0.95) };
}

/** Whether this PGlite build ships a pgvector extension bundle. */
function pgliteHasVector(): boolean {
  const pkg = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const dist = dirname(pkg);
  return existsSync(`${dist}/vector.tar.gz`) || readdirSync(dist).some((f) => /^(pg)?vector/.test(f));
}

const sql = await createPgliteClient({ dataDir: "memory://" });
await migrate(sql);
await sql.exec(`
  create table bench_vectors (
    tenant_id text not null, user_id text not null, id text not null, embedding real[] not null,
    primary key (tenant_id, id)
  );
  create index bench_vectors_user on bench_vectors (tenant_id, user_id);
`);

const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);
const rows: string[][] = [];
console.log(`PGlite pgvector bundle present: ${pgliteHasVector() ? "yes" : "no"}; ${DIMS} dims, top ${TOP_K}, upserts in batches of ${BATCH}`);

for (const size of sizes) {
  const tenantId = `bench-${size}`;
  const users = ["target", ...Array.from({ length: OTHER_USERS }, (_, i) => `other-${i}`)];
  // Interleave users so the target's rows are spread through the table, as in real use.
  const records: VectorRecord[] = [];
  for (let i = 0; i < size * 2; i++) {
    const userId = i % 2 === 0 ? "target" : users[1 + ((i >> 1) % OTHER_USERS)]!;
    records.push({ tenantId, userId, sessionId: `s${i % 17}`, kind: "message", id: `m${i}`, model: "bench", vector: unitVector() });
  }

  const index = createLocalVectorIndex({ sql });
  let t0 = performance.now();
  for (let i = 0; i < records.length; i += BATCH) await index.upsert(records.slice(i, i + BATCH));
  const localRate = records.length / ((performance.now() - t0) / 1000);

  t0 = performance.now();
  for (let i = 0; i < records.length; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    await sql.query(
      `insert into bench_vectors (tenant_id, user_id, id, embedding)
       select $1, u, id, string_to_array(e, ',')::real[] from unnest($2::text[], $3::text[], $4::text[]) as t(u, id, e)
       on conflict (tenant_id, id) do update set embedding = excluded.embedding`,
      [tenantId, batch.map((r) => r.userId), batch.map((r) => r.id), batch.map((r) => Array.from(r.vector).join(","))],
    );
  }
  const sqlRate = records.length / ((performance.now() - t0) / 1000);
  await sql.exec("analyze bench_vectors; analyze vectors;");

  const queries = Array.from({ length: 200 }, unitVector);
  let q = 0;
  const next = () => queries[q++ % queries.length]!;

  // First query for the user: one select of its rows into the matrix.
  const cold = createLocalVectorIndex({ sql });
  t0 = performance.now();
  await cold.query({ tenantId, userId: "target", vector: next(), topK: TOP_K });
  const load = performance.now() - t0;

  const local = await timeQueries(200, () => index.query({ tenantId, userId: "target", vector: next(), topK: TOP_K }));
  const exact = await timeQueries(size >= 20_000 ? 10 : size >= 5_000 ? 20 : 40, () =>
    sql.query(
      `select id, (select sum(a * b) from unnest(embedding, $3::real[]) as t(a, b)) as score
       from bench_vectors where tenant_id = $1 and user_id = $2
       order by score desc limit ${TOP_K}`,
      [tenantId, "target", `{${Array.from(next()).join(",")}}`],
    ),
  );

  // Both must agree on the answer, or the comparison means nothing.
  const probe = next();
  const a = (await index.query({ tenantId, userId: "target", vector: probe, topK: TOP_K })).map((m) => m.id);
  const b = (
    await sql.query<{ id: string }>(
      `select id from bench_vectors where tenant_id = $1 and user_id = $2
       order by (select sum(a * b) from unnest(embedding, $3::real[]) as t(a, b)) desc limit ${TOP_K}`,
      [tenantId, "target", `{${Array.from(probe).join(",")}}`],
    )
  ).map((r) => r.id);
  const agree = a.join() === b.join() ? "yes" : "NO";

  rows.push([
    size.toLocaleString("en"),
    fmt(local.p50), fmt(local.p95), fmt(load),
    fmt(exact.p50), fmt(exact.p95),
    Math.round(localRate).toLocaleString("en"), Math.round(sqlRate).toLocaleString("en"), agree,
  ]);
  await index.close();
  await cold.close();
}

const head = ["user rows", "local p50 ms", "local p95 ms", "local load ms", "sql p50 ms", "sql p95 ms", "local upsert rows/s", "sql upsert rows/s", "same top 10"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(" | ")} |`;
console.log(line(head));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));
await sql.close();
