// The embedder a config names, apart from runtime.ts so the edge read path (functions/edge.ts)
// picks it the same way without loading the Node-only wiring.

import type { StrataConfig } from "./config.ts";
import { createLocalEmbedder } from "./adapters/local/embedder.ts";
import { createOpenAiEmbedder } from "./adapters/openai/embedder.ts";
import { createPineconeInferenceEmbedder } from "./adapters/pinecone/embedder.ts";
import type { Embedder } from "./core/ports.ts";
import type { TierFetch } from "./fetch-tiers.ts";

/** The embedder the config names; vectors record its model, so `strata reindex --vectors` can rebuild after a change. */
export function openEmbedder(config: StrataConfig, options: TierFetch = {}): Embedder {
  const e = config.tiers.embedder;
  if (e.kind === "openai") {
    return createOpenAiEmbedder({
      baseUrl: e.baseUrl,
      model: e.model,
      ...(e.apiKey ? { apiKey: e.apiKey } : {}),
      ...(e.dimensions ? { dimensions: e.dimensions } : {}),
      ...(e.batchSize ? { batchSize: e.batchSize } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }
  if (e.kind === "pinecone") {
    return createPineconeInferenceEmbedder(
      { config: { apiKey: e.apiKey, ...(options.fetch ? { fetch: options.fetch } : {}) } },
      { model: e.model, ...(e.dimensions ? { dimensions: e.dimensions } : {}), ...(e.batchSize ? { batchSize: e.batchSize } : {}) },
    );
  }
  return createLocalEmbedder();
}
