// What the embedded in-process indexes hold for one user: the graph index (graph-index.ts) and
// the keyword corpus (keyword-index.ts) of the user a data directory holds, each loaded alone
// into a fresh index, with the V8 heap they keep after full collections and the time the load
// took. The heap the server walks in every collection, and most of the RSS it reports beside
// PGlite's own memory, is these.
//
//   node_modules/.bin/node --expose-gc bench/index-heap.ts --data DIR [--dir CHECKOUT] [--user u-growth] [--indexes graph,keyword]
//
// DIR is a data directory `strata serve` or bench/search.ts wrote (`--data-dir DIR`); it is
// copied first (a PGlite directory serves one process) and the copy removed afterwards.
// `--dir` loads another checkout's lib/ (the commit before a change, say) on the same data.
// Each index is loaded in turn and dropped before the next; the heap held is heapUsed after
// two forced collections, less heapUsed before the load.

import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { benchUsageError, parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    data: { type: "string" },
    dir: { type: "string", default: "." },
    user: { type: "string", default: "u-growth" },
    indexes: { type: "string", default: "graph,keyword" },
  },
});
const usage = (message: string): never => benchUsageError(import.meta.url, message);
const indexes = opts.indexes!.split(",").map((s) => s.trim());
for (const name of indexes) if (name !== "graph" && name !== "keyword") usage(`--indexes takes graph and keyword, got ${name}`);
if (!opts.data) usage("--data is required");
const data = resolve(opts.data!);
if (!existsSync(join(data, "pg"))) usage(`--data ${data} holds no PGlite archive (no pg/ in it)`);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) usage("run it with node --expose-gc (the heap is read after forced collections)");
const dir = resolve(opts.dir!);

// Typed as this checkout's modules; loaded from --dir's.
const { createPgliteClient } = (await import(`${dir}/lib/adapters/pglite/client.ts`)) as typeof import("../lib/adapters/pglite/client.ts");
const { withGraphIndex } = (await import(`${dir}/lib/adapters/local/graph-index.ts`)) as typeof import("../lib/adapters/local/graph-index.ts");
const { createSqlGraphStore } = (await import(`${dir}/lib/adapters/sql/graph-store.ts`)) as typeof import("../lib/adapters/sql/graph-store.ts");
const { createLocalKeywordIndex } = (await import(`${dir}/lib/adapters/local/keyword-index.ts`)) as typeof import("../lib/adapters/local/keyword-index.ts");

const copy = mkdtempSync(join(tmpdir(), "index-heap-"));
const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
try {
  log(`copying ${data}`);
  cpSync(data, copy, { recursive: true });
  const sql = await createPgliteClient({ dataDir: join(copy, "pg") });
  const [row] = await sql.query<{ tenant_id: string }>("select tenant_id from messages where user_id = $1 limit 1", [opts.user]);
  if (!row) throw new Error(`${data} holds no messages of user ${opts.user}`);
  const tenantId = row.tenant_id;
  const heldMb = () => {
    gc!();
    gc!();
    return process.memoryUsage().heapUsed / 2 ** 20;
  };
  log(`checkout ${dir}, user ${opts.user}`);
  for (const name of indexes) {
    const before = heldMb();
    const t0 = performance.now();
    let index: unknown;
    let what: string;
    if (name === "graph") {
      const graph = withGraphIndex(createSqlGraphStore({ sql }), { sql, maxRows: Number.MAX_SAFE_INTEGER });
      await graph.facts({ tenantId, userId: opts.user, terms: ["load"], limit: 1 });
      index = graph;
      const [c] = await sql.query<{ e: number; m: number; r: number; x: number }>(
        `select (select count(*) from entities where tenant_id = $1 and user_id = $2)::int e, (select count(*) from mentions where tenant_id = $1 and user_id = $2)::int m,
                (select count(*) from relations where tenant_id = $1 and user_id = $2)::int r, (select count(*) from relation_evidence where tenant_id = $1 and user_id = $2)::int x`,
        [tenantId, opts.user],
      );
      what = `${c!.e.toLocaleString()} entities, ${c!.m.toLocaleString()} mentions, ${c!.r.toLocaleString()} relations, ${c!.x.toLocaleString()} evidence rows`;
    } else {
      const keywords = createLocalKeywordIndex({ sql });
      const corpus = await keywords.corpus(tenantId, opts.user);
      index = keywords;
      what = `${corpus.size.toLocaleString()} turns`;
    }
    const ms = performance.now() - t0;
    const held = heldMb() - before;
    log(`${name}: ${what}; loaded in ${(ms / 1000).toFixed(1)} s; heap held ${held.toFixed(1)} MB`);
    // Dropped before the next is measured.
    index = undefined;
    void index;
  }
  await sql.close();
} finally {
  rmSync(copy, { recursive: true, force: true });
}
