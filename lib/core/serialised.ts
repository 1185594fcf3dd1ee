// Runs of async work one after another per key (per user, in the shared indexes and a search's
// version reads, services/versions.ts), each
// starting once every earlier run of its key settled, whether it succeeded or failed.

/** A function that runs `fn` after every earlier run given the same key. */
export function perKey(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const queues = new Map<string, Promise<unknown>>();
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const before = queues.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(key, tail);
    void tail.then(() => queues.get(key) === tail && queues.delete(key));
    return run;
  };
}
