// The local extractor as the server holds it: compromise (extractor.ts) parses on a worker
// thread (extractor-thread.ts) and this module only passes messages there and back, so the
// API's thread never loads it. compromise's module init and lexicon take a few hundred
// milliseconds to a second of the thread that imports them, and about 15 MB of its heap:
// loaded on the API's thread by the first extraction after a start, they stalled every request
// in flight (a context call at 100k messages took 300–500 ms instead of 4; BENCHMARKS.md,
// "Growth, twenty-second round"). Where no thread can run (a runtime without worker threads,
// a bundle without extractor-thread.ts beside it), or when asked for no thread, extractor.ts
// is imported on first use and parses in this thread, a slice at a time.

import { Worker } from "node:worker_threads";
import type { Extractor } from "../../core/ports.ts";
import type { Extraction } from "../../core/types.ts";
import { LOCAL_EXTRACTOR_VERSION } from "./extractor-version.ts";

// compromise is synchronous (a few ms per message): hand the event loop back between
// messages once a slice of work is done, so an in-process worker does not stall requests.
const SLICE_MS = 10;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** extractor.ts (compromise), imported by the first extraction that runs in this thread. */
let parser: Promise<typeof import("./extractor.ts")> | null = null;

export interface LocalExtractorOptions {
  /**
   * Run compromise on a worker thread (the server does): the API's thread then serves
   * requests and the archive while messages are parsed, and a second core does the parsing.
   * Results are the same; when the thread cannot start, extraction runs in-thread.
   */
  thread?: boolean;
  /** The thread's script; default extractor-thread.ts beside this file (a bundler may move it). */
  threadScript?: URL;
}

export function createLocalExtractor(options: LocalExtractorOptions = {}): Extractor {
  const inThread = async (messages: Parameters<Extractor["extract"]>[0]) => {
    const { extractAll } = await (parser ??= import("./extractor.ts"));
    const out: Extraction[] = [];
    let sliceStart = performance.now();
    for (const m of messages) {
      out.push(extractAll([m])[0]!);
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
    return out;
  };
  const pool = options.thread ? createExtractorThread(options.threadScript ?? new URL("./extractor-thread.ts", import.meta.url)) : null;
  return {
    version: LOCAL_EXTRACTOR_VERSION,
    get detail() {
      return pool?.usable ? "in-process, on a worker thread" : "in-process, on the caller's thread";
    },
    async extract(messages) {
      if (messages.length === 0) return [];
      if (pool) {
        const out = await pool.run(messages);
        if (out) return out;
      }
      return inThread(messages);
    },
    async close() {
      await pool?.close();
    },
  };
}

/**
 * The extractor thread's young generation, in MB. A parse leaves only short-lived objects
 * behind, and the thread serves no requests, so its young collections keep no one waiting. A
 * young generation keeps the memory it grew to: with npm start's --max-semi-space-size this
 * thread's could reach 64 MB a semi-space (lib/heap.ts).
 */
const EXTRACTOR_YOUNG_MB = 16;

/** One worker thread running extractAll; null answers mean "could not run there, do it here". */
function createExtractorThread(script: URL): { run(messages: Parameters<Extractor["extract"]>[0]): Promise<Extraction[] | null>; close(): Promise<void>; readonly usable: boolean } {
  let worker: Worker | null = null;
  let broken = false;
  let next = 0;
  const pending = new Map<number, { resolve: (v: Extraction[] | null) => void; reject: (e: Error) => void }>();
  // Whether the thread ever answered: one that fails before its first answer (no worker
  // threads, or a bundle without extractor-thread.ts beside it) never will, and extraction
  // stays in-thread from then on instead of failing every job.
  let answered = false;
  const failAll = (e: Error) => {
    if (!answered) broken = true;
    for (const p of pending.values()) (answered ? p.reject(e) : p.resolve(null));
    pending.clear();
    worker = null;
  };
  const start = (): Worker | null => {
    if (worker || broken) return worker;
    try {
      const w = new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: EXTRACTOR_YOUNG_MB } });
      w.unref();
      w.on("message", (msg: { id: number; out?: Extraction[]; error?: string }) => {
        answered = true;
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.error !== undefined) p.reject(new Error(msg.error));
        else p.resolve(msg.out!);
      });
      w.on("error", (e) => failAll(e instanceof Error ? e : new Error(String(e))));
      w.on("exit", (code) => {
        if (worker === w) failAll(new Error(`extractor thread exited with code ${code}`));
      });
      worker = w;
    } catch {
      broken = true; // e.g. a runtime without worker threads: extract in-thread from now on
    }
    return worker;
  };
  return {
    /** False once the thread could not start (extraction then runs in the caller's thread). */
    get usable() {
      return !broken;
    },
    run(messages) {
      const w = start();
      if (!w) return Promise.resolve(null);
      const id = next++;
      return new Promise<Extraction[] | null>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ id, messages: messages.map((m) => ({ content: m.content, name: m.name, createdAt: m.createdAt })) });
      });
    },
    async close() {
      const w = worker;
      // A closed extractor does not start another thread; what was still running there is
      // failed (its jobs are retried by whoever runs them next).
      broken = true;
      answered = true;
      worker = null;
      if (!w) return;
      failAll(new Error("the extractor was closed"));
      await w.terminate();
    },
  };
}
