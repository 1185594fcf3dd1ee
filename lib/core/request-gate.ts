// Requests before derived work. In the embedded build the job runner shares one thread, and
// one single-threaded PGlite, with the API: a round of embedding and extraction run between
// two ingests adds its whole length to their latency. The runner therefore waits for a
// moment with no request in flight before each round, but never longer than a bound, so
// under sustained load derived work still advances (and, after it, catches up at full speed).

export interface RequestGate {
  /** A request started. */
  enter(): void;
  /** A request finished (answered or failed). */
  leave(): void;
  /** Requests being served now. */
  readonly inFlight: number;
  /** Resolves once no request is in flight, or after `maxWaitMs` at the latest. */
  quiet(maxWaitMs: number): Promise<void>;
}

export function createRequestGate(): RequestGate {
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  return {
    enter() {
      inFlight++;
    },
    leave() {
      inFlight = Math.max(0, inFlight - 1);
      if (inFlight === 0 && waiters.length) {
        const w = waiters;
        waiters = [];
        for (const resolve of w) resolve();
      }
    },
    get inFlight() {
      return inFlight;
    },
    quiet(maxWaitMs) {
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          resolve();
        }, maxWaitMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
      });
    },
  };
}
