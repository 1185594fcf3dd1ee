import { afterAll } from "vitest";
import { withGraphIndex } from "../../lib/adapters/local/graph-index.ts";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { closeSharedPglite, sharedPglite } from "../fixtures/pglite.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

// The embedded wiring's graph: the SQL tables in PGlite, read through the in-process index.
graphStoreContract("pglite + in-process read index", async () => {
  const sql = await sharedPglite();
  return { store: withGraphIndex(createSqlGraphStore({ sql }), { sql }) };
}, { sessions: true });

// With a budget so small that every write evicts the other users: reads reload from the tables.
graphStoreContract("pglite + in-process read index, evicting", async () => {
  const sql = await sharedPglite();
  return { store: withGraphIndex(createSqlGraphStore({ sql }), { sql, maxRows: 1 }) };
}, { sessions: true });

// Shared mode (the managed wiring's): every read checks the user's graph version first and
// catches up from the tables, its own writes included.
graphStoreContract("pglite + in-process read index, shared", async () => {
  const sql = await sharedPglite();
  return { store: withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true }) };
}, { sessions: true });

graphStoreContract("pglite + in-process read index, shared, evicting", async () => {
  const sql = await sharedPglite();
  return { store: withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true, maxRows: 1 }) };
}, { sessions: true });

afterAll(closeSharedPglite);
