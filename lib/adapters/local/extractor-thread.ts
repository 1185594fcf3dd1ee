// The worker thread of the local extractor (createLocalExtractor({ thread: true })): parses
// messages with compromise off the API's thread and answers with the extractions.

import { parentPort } from "node:worker_threads";
import { extractAll } from "./extractor.ts";

parentPort!.on("message", (msg: { id: number; messages: Parameters<typeof extractAll>[0] }) => {
  try {
    parentPort!.postMessage({ id: msg.id, out: extractAll(msg.messages) });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
