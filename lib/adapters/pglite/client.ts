// PGlite (Postgres compiled to WebAssembly) behind the SqlClient seam. One instance per
// process: it is single-threaded and takes seconds to open, so the archive, graph and
// vector persistence share it.

import { mkdirSync } from "node:fs";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { StrataError, upstream } from "../../core/errors.ts";
import type { SqlClient } from "../sql/client.ts";
import { lockDataDir } from "./lock.ts";

export interface PgliteOptions {
  /** Directory for the database files, or "memory://" for a throwaway database. */
  dataDir: string;
  /** Postgres's `shared_buffers`, in MB; DEFAULT_SHARED_BUFFERS_MB when unset (STRATA_PGLITE_BUFFERS_MB). */
  sharedBuffersMb?: number;
}

/**
 * The archive's buffer pool, in MB, where PGlite's own default is 128. Postgres writes the whole
 * pool as it starts, so each MB of it is a MB of the process's memory from then on, however
 * little the archive holds. The embedded server answers its calls from its own indexes, not
 * through the pool; what a small pool costs is the derived work's reads of large archives'
 * index pages (a 30k-message user built about 10% slower than with 128: BENCHMARKS.md,
 * forty-first round).
 */
export const DEFAULT_SHARED_BUFFERS_MB = 16;

function wrap(run: { query: PGlite["query"]; exec: PGlite["exec"] }, onClose: () => Promise<void>, db?: PGlite): SqlClient {
  const client: SqlClient = {
    driver: "pglite",
    async query<T>(text: string, params: unknown[] = []) {
      try {
        const res = await run.query<T>(text, params);
        return res.rows;
      } catch (e) {
        throw upstream("pglite", e);
      }
    },
    async exec(text: string) {
      try {
        await run.exec(text);
      } catch (e) {
        throw upstream("pglite", e);
      }
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      if (!db) return fn(client); // already inside one: PGlite has no nested transactions
      return db.transaction((tx: Transaction) => fn(wrap(tx, async () => {})));
    },
    async ping() {
      await client.query("select 1");
    },
    close: onClose,
  };
  return client;
}

/**
 * PGlite's start parameters with `shared_buffers` set, for this start only: its `postgresqlconf`
 * option would write over the data directory's postgresql.conf, the settings initdb chose.
 */
function startOptions(options: PgliteOptions): { startParams: string[] } {
  const mb = options.sharedBuffersMb ?? DEFAULT_SHARED_BUFFERS_MB;
  if (!Number.isInteger(mb) || mb < 1) throw new StrataError("config", "CONFIG_INVALID", `sharedBuffersMb must be a whole number of MB, at least 1: got ${mb}`);
  return { startParams: [...PGlite.defaultStartParams, "-c", `shared_buffers=${mb}MB`] };
}

/** Opens (creating if needed) a PGlite database and returns it behind the SqlClient seam. */
export async function createPgliteClient(options: PgliteOptions): Promise<SqlClient & { db: PGlite }> {
  const dir = options.dataDir;
  if (!dir) throw new StrataError("config", "CONFIG_INVALID", "no data directory: set STRATA_DATA_DIR or leave it unset for ./.strata");
  // Checked before the directory is made or locked: a refused setting leaves nothing behind.
  const start = startOptions(options);
  let unlock = () => {};
  if (!dir.startsWith("memory://")) {
    mkdirSync(dir, { recursive: true });
    // One process at a time: two writing one directory corrupt it (lock.ts).
    unlock = lockDataDir(dir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(dir, start);
  } catch (e) {
    unlock();
    throw new StrataError("config", "ARCHIVE_OPEN_FAILED", `could not open PGlite database in ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const client = wrap(db, async () => {
    try {
      if (!db.closed) await db.close();
    } finally {
      unlock();
    }
  }, db);
  return Object.assign(client, { db });
}
