// The embedded job queue: no broker, the archive's outbox table is the queue. dispatch()
// only wakes the runner; the runner leases runnable rows from the archive, runs them and
// marks them done. Because state lives in the table, a job left unfinished when the process
// stops is still pending (or its lease runs out) and runs after the next start: at least
// once, never lost.

import type { Archive, JobHandler, JobQueue } from "../../core/ports.ts";
import { QUIET_SETTLE_MS, QUIET_WAIT_MS, type RequestGate } from "../../core/request-gate.ts";
import type { Job } from "../../core/types.ts";

export interface LocalJobQueueOptions {
  archive: Archive;
  /** Jobs leased per round. */
  batchSize?: number;
  /** Attempts before a job is dead-lettered (status failed). */
  maxAttempts?: number;
  /** How long a lease holds; a job whose runner died runs again after it. */
  leaseMs?: number;
  /** Idle poll interval, so retries whose backoff expired are picked up without a dispatch. */
  pollMs?: number;
  /** Backoff before retry n (1-based). */
  backoffMs?: (attempt: number) => number;
  onError?: (job: Job, error: unknown) => void;
  /** When given, each round waits for a moment without requests in flight (at most `yieldMs`). */
  gate?: RequestGate;
  /** Longest a round waits for the API to go quiet (default QUIET_WAIT_MS). */
  yieldMs?: number;
  /** How long without a request in flight counts as quiet (default QUIET_SETTLE_MS; see request-gate.ts). */
  settleMs?: number;
}

export function createLocalJobQueue(options: LocalJobQueueOptions): JobQueue & { idle(): Promise<void> } {
  const { archive } = options;
  // A round's jobs run merged when the handler can (see JobHandler.batch): many small jobs
  // cost one archive read and one write. 32 jobs of 100 messages stay well inside a lease.
  const batchSize = options.batchSize ?? 32;
  const yieldMs = options.yieldMs ?? QUIET_WAIT_MS;
  const settleMs = options.settleMs ?? QUIET_SETTLE_MS;
  const maxAttempts = options.maxAttempts ?? 5;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollMs = options.pollMs ?? 1_000;
  const backoffMs = options.backoffMs ?? ((n: number) => Math.min(60_000, 500 * 2 ** (n - 1)));

  let handler: JobHandler | null = null;
  let running: Promise<void> | null = null;
  let stopping = false;
  let wake: (() => void) | null = null;
  // Set by a dispatch that arrives while a claim is in flight, so its wake-up is not lost.
  let dirty = false;
  let timer: NodeJS.Timeout | null = null;
  let idleWaiters: (() => void)[] = [];

  async function runOne(job: Job): Promise<void> {
    try {
      await handler!(job);
      await archive.completeJobs([job.id]);
    } catch (e) {
      await fail(job, e);
    }
  }

  async function fail(job: Job, e: unknown): Promise<void> {
    options.onError?.(job, e);
    const message = e instanceof Error ? e.message : String(e);
    const retryAt = job.attempts >= maxAttempts ? null : new Date(Date.now() + backoffMs(job.attempts));
    await archive.failJob(job.id, message, retryAt);
  }

  /**
   * Before each run of a round, as before each round: a moment without requests (the gate,
   * which gives the event loop a turn first). A round of 32 batched jobs (16 runs of 100
   * messages of each type) held the thread for up to 9.5 s without it, and every request that
   * came meanwhile waited (a status poll's keep-alive connection was even closed under it).
   */
  async function between(): Promise<void> {
    if (options.gate) await options.gate.quiet(yieldMs, settleMs);
  }

  async function runRound(jobs: Job[]): Promise<void> {
    const batch = handler!.batch;
    if (!batch || jobs.length < 2) {
      // One at a time: the embedded archive is single-threaded, parallel jobs only queue on it.
      for (const [i, job] of jobs.entries()) {
        if (i > 0) await between();
        await runOne(job);
      }
      return;
    }
    let failed: Map<string, unknown>;
    try {
      failed = await batch(jobs, between);
    } catch {
      for (const job of jobs) await runOne(job);
      return;
    }
    await archive.completeJobs(jobs.filter((j) => !failed.has(j.id)).map((j) => j.id));
    for (const job of jobs) if (failed.has(job.id)) await fail(job, failed.get(job.id));
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      let jobs: Job[];
      dirty = false;
      if (options.gate) await options.gate.quiet(yieldMs, settleMs);
      try {
        jobs = await archive.claimJobs({ limit: batchSize, leaseMs });
      } catch (e) {
        options.onError?.({ id: "(claim)" } as Job, e);
        jobs = [];
      }
      if (jobs.length) {
        await runRound(jobs);
        continue;
      }
      if (dirty) continue;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollMs);
        timer.unref?.();
      });
      wake = null;
      if (timer) clearTimeout(timer);
    }
  }

  function poke(): void {
    dirty = true;
    wake?.();
  }

  return {
    adapter: "local-queue",
    readsOutbox: true,

    async ping() {
      await archive.ping();
    },

    async dispatch(_jobs: Job[]) {
      // The rows are already committed: waking the runner is all dispatch means here.
      poke();
    },

    start(h: JobHandler) {
      if (running) throw new Error("job queue already started");
      handler = h;
      stopping = false;
      running = loop();
    },

    async stop() {
      stopping = true;
      poke();
      await running;
      running = null;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    },

    /** Resolves the next time the runner finds nothing to do (tests and shutdown). */
    idle() {
      if (!running) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        poke();
      });
    },
  };
}
