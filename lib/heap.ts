// V8 settings a long-running Strata process applies to itself at start, before it loads anyone's
// data: the server (bin/strata.mjs), the Lambda functions (functions/strata.ts: a warm
// environment keeps users' keyword and graph indexes as the server does), and the benchmarks
// that time its work in process.
//
// Allocation-site pretenuring is off. V8 watches each place in the code that allocates objects,
// and once most objects from one place survive a young collection, it allocates that place's
// later objects straight in the old generation. Loading a large user's indexes makes many places
// look long-lived (what they build at load stays), and the same places then allocate a query's
// short-lived objects, which went straight to the old generation too: at 100k turns about 170 KB
// a context call that only a full collection reclaims. The old generation grew by about 9.5 MB
// every 55 calls (1.12 GB to 1.60 GB over 4,000 calls), each young collection took 9–10 ms
// instead of 5–6, the growth into fresh pages cost 8.7 page faults a call instead of 1.1, and a
// full collection of a heap that size costs about a second of marking. With it off, a query's
// garbage dies young: the old generation grew 0.4 MB per young collection over the same calls.
// BENCHMARKS.md ("Growth, twentieth round") has the figures.
//
// The flag is not allowed in NODE_OPTIONS, and V8 reads it whenever it processes pretenuring
// feedback, so setting it at run time, first thing, has the command-line flag's effect.
//
// The young generation's size on the command line (npm start's --max-semi-space-size=64) is
// for the API's thread, whose calls allocate in bursts. V8 gives that flag precedence over a
// worker thread's own resourceLimits, so every thread the server starts (the extractor, the
// vector scan, PGlite's when asked for) took semi-spaces of 64 MB too, whatever limit it
// asked for. The flag is read when a thread's heap is made: once the API's thread has its
// heap, setting it back to V8's default (0: not set) leaves that heap as it is and lets each
// later thread keep the limit it asks for. In the peers benchmark's ingest workload the
// server's peak RSS read 626–685 MB against 713–784 before, six runs of each alternated
// (BENCHMARKS.md, forty-fourth round).

import { setFlagsFromString } from "node:v8";

export const HEAP_FLAGS = ["--no-allocation-site-pretenuring", "--max-semi-space-size=0"] as const;

let tuned = false;

/** Applies HEAP_FLAGS to this process; call it before loading data and before starting any worker thread. */
export function tuneHeap(): void {
  for (const flag of HEAP_FLAGS) setFlagsFromString(flag);
  tuned = true;
}

/** Whether tuneHeap() ran in this process (V8 gives no way to read a flag back). */
export function heapTuned(): boolean {
  return tuned;
}
