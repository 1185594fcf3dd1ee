// PGlite (Postgres compiled to WebAssembly) behind the SqlClient seam. One instance per
// process: it is single-threaded and takes seconds to open, so the archive, graph and
// vector persistence share it.

import { mkdirSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { StrataError, upstream } from "../../core/errors.ts";
import type { SqlClient } from "../sql/client.ts";
import { lockDataDir } from "./lock.ts";
import { READY_ID, type ThreadOp, type ThreadReply, type ThreadRequest } from "./thread-protocol.ts";

export interface PgliteOptions {
  /** Directory for the database files, or "memory://" for a throwaway database. */
  dataDir: string;
  /** Postgres's `shared_buffers`, in MB; DEFAULT_SHARED_BUFFERS_MB when unset (STRATA_PGLITE_BUFFERS_MB). */
  sharedBuffersMb?: number;
  /**
   * Run PGlite on a worker thread (thread.ts; the server does when STRATA_PGLITE_THREAD=on).
   * PGlite executes each statement synchronously on the thread that holds it: on the API's
   * thread, the derived work's statements (a round's graph merge, 8–30 ms at 100k messages)
   * hold every request that comes meanwhile. On a thread of its own they run beside requests,
   * and each statement costs its caller a message each way instead (0.1–0.3 ms, more when the
   * cores are busy). Measured both ways in BENCHMARKS.md, forty-third round: a chat's context
   * call right after its write has a much shorter tail, and concurrent one-message ingests,
   * the at-rest tail and the peak RSS are worse, so it is not the default. The same rows and
   * errors either way.
   */
  thread?: boolean;
  /** The thread's script; default thread.ts beside this file (a bundler may move it). */
  threadScript?: URL;
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

/**
 * Postgres's `default_statistics_target` for the archive's ANALYZE, where Postgres's own is 100.
 * PGlite runs each statement on the thread that holds it, and an ANALYZE samples 300 times the
 * target in rows per table: at 100k messages a table took 150–615 ms at 100 (the whole database
 * 1.4–1.8 s) and 30–46 ms at 10 (0.22–0.25 s). The statistics keeper (stats.ts) analyses a
 * table once it grows by a tenth; when it waited at most QUIET_WAIT_MS for the requests in
 * flight, each analysis under steady load held every request for its length (searches' p99 of
 * 145–261 ms at 8 and 32 clients; BENCHMARKS.md, fifty-third round). The archive's
 * statements are keyed lookups, and its graph statements pin their plans (`offset 0`, lateral
 * joins): coarser statistics (n_distinct of the graph's id columns estimated 5–8 times low)
 * leave them as they were.
 */
export const STATISTICS_TARGET = 10;

/** What wrap() runs statements on: PGlite, one of its transactions, or the thread's messages (openThread). */
interface Runner {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(text: string): Promise<unknown>;
}

function wrap(run: Runner, onClose: () => Promise<void>, db?: PGlite): SqlClient {
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
 * PGlite's start parameters with `shared_buffers` and `default_statistics_target` set, for this
 * start only: its `postgresqlconf` option would write over the data directory's
 * postgresql.conf, the settings initdb chose.
 */
function startOptions(options: PgliteOptions): { startParams: string[] } {
  const mb = options.sharedBuffersMb ?? DEFAULT_SHARED_BUFFERS_MB;
  if (!Number.isInteger(mb) || mb < 1) throw new StrataError("config", "CONFIG_INVALID", `sharedBuffersMb must be a whole number of MB, at least 1: got ${mb}`);
  return { startParams: [...PGlite.defaultStartParams, "-c", `shared_buffers=${mb}MB`, "-c", `default_statistics_target=${STATISTICS_TARGET}`] };
}

/** Opens (creating if needed) a PGlite database and returns it behind the SqlClient seam. */
export async function createPgliteClient(options: PgliteOptions & { thread?: false }): Promise<SqlClient & { db: PGlite; onThread: false }>;
/** `onThread`: whether PGlite runs on its worker thread (false when none could start). */
export async function createPgliteClient(options: PgliteOptions): Promise<SqlClient & { onThread: boolean }>;
export async function createPgliteClient(options: PgliteOptions): Promise<SqlClient & { onThread: boolean }> {
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
  if (options.thread) {
    let threaded: SqlClient | null;
    try {
      threaded = await openThread(options.threadScript ?? new URL("./thread.ts", import.meta.url), dir, start.startParams, unlock);
    } catch (e) {
      unlock();
      throw new StrataError("config", "ARCHIVE_OPEN_FAILED", `could not open PGlite database in ${dir}: ${(e as Error).message}`, { cause: e });
    }
    // null: no thread could run (a runtime without worker threads, a bundle without thread.ts
    // beside this file); the database was not opened there, so it is opened here instead.
    if (threaded) return Object.assign(threaded, { onThread: true });
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
  return Object.assign(client, { db, onThread: false });
}

/**
 * The thread's young generation, in MB: a statement allocates little here (its parameters and
 * rows on their way through). Under npm start the limit holds only since lib/heap.ts sets
 * --max-semi-space-size back once the API's thread has its heap: before that the thread took
 * 64 MB semi-spaces, whatever it asked for (BENCHMARKS.md, forty-third and forty-fourth rounds).
 */
const THREAD_YOUNG_MB = 8;

/** A thread's error as an Error again, with the fields PGlite gave it (code, detail, ...). */
function threadError(error: NonNullable<ThreadReply["error"]>): Error {
  return Object.assign(new Error(error.message), error.fields);
}

/**
 * PGlite on a worker thread (thread.ts) behind the SqlClient seam. Statements go in the order
 * they are sent and the thread runs them in that order. A transaction holds the client: the
 * statements of anyone else wait until its COMMIT or ROLLBACK has been sent, as PGlite's own
 * transaction() holds its mutex, so nothing lands inside a transaction it is not part of.
 * The thread keeps the process alive only while a statement is in flight.
 */
async function openThread(script: URL, dataDir: string, startParams: string[], unlock: () => void): Promise<SqlClient | null> {
  let worker: Worker;
  try {
    worker = new Worker(script, { workerData: { dataDir, startParams }, resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_MB } });
  } catch {
    return null; // no worker threads here
  }
  let next = READY_ID + 1;
  let broken: Error | null = null;
  const pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (e: Error) => void }>();
  const failAll = (e: Error) => {
    broken ??= e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  // Open (true), or not started at all (false: the thread failed or exited before it answered,
  // e.g. its script is missing); rejects with PGlite's error when the thread could not open the database.
  let started = false;
  const ready = new Promise<boolean>((resolve, reject) => {
    pending.set(READY_ID, { resolve: () => resolve(true), reject: (e) => (started ? reject(e) : resolve(false)) });
  });
  worker.on("message", (msg: ThreadReply) => {
    started = true;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (pending.size === 0) worker.unref();
    if (msg.error) p.reject(threadError(msg.error));
    else p.resolve(msg.rows ?? []);
  });
  worker.on("error", (e) => failAll(e instanceof Error ? e : new Error(String(e))));
  worker.on("exit", (code) => failAll(new Error(`the PGlite thread exited (code ${code})`)));
  let open: boolean;
  try {
    open = await ready;
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  if (!open) {
    await worker.terminate();
    return null;
  }
  worker.unref();

  const send = (req: ThreadOp): Promise<unknown[]> => {
    if (broken) return Promise.reject(broken);
    const id = next++;
    return new Promise<unknown[]>((resolve, reject) => {
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id } satisfies ThreadRequest);
    });
  };
  // The thread's messages behind the SqlClient seam (wrap: errors as upstream ones, and a
  // transaction begun inside one only continues it). A transaction's own statements go through
  // it directly; everyone else's through `client` below, which first waits out a transaction.
  const inside = wrap(
    {
      query: async <T>(text: string, params: unknown[] = []) => ({ rows: (await send({ op: "query", text, params })) as T[] }),
      exec: (text: string) => send({ op: "exec", text }),
    },
    async () => {},
  );

  // The transaction in progress, if any: resolves when it has ended.
  let held: Promise<void> | null = null;
  const free = async () => {
    while (held) await held;
  };
  let closed = false;
  const client: SqlClient = {
    driver: "pglite",
    async query<T>(text: string, params: unknown[] = []) {
      if (held) await free();
      return inside.query<T>(text, params);
    },
    async exec(text: string) {
      if (held) await free();
      return inside.exec(text);
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      await free();
      let end!: () => void;
      held = new Promise<void>((resolve) => (end = resolve));
      try {
        await inside.exec("begin");
        let out: T;
        try {
          out = await fn(inside);
        } catch (e) {
          await inside.exec("rollback").catch(() => {});
          throw e;
        }
        await inside.exec("commit");
        return out;
      } finally {
        held = null;
        end();
      }
    },
    async ping() {
      await client.query("select 1");
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await free();
        if (!broken) await send({ op: "close" }).catch(() => {});
        failAll(new Error("the PGlite archive was closed"));
        await worker.terminate();
      } finally {
        unlock();
      }
    },
  };
  return client;
}
