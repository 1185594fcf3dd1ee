// One request handler started per event-loop turn, in arrival order.
//
// Node accepts at most one new connection per turn of its event loop while it has other work
// (measured: a server answering 32 clients, of which 24 had just connected, accepted them
// about one per turn), and a turn runs every request whose bytes arrived in its poll phase
// to its end when, as in the embedded server, nothing in it waits on I/O. Under 32
// concurrent searches a turn then served about 32 of them, well over 100 ms, and the 24th
// new connection waited 24 such turns: seconds, the whole p99 of the search benchmark
// (BENCHMARKS.md, issue 8). Starting one handler per turn keeps each turn to one request's
// work, so connections are accepted, and requests read, between requests; handlers still
// run concurrently wherever they wait on I/O, and start in the order they arrived.

export interface Turns {
  /**
   * Resolves on a later turn of the event loop, after every earlier caller's. `write`: the
   * caller's request stores messages (what `settled` waits for).
   */
  next(kind?: "write"): Promise<void>;
  /** Callers waiting for their turn. */
  readonly waiting: number;
  /**
   * Resolves once no caller that writes waits for a turn, or after `most` turns: the handlers
   * of the writes already read have started by then, up to their first wait (group-commit.ts
   * gathers their ingests this way). At once when none waits, so a write among reads is not
   * held back for them.
   */
  settled(most: number): Promise<void>;
}

export function createTurns(): Turns {
  const queue: (() => void)[] = [];
  /** How many of the waiting callers write. */
  let writes = 0;
  let scheduled = false;
  const release = () => {
    scheduled = false;
    const resolve = queue.shift();
    if (queue.length) {
      scheduled = true;
      setImmediate(release);
    }
    resolve?.();
  };
  return {
    next(kind) {
      return new Promise<void>((resolve) => {
        if (kind === "write") {
          writes++;
          queue.push(() => {
            writes--;
            resolve();
          });
        } else {
          queue.push(resolve);
        }
        if (!scheduled) {
          scheduled = true;
          setImmediate(release);
        }
      });
    },
    get waiting() {
      return queue.length;
    },
    async settled(most) {
      for (let turn = 0; turn < most && writes > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}
