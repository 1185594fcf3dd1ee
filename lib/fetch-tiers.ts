// The hot store and vector index a config names, apart from runtime.ts (like embedder.ts) so
// the edge read path (functions/edge.ts) picks them the same way without loading the
// Node-only wiring: every adapter here speaks fetch or runs in process.

import type { StrataConfig } from "./config.ts";
import { createMemoryHotStore } from "./adapters/local/hot-store.ts";
import { createLocalVectorIndex } from "./adapters/local/vector-index.ts";
import { createPineconeVectorIndex } from "./adapters/pinecone/vector-index.ts";
import type { SqlClient } from "./adapters/sql/client.ts";
import { createUpstashHotStore } from "./adapters/upstash/hot-store.ts";
import type { HotStore, VectorIndex } from "./core/ports.ts";

/** The fetch the managed tiers' requests go through: the Node runtime's (runtime.ts), or the platform's when none is given. */
export interface TierFetch {
  fetch?: typeof fetch;
}

/** Upstash under the stage's key prefix when configured, else the in-process LRU. */
export function openHotStore(config: StrataConfig, options: TierFetch = {}): HotStore {
  const hot = config.tiers.hot;
  return hot.kind === "upstash"
    ? createUpstashHotStore({ config: { url: hot.url, token: hot.token, ...(options.fetch ? { fetch: options.fetch } : {}) }, prefix: `strata:${config.stage}` })
    : createMemoryHotStore();
}

/** Pinecone in the stage's namespaces when configured, else the in-process index persisted through `sql`. */
export function openVectorIndex(config: StrataConfig, sql: SqlClient, options: { scheduleSlice?: (run: () => void) => void } & TierFetch = {}): VectorIndex {
  const vectors = config.tiers.vectors;
  return vectors.kind === "pinecone"
    ? createPineconeVectorIndex({
        config: {
          apiKey: vectors.apiKey,
          ...(vectors.indexName ? { indexName: vectors.indexName } : {}),
          ...(vectors.indexHost ? { indexHost: vectors.indexHost } : {}),
          namespacePrefix: config.stage,
          ...(options.fetch ? { fetch: options.fetch } : {}),
        },
      })
    : createLocalVectorIndex({ sql, ...(options.scheduleSlice ? { scheduleSlice: options.scheduleSlice } : {}) });
}
