// The GraphStore contract on a real Neo4j (5.6 or later), whenever NEO4J_URI is set
// (with NEO4J_USERNAME, NEO4J_PASSWORD and optionally NEO4J_DATABASE). No Neo4j server can
// run on the build machines, so there the suite is skipped, by design (DESIGN.md, "Local
// stand-ins"); the Bolt stub test covers query and parameter shape on every run.
//
// The run works under a random label prefix with its own constraints and indexes, so it
// can share a database with anything else, and removes both afterwards.

import { randomUUID } from "node:crypto";
import neo4j, { type Driver } from "neo4j-driver";
import { describe } from "vitest";
import { applyNeo4jSchema, createNeo4jGraphStore, neo4jSchema } from "../../lib/adapters/neo4j/graph-store.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

const server = process.env.NEO4J_URI
  ? {
      uri: process.env.NEO4J_URI,
      username: process.env.NEO4J_USERNAME ?? "",
      password: process.env.NEO4J_PASSWORD ?? "",
      database: process.env.NEO4J_DATABASE || undefined,
    }
  : null;

/** The one reason this suite skips. */
const NO_SERVER = "skipped: NEO4J_URI is not set (no Neo4j server here; see graph-store.neo4j-stub.int.test.ts)";

describe.skipIf(server === null)(server ? `neo4j graph store on ${new URL(server.uri).host}` : `neo4j graph store (${NO_SERVER})`, () => {
  graphStoreContract("neo4j", async () => {
    const s = server!;
    const labelPrefix = `t${randomUUID().replace(/-/g, "").slice(0, 12)}_`;
    const driver: Driver = neo4j.driver(s.uri, neo4j.auth.basic(s.username, s.password), { maxTransactionRetryTime: 5000 });
    await applyNeo4jSchema(driver, s.database, { labelPrefix, timeoutSeconds: 120 });
    const store = createNeo4jGraphStore({ driver, labelPrefix, ...(s.database ? { database: s.database } : {}) });

    async function cleanup(): Promise<void> {
      const session = driver.session(s.database ? { database: s.database } : {});
      try {
        await session.run(`MATCH (n) WHERE n:${labelPrefix}Entity OR n:${labelPrefix}Message DETACH DELETE n`);
        for (const statement of neo4jSchema(labelPrefix)) {
          const [, kind, name] = /^CREATE (CONSTRAINT|INDEX) (\S+) IF NOT EXISTS/.exec(statement)!;
          await session.run(`DROP ${kind} ${name} IF EXISTS`);
        }
      } finally {
        await session.close();
        await driver.close();
      }
    }
    return { store, cleanup };
  });
});
