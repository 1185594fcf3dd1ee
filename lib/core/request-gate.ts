// Requests before derived work. In the embedded build the job runner shares one thread, and
// one single-threaded PGlite, with the API: a round of embedding and extraction run between
// two ingests adds its whole length to their latency. The runner therefore waits for a
// moment with no request in flight before each round, but never longer than a bound, so
// under sustained load derived work still advances (and, after it, catches up at full speed).
//
// A moment means a short while with none (`settleMs`), not the first instant: a chat's
// frontend posts a turn and then asks for the context, and a round begun in the gap between
// the two (the turn's own derived work, woken by its write) made that context call wait for
// the round's length.

export interface RequestGate {
  /** A request started. */
  enter(): void;
  /** A request finished (answered or failed). */
  leave(): void;
  /** Requests being served now. */
  readonly inFlight: number;
  /**
   * Resolves once no request has been in flight for `settleMs` (0: once none is), or after
   * `maxWaitMs` at the latest. It first gives the event loop a turn: a request whose bytes have
   * arrived is counted only once the loop has read it, and work that only waits on PGlite
   * (which answers through promises alone) never gives the loop one. Chained without it, the
   * job runner's runs held the server's thread for up to 9.5 s (BENCHMARKS.md, "Writes beside
   * derived work").
   */
  quiet(maxWaitMs: number, settleMs?: number): Promise<void>;
  /**
   * Resolves on a turn of the event loop with no request in flight, or after `maxWaitMs` at
   * the latest. Background work cut in slices (a vector index's build, BM25's packing after a
   * load) waits for it between slices. A slice run on the next turn (setImmediate) lands
   * between the steps of whatever request is in flight: a 100k user's context calls during
   * its index build after a load, one every 20 ms, took 21–28 ms at the median that way, and
   * 13–14 with the slices between requests (BENCHMARKS.md, twenty-eighth growth round). The
   * turn it resolves on comes after the last request's leave(), so that request's response has
   * been written by then.
   */
  idleTurn(maxWaitMs: number): Promise<void>;
}

/** How long derived work waits at most for the API to go quiet (the job runners; the statistics keeper waits longer, STATS_QUIET_WAIT_MS). */
export const QUIET_WAIT_MS = 50;
/** How long without a request in flight counts as quiet for derived work (see above). */
export const QUIET_SETTLE_MS = 10;

/** How long a slice of background work (idleTurn) waits at most for the requests in flight. */
export const SLICE_WAIT_MS = 50;

/**
 * Runs `run` on a later turn of the event loop: with a gate, on one with no request in flight
 * (RequestGate.idleTurn, at most SLICE_WAIT_MS later), without one on the next (setImmediate).
 * The scheduler of background work's slices.
 */
export function sliceScheduler(gate: RequestGate | undefined): (run: () => void) => void {
  if (!gate) return (run) => void setImmediate(run);
  return (run) => void gate.idleTurn(SLICE_WAIT_MS).then(run);
}

export function createRequestGate(): RequestGate {
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  /** When the last request in flight ended (performance.now()). */
  let lastQuiet = -Infinity;
  /**
   * With a request in flight: resolves once none is, or after `maxWaitMs` at the latest. The
   * bound's timer does not hold the process open: a wait is background work's, and a process
   * whose server has closed with a request stuck in flight would otherwise stay up for the
   * rest of the bound (the statistics keeper's is a minute, STATS_QUIET_WAIT_MS).
   */
  const noneInFlight = (maxWaitMs: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== done);
        resolve();
      }, maxWaitMs);
      // Edge runtimes' setTimeout returns a number, with nothing to unref.
      (timer as { unref?: () => void }).unref?.();
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      waiters.push(done);
    });
  return {
    enter() {
      inFlight++;
    },
    leave() {
      inFlight = Math.max(0, inFlight - 1);
      if (inFlight > 0) return;
      lastQuiet = performance.now();
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    },
    get inFlight() {
      return inFlight;
    },
    async quiet(maxWaitMs, settleMs = 0) {
      const until = performance.now() + maxWaitMs;
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (;;) {
        const now = performance.now();
        if (now >= until) return;
        if (inFlight > 0) {
          await noneInFlight(until - now);
          // Without a settle period the moment the last one ended is enough, whatever came after.
          if (settleMs <= 0) return;
          continue;
        }
        const settled = lastQuiet + settleMs;
        if (now >= settled) return;
        await new Promise((resolve) => setTimeout(resolve, Math.min(settled, until) - now));
      }
    },
    async idleTurn(maxWaitMs) {
      const until = performance.now() + maxWaitMs;
      for (;;) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const now = performance.now();
        if (inFlight === 0 || now >= until) return;
        await noneInFlight(until - now);
      }
    },
  };
}

// The last load statement's turn (loadStatementTurn).
let loadTurns: Promise<void> = Promise.resolve();

/**
 * Waits for a load's turn to send its next statement (a page of a user's rows, for the keyword,
 * vector and graph indexes' loads): the loads' statements go one a turn of the event loop,
 * each on a later turn (setImmediate) than the last's. PGlite answers through promises alone,
 * and runs what is queued one statement after another: three loads' pages queued at once ran
 * back to back, held the server's thread 150–400 ms, and every other user's statements waited
 * behind them (bench/cold-start.ts; BENCHMARKS.md, sixty-fourth round). A turn between them
 * lets the requests that arrived meanwhile queue theirs first. Where there is no setImmediate
 * (an edge isolate) it resolves at once.
 */
export function loadStatementTurn(): Promise<void> {
  if (typeof setImmediate !== "function") return Promise.resolve();
  const turn = loadTurns.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  loadTurns = turn;
  return turn;
}

/** How long a slice of a user's index load runs before it gives the event loop a turn (loadSlicer). */
export const LOAD_SLICE_MS = 20;

/**
 * For a load cut in slices on a request's path (a user's index built from the rows it read):
 * call the returned function after each item; once the slice has run `sliceMs` (the clock is
 * read every 128 items, after every item at 0) it returns a promise to await, resolved on the
 * next turn of the event loop (setImmediate), so that timers (a tier's time limit) and other
 * requests run between slices; otherwise null, and the loop goes on. A load holding the thread
 * whole held every request of every user: a 100k-turn user's first call after a restart held
 * a 40-turn user's call 20 s (bench/cold-start.ts). Where there is no setImmediate (an edge
 * isolate, which serves a request or a few) it always returns null: the load runs whole.
 */
export function loadSlicer(sliceMs: number = LOAD_SLICE_MS): () => Promise<void> | null {
  if (typeof setImmediate !== "function") return () => null;
  const every = sliceMs > 0 ? 128 : 1;
  let n = 0;
  let since = performance.now();
  return () => {
    if (++n < every) return null;
    n = 0;
    if (performance.now() - since < sliceMs) return null;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        since = performance.now();
        resolve();
      }),
    );
  };
}

/** Runs `fn` for 0 ≤ i < count, awaiting the turn `slice` (loadSlicer) gives after an item, when it gives one. */
export async function eachInSlices(count: number, slice: () => Promise<void> | null, fn: (i: number) => void): Promise<void> {
  for (let i = 0; i < count; i++) {
    fn(i);
    const turn = slice();
    if (turn) await turn;
  }
}
