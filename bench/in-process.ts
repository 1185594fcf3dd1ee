// What the in-process benchmarks (bench/context.ts, bench/search.ts) share: an embedded Strata
// in memory or in a data directory kept between runs, waiting for its derived work, the
// approximate vector index's build, a CPU or allocation profile of the timed calls, and
// percentiles.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { join } from "node:path";
import type { LocalVectorIndex } from "../lib/adapters/local/vector-index.ts";
import { DEFAULT_TENANT, loadConfig } from "../lib/config.ts";
import { SCHEDULE_BATCH, scheduleSummaries } from "../lib/core/services/summaries.ts";
import { tuneHeap } from "../lib/heap.ts";
import { createStrata, type Strata } from "../lib/runtime.ts";

/**
 * An embedded Strata with workers, in memory, or in `dataDir` (PGlite) when given. `reuse`:
 * the directory holds this very build (`built`, recorded in `markerName` by `done()`), so
 * the caller skips its ingest. A directory holding another build is refused. The process gets
 * the server's heap settings first (lib/heap.ts), as bin/strata.mjs gives them.
 */
export async function openBenchStrata(dataDir: string | undefined, markerName: string, built: string): Promise<{ strata: Strata; reuse: boolean; done(): void }> {
  const marker = dataDir ? join(dataDir, markerName) : null;
  const reuse = marker !== null && existsSync(marker) && readFileSync(marker, "utf8") === built;
  if (marker && !reuse && existsSync(marker)) throw new Error(`${dataDir} holds another build (${readFileSync(marker, "utf8")}): use another --data-dir`);
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  tuneHeap();
  // The archive's buffer pool and thread as the server would have them (STRATA_PGLITE_BUFFERS_MB,
  // STRATA_PGLITE_THREAD); nothing else of the environment.
  const env: Record<string, string> = {};
  for (const name of ["STRATA_PGLITE_BUFFERS_MB", "STRATA_PGLITE_THREAD"]) if (process.env[name]) env[name] = process.env[name]!;
  const strata = await createStrata(loadConfig(env, { dataDir: dataDir ?? "memory://", logLevel: "silent", workers: true }));
  return { strata, reuse, done: () => marker && !reuse && writeFileSync(marker, built) };
}

/**
 * Waits until no derived work is pending, nor any summary due, printing the backlog every
 * `reportEveryMs` (10 s; tests make it short).
 * The embedded server queues the summaries due every minute, a batch at a time: a user whose
 * sessions were written in one go has most of theirs due long after the queue first drains, and
 * a run that timed its calls then timed them beside the summarize jobs (seen: a 100k user's
 * calls at 10.3 ms of CPU each, against 4.4 once no summary was due). So the batches are queued
 * here until none is due.
 */
export async function drain(strata: Strata, reportEveryMs = 10_000): Promise<void> {
  const started = Date.now();
  // The queue's idle() settles only once every job queued has run (minutes for a 100k user's
  // embeddings and extraction), so the backlog is read on a timer beside it rather than between
  // its waits, which printed nothing until the end.
  // A read still in flight when the drain returns prints nothing: the caller's next lines are its own.
  let over = false;
  const report = setInterval(() => {
    strata.deps.archive.queueStats(DEFAULT_TENANT).then(
      (stats) => {
        if (!over) process.stdout.write(`derived work pending: ${stats.pending.toLocaleString()} (${Math.round((Date.now() - started) / 1000)} s)\n`);
      },
      () => {},
    );
  }, reportEveryMs);
  try {
    for (;;) {
      await strata.idle();
      const stats = await strata.deps.archive.queueStats(DEFAULT_TENANT);
      if (stats.pending === 0 && (await scheduleSummaries(strata.deps, { limit: SCHEDULE_BATCH })) === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    over = true;
    clearInterval(report);
  }
}

/**
 * A large user's vector queries are answered by the approximate index once it is built in
 * the background: waits for the build, so the calls timed are the steady state.
 */
export async function awaitVectorIndex(strata: Strata, userId: string): Promise<void> {
  const vectors = strata.deps.vectors as Partial<LocalVectorIndex>;
  if (!vectors.indexed) return;
  const t = performance.now();
  const approximate = await vectors.indexed(DEFAULT_TENANT, userId, strata.deps.embedder.dimensions);
  process.stdout.write(`vector index: ${approximate ? `approximate, ready after ${((performance.now() - t) / 1000).toFixed(1)} s more` : "exact"}\n`);
}

/** Starts a V8 CPU profile when `file` is given; the function returned stops it and writes it there. */
export async function startProfile(file: string | undefined): Promise<() => Promise<void>> {
  if (!file) return async () => {};
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * Samples the allocations made until the returned function is called, those the garbage
 * collector has taken since included, and writes them as a V8 .heapprofile to `file`
 * (bench/heapprofile-top.ts summarises it); nothing without a file.
 */
export async function startAllocationProfile(file: string | undefined): Promise<() => Promise<void>> {
  if (!file) return async () => {};
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async () => {
    const { profile } = await session.post("HeapProfiler.stopSampling");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * Counts the garbage collector's pauses until the returned function is called, which gives
 * them as a line: young-generation (scavenge) and full collections, their number and time.
 */
export function watchGc(calls: () => number): () => string {
  const young = { n: 0, ms: 0 };
  const full = { n: 0, ms: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      const kind = e.detail?.kind ?? 0;
      const into = kind === constants.NODE_PERFORMANCE_GC_MINOR ? young : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? full : null;
      if (!into) continue;
      into.n++;
      into.ms += e.duration;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => {
    observer.disconnect();
    const n = calls();
    return `GC: ${young.n} scavenges (${young.ms.toFixed(0)} ms), ${full.n} full (${full.ms.toFixed(0)} ms); ${((young.ms + full.ms) / n).toFixed(3)} ms a call`;
  };
}

