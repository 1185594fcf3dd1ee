// The production archive: the shared SQL archive (and its migrations) over Neon. Nothing
// here is Neon-specific SQL; the driver and its transports live in client.ts.

import type { Archive } from "../../core/ports.ts";
import { createSqlArchive } from "../sql/archive.ts";
import type { SqlClient } from "../sql/client.ts";
import { createNeonSqlClient, type NeonClientOptions } from "./client.ts";

export type NeonArchiveOptions =
  /** A client someone else opened (and closes): shared with the graph and vector tiers. */
  | { sql: SqlClient }
  /** Opens its own client, closed by the archive's close(). */
  | { config: NeonClientOptions };

export function createNeonArchive(options: NeonArchiveOptions): Archive {
  if ("sql" in options) return createSqlArchive({ sql: options.sql });
  return createSqlArchive({ sql: createNeonSqlClient(options.config), ownsClient: true });
}
