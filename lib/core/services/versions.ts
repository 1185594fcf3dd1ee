// A search's version reads in the managed wiring, one statement for both indexes.
//
// Where many processes write one archive, the keyword index and the graph index each check the
// user's version in the archive before they answer (shared mode), so that a search sees every
// turn committed before it began and nothing forgotten. A context call reads both versions in
// its first statement (Archive.readContext) and hands them over. A search has no such
// statement: each index read its own (each sharing a read not yet begun among concurrent
// searches), 1.66 statements a search at 8 clients. Now the search reads both in one
// (Archive.readVersions): 0.67 a search, each one a round trip to Neon and work for its compute
// in a deployment. The server's own CPU and latency did not move beyond the spread of the
// side-by-side runs (BENCHMARKS, "Fifty-first round").
//
// Searches of one user arriving while such a read is in flight share the next one, which
// begins after all of them arrived: a read begun before a request arrived could miss a write
// acknowledged just before it, so none is shared across that line. At most one read per user
// is in flight and one queued.

import type { StrataDeps } from "../deps.ts";
import type { KeywordIndex } from "../keyword-index.ts";
import type { VersionReads } from "../types.ts";

interface PerUser {
  /** The read in flight. */
  running: Promise<VersionReads> | null;
  /** The read that begins once it ends, shared by every search that arrived meanwhile. */
  next: Promise<VersionReads> | null;
}

const byArchive = new WeakMap<object, Map<string, PerUser>>();

/**
 * The user's versions read once for both indexes, or null where neither index checks them
 * (the embedded wiring) or the archive cannot read them in one statement.
 */
export function searchVersions(deps: Pick<StrataDeps, "archive" | "graph">, index: KeywordIndex | undefined, tenantId: string, userId: string): Promise<VersionReads> | null {
  const { archive, graph } = deps;
  if (!archive.readVersions || !(index?.checksVersion || graph.catchUpFrom)) return null;
  let users = byArchive.get(archive);
  if (!users) byArchive.set(archive, (users = new Map()));
  const key = `${tenantId}\u0000${userId}`;
  let u = users.get(key);
  if (!u) users.set(key, (u = { running: null, next: null }));
  const state = u;
  const begin = (): Promise<VersionReads> => {
    // Versions alone, without the rows merged since that a context call's statement carries
    // (graphDelta): that clause took Postgres about 0.3 ms to plan each time (the driver's
    // statements are unnamed, planned per call), the versions alone 0.05. A graph index behind
    // the version catches up with a read of its own, as it did before.
    const read = archive.readVersions!(tenantId, userId);
    state.running = read;
    const done = () => {
      if (state.running === read) state.running = null;
      if (!state.running && !state.next && users.get(key) === state) users.delete(key);
    };
    read.then(done, done);
    return read;
  };
  if (state.next) return state.next;
  if (!state.running) return begin();
  const after = state.running.then(
    () => undefined,
    () => undefined,
  );
  const next = after.then(() => {
    state.next = null;
    return begin();
  });
  state.next = next;
  return next;
}
