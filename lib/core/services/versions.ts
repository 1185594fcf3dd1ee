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
// Searches of one user share a read that has not begun yet, as each index shared its own
// (perKey and a map of the runs waiting, the shared indexes' own pattern): a read begun before
// a request arrived could miss a write acknowledged just before it, so none is shared across
// that line. At most one read per user is in flight and one queued.

import type { StrataDeps } from "../deps.ts";
import type { KeywordIndex } from "../keyword-index.ts";
import { perKey } from "../serialised.ts";
import type { VersionReads } from "../types.ts";

/** Per archive, as the shared indexes keep theirs: reads run one at a time per user, and the read not yet begun is shared. */
interface Reads {
  serialised: ReturnType<typeof perKey>;
  waiting: Map<string, Promise<VersionReads>>;
}

const byArchive = new WeakMap<object, Reads>();

/**
 * The user's versions read once for both indexes, or null where neither index checks them
 * (the embedded wiring) or the archive cannot read them in one statement.
 */
export function searchVersions(deps: Pick<StrataDeps, "archive" | "graph">, index: KeywordIndex | undefined, tenantId: string, userId: string): Promise<VersionReads> | null {
  const { archive, graph } = deps;
  if (!archive.readVersions || !(index?.checksVersion || graph.catchUpFrom)) return null;
  let reads = byArchive.get(archive);
  if (!reads) byArchive.set(archive, (reads = { serialised: perKey(), waiting: new Map() }));
  const { serialised, waiting } = reads;
  const key = `${tenantId}\u0000${userId}`;
  const queued = waiting.get(key);
  if (queued) return queued;
  const run: Promise<VersionReads> = serialised(key, () => {
    // Begun: a search arriving from now on needs a read of its own.
    if (waiting.get(key) === run) waiting.delete(key);
    // Versions alone, without the rows merged since that a context call's statement carries
    // (graphDelta): that clause took Postgres about 0.3 ms to plan each time (the driver's
    // statements are unnamed, planned per call), the versions alone 0.05. A graph index behind
    // the version catches up with a read of its own, as it did before.
    return archive.readVersions!(tenantId, userId);
  });
  // `serialised` begins it a microtask later at the earliest, so it is registered before it begins.
  waiting.set(key, run);
  return run;
}
