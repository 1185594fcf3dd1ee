// The thread of the embedded vector index's scans (vector-scan.ts): sums a query against a
// user's matrix, shared with the API's thread, into memory the API's thread shares too, and
// says when they are there.

import { parentPort } from "node:worker_threads";
import { scanSums, type ScanRequest } from "./vector-scan.ts";

parentPort!.on("message", (msg: ScanRequest & { id: number; into: Float64Array }) => {
  try {
    scanSums(msg, msg.into);
    parentPort!.postMessage({ id: msg.id });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
