// The worker thread of a PGlite archive opened with `thread: true` (client.ts): it owns the
// PGlite instance and runs each statement it is sent, in the order sent, answering with the
// rows or the error. PGlite executes a statement synchronously on the thread that holds it, so
// here the derived work's long statements (a graph merge of a round: 8–30 ms at 100k messages)
// run beside the API's thread instead of in front of the requests waiting on it.

import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { READY_ID, type ThreadReply, type ThreadRequest } from "./thread-protocol.ts";

const { dataDir, startParams } = workerData as { dataDir: string; startParams: string[] };
const port = parentPort!;

/** An error's own enumerable fields that survive a structured clone (PGlite's DatabaseError: code, detail, constraint, ...). */
function errorReply(id: number, e: unknown): ThreadReply {
  const fields: Record<string, unknown> = {};
  if (e && typeof e === "object") {
    for (const [k, v] of Object.entries(e)) if (v === null || ["string", "number", "boolean"].includes(typeof v)) fields[k] = v;
  }
  return { id, error: { message: e instanceof Error ? e.message : String(e), fields } };
}

let db: PGlite | null = null;
try {
  db = await PGlite.create(dataDir, { startParams });
  port.postMessage({ id: READY_ID } satisfies ThreadReply);
} catch (e) {
  port.postMessage(errorReply(READY_ID, e));
}

// One statement at a time, in the order they came: a transaction's BEGIN, its statements and
// its COMMIT arrive in order from the one client that may send while it is open (client.ts).
let chain: Promise<void> = Promise.resolve();
port.on("message", (msg: ThreadRequest) => {
  chain = chain.then(async () => {
    try {
      if (!db) throw new Error("the database is not open");
      if (msg.op === "query") {
        const res = await db.query(msg.text, msg.params);
        port.postMessage({ id: msg.id, rows: res.rows } satisfies ThreadReply);
      } else if (msg.op === "exec") {
        await db.exec(msg.text);
        port.postMessage({ id: msg.id } satisfies ThreadReply);
      } else {
        if (!db.closed) await db.close();
        port.postMessage({ id: msg.id } satisfies ThreadReply);
      }
    } catch (e) {
      port.postMessage(errorReply(msg.id, e));
    }
  });
});
