// What PGlite on a worker thread (STRATA_PGLITE_THREAD=on, lib/adapters/pglite/client.ts)
// costs a statement: `select 1` and a transaction of two small statements, one after another,
// with PGlite in this thread and then on its own, in memory. --busy N starts N threads that
// spin meanwhile, as the extractor's and the vector scan's threads keep the cores busy in a
// server under writes: a message to a thread and back waits for a core then.
//
//   node bench/pglite-thread.ts [--busy 0] [--calls 2000]

import { Worker } from "node:worker_threads";
import { createPgliteClient } from "../lib/adapters/pglite/client.ts";
import { benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    busy: { type: "string", default: "0" },
    calls: { type: "string", default: "2000" },
  },
});
const busy = wholeNumber(import.meta.url, "--busy", opts.busy, 0, { most: 16, of: "threads" });
const calls = wholeNumber(import.meta.url, "--calls", opts.calls, 10);

const spinners = Array.from({ length: busy }, () => new Worker("const end = Date.now() + 600_000; while (Date.now() < end) {}", { eval: true }));
try {
  for (const thread of [false, true]) {
    const sql = await createPgliteClient({ dataDir: "memory://", thread });
    try {
      await sql.exec("create table t (id int primary key, v text)");
      for (let i = 0; i < calls / 4; i++) await sql.query("select 1");
      let t = performance.now();
      for (let i = 0; i < calls; i++) await sql.query("select 1");
      const select = ((performance.now() - t) / calls) * 1000;
      const txs = Math.max(1, Math.floor(calls / 2));
      t = performance.now();
      for (let i = 0; i < txs; i++) {
        await sql.transaction(async (tx) => {
          await tx.query("insert into t values ($1, 'x')", [i]);
          await tx.query("select count(*) from t where id = $1", [i]);
        });
      }
      const transaction = ((performance.now() - t) / txs) * 1000;
      process.stdout.write(
        `${sql.onThread ? "on its thread " : "in this thread"} (${busy} busy threads): select 1 ${select.toFixed(0)} µs, a transaction of two statements ${transaction.toFixed(0)} µs (means over ${calls} and ${txs})\n`,
      );
    } finally {
      await sql.close();
    }
  }
} finally {
  for (const s of spinners) await s.terminate();
}
