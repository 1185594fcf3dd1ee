// The SQL written once for PGlite (graph tables, vector persistence, the outbox queue) run on
// real Postgres 15 through the Neon driver and its stand-in, so nothing in it is PGlite-only.
// Graph and vectors run twice, every single statement over HTTP, then every one over a
// pooled WebSocket session (the default transport mixes the two: see archive.neon.int.test.ts).

import { afterAll } from "vitest";
import { withGraphIndex } from "../../lib/adapters/local/graph-index.ts";
import { createLocalJobQueue } from "../../lib/adapters/local/job-queue.ts";
import { createLocalVectorIndex } from "../../lib/adapters/local/vector-index.ts";
import { createNeonArchive } from "../../lib/adapters/neon/archive.ts";
import { createNeonSqlClient, type NeonSqlClient, type QueryTransport } from "../../lib/adapters/neon/client.ts";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { graphStoreContract } from "./graph-store.contract.ts";
import { jobQueueContract } from "./job-queue.contract.ts";
import { vectorIndexContract } from "./vector-index.contract.ts";

const db = neonDatabase();
const clients = new Map<QueryTransport, Promise<NeonSqlClient>>();
let migrated: Promise<void> | null = null;

/** The file's Neon client for a transport; the database is migrated through the first one. */
function neonSql(queryTransport: QueryTransport): Promise<NeonSqlClient> {
  let client = clients.get(queryTransport);
  if (!client) {
    client = (async () => {
      const sql = createNeonSqlClient((await db.get()).config({ queryTransport }));
      await (migrated ??= createNeonArchive({ sql }).migrate());
      return sql;
    })();
    clients.set(queryTransport, client);
  }
  return client;
}

afterAll(async () => {
  for (const c of clients.values()) await (await c).close();
  await db.close();
});

for (const transport of ["http", "websocket"] as const) {
  graphStoreContract(`neon (${transport})`, async () => ({ store: createSqlGraphStore({ sql: await neonSql(transport) }) }), { sessions: true });
  // The managed wiring's graph: the same tables read through the shared in-process index.
  graphStoreContract(`neon (${transport}) + shared in-process read index`, async () => {
    const sql = await neonSql(transport);
    return { store: withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true }) };
  }, { sessions: true });
  vectorIndexContract(`local over neon (${transport})`, async () => ({ store: createLocalVectorIndex({ sql: await neonSql(transport) }) }));
}

jobQueueContract("local (outbox runner) over neon", async () => {
  const archive = createNeonArchive({ sql: await neonSql("auto") });
  return {
    archive,
    makeQueue: ({ maxAttempts }) => createLocalJobQueue({ archive, maxAttempts, backoffMs: () => 50, pollMs: 50 }),
  };
});
