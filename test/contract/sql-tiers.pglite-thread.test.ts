// The archive's and the graph's contracts against PGlite on a worker thread of its own
// (STRATA_PGLITE_THREAD=on): every statement, transaction and error of the two adapters goes
// through the thread's messages instead of PGlite in this thread.

import { afterAll } from "vitest";
import { createPgliteClient } from "../../lib/adapters/pglite/client.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { migrate } from "../../lib/adapters/sql/migrations.ts";
import { archiveContract } from "./archive.contract.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

let shared: Promise<SqlClient> | null = null;
function threaded(): Promise<SqlClient> {
  shared ??= (async () => {
    const sql = await createPgliteClient({ dataDir: "memory://", thread: true });
    if (!sql.onThread) throw new Error("the PGlite thread did not start");
    await migrate(sql);
    return sql;
  })();
  return shared;
}

archiveContract("pglite on its thread", async () => ({ archive: createSqlArchive({ sql: await threaded() }), cleanup: async () => {} }));
graphStoreContract("pglite on its thread", async () => ({ store: createSqlGraphStore({ sql: await threaded() }) }), { sessions: true });

afterAll(async () => {
  if (shared) await (await shared).close();
});
