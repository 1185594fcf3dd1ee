// A SqlClient over Neon's HTTP query endpoint only (`neon()`, plain fetch), for the edge read
// path: one request per statement, no WebSocket, no Node module. It runs single statements,
// which is all history, context and search issue; transactions and multi-statement text need
// a session, so they are refused here and stay on the Lambda functions (client.ts).

import { neon, neonConfig } from "@neondatabase/serverless";
import { StrataError } from "../../core/errors.ts";
import type { SqlClient } from "../sql/client.ts";
import { neonError } from "./errors.ts";

export interface NeonHttpClientOptions {
  /** postgres://user:password@host/database (DATABASE_URL). */
  connectionString: string;
  /** Full http(s):// URL of the query endpoint; default Neon's, derived from the host. */
  fetchEndpoint?: string;
}

function sessionOnly(what: string): never {
  throw new StrataError("internal", "SESSION_REQUIRED", `${what} needs a database session, which the HTTP-only Neon client (edge read path) does not open`);
}

export function createNeonHttpSqlClient(options: NeonHttpClientOptions): SqlClient {
  // The driver takes the endpoint as a global; an edge isolate talks to one database.
  if (options.fetchEndpoint) neonConfig.fetchEndpoint = options.fetchEndpoint;
  const http = neon(options.connectionString);
  const client: SqlClient = {
    driver: "neon-http",
    async query<T>(text: string, params: unknown[] = []) {
      try {
        return (await http.query(text, params)) as T[];
      } catch (e) {
        throw neonError(e);
      }
    },
    exec: async () => sessionOnly("exec (multi-statement text)"),
    transaction: async () => sessionOnly("a transaction"),
    async ping() {
      await client.query("select 1");
    },
    async close() {},
  };
  return client;
}
