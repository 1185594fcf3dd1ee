// The thread of the embedded vector index's scans (vector-scan.ts): sums a query against a
// user's matrix, shared with the API's thread, and sends the sums back (moved, not copied).

import { parentPort } from "node:worker_threads";
import { scanSums, type ScanRequest } from "./vector-scan.ts";

parentPort!.on("message", (msg: ScanRequest & { id: number }) => {
  try {
    const sums = scanSums(msg);
    parentPort!.postMessage({ id: msg.id, sums }, [sums.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
