import { afterAll } from "vitest";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { closeSharedPglite, sharedPglite } from "../fixtures/pglite.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

graphStoreContract("pglite", async () => ({ store: createSqlGraphStore({ sql: await sharedPglite() }) }), { sessions: true });

afterAll(closeSharedPglite);
