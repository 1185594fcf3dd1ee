// Group commit for the archive's ingests. On PGlite (one connection) an ingest's cost is its
// transaction, not its size: a transaction of one message took 2.3-2.6 ms of the process'
// thread, of eight messages 2.6-3.2 ms (two large statements, parsed and planned each time).
// Over a Postgres server (Neon) a transaction is four round trips whatever it holds.
// Concurrent single-message writers, as chat frontends and bots are, paid that once each.
// Here the requests that arrive while a transaction runs wait for it and then go in
// together, as one transaction.
//
// A request alone (nothing waiting) runs at once on its own path, so a lone writer's latency
// is unchanged. When the group's transaction fails for any reason (one request's conflict, a
// session of another user, a forgotten id), it is rolled back whole and each of its requests
// runs alone, in arrival order: each gets the answer it would have had by itself, and nothing
// of a refused request is stored.

export interface GroupCommitOptions<R, T> {
  /** One request in a transaction of its own. */
  one(request: R): Promise<T>;
  /** The requests in one transaction, answers in their order; throws to have each run alone. */
  many(requests: R[]): Promise<T[]>;
  /** A request's weight (its messages), and the most a group may hold (a request heavier runs alone). */
  weight(request: R): number;
  maxWeight: number;
  /**
   * Waited for before each group is taken, for more requests to arrive. In the embedded
   * server a request's handler starts on a turn of the event loop of its own (lib/http/turns.ts),
   * and PGlite answers within that turn: without a wait, every ingest found none waiting.
   */
  gather?: () => Promise<void>;
}

interface Waiting<R, T> {
  request: R;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A function that commits each request, grouping those that arrive while another commits. */
export function groupCommits<R, T>(options: GroupCommitOptions<R, T>): (request: R) => Promise<T> {
  const waiting: Waiting<R, T>[] = [];
  let draining = false;

  async function alone(w: Waiting<R, T>): Promise<void> {
    try {
      w.resolve(await options.one(w.request));
    } catch (e) {
      w.reject(e);
    }
  }

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (waiting.length) {
        if (options.gather) await options.gather();
        let weight = options.weight(waiting[0]!.request);
        let n = 1;
        while (n < waiting.length && weight + options.weight(waiting[n]!.request) <= options.maxWeight) {
          weight += options.weight(waiting[n]!.request);
          n++;
        }
        const group = waiting.splice(0, n);
        if (group.length === 1) {
          await alone(group[0]!);
          continue;
        }
        let answers: T[] | null;
        try {
          answers = await options.many(group.map((w) => w.request));
        } catch {
          answers = null;
        }
        if (answers) group.forEach((w, i) => w.resolve(answers[i]!));
        else for (const w of group) await alone(w);
      }
    } finally {
      draining = false;
    }
  }

  return (request) =>
    new Promise<T>((resolve, reject) => {
      waiting.push({ request, resolve, reject });
      if (!draining) void drain();
    });
}
