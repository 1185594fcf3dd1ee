// The embedder a config names, apart from runtime.ts so the edge read path (functions/edge.ts)
// picks it the same way without loading the Node-only wiring.

import type { StrataConfig } from "./config.ts";
import { createLocalEmbedder } from "./adapters/local/embedder.ts";
import { createOpenAiEmbedder } from "./adapters/openai/embedder.ts";
import { createPineconeInferenceEmbedder } from "./adapters/pinecone/embedder.ts";
import type { Embedder } from "./core/ports.ts";

/** The embedder the config names; vectors record its model, so `strata reindex --vectors` can rebuild after a change. */
export function openEmbedder(config: StrataConfig): Embedder {
  const e = config.tiers.embedder;
  if (e.kind === "openai") {
    return createOpenAiEmbedder({
      baseUrl: e.baseUrl,
      model: e.model,
      ...(e.apiKey ? { apiKey: e.apiKey } : {}),
      ...(e.dimensions ? { dimensions: e.dimensions } : {}),
      ...(e.batchSize ? { batchSize: e.batchSize } : {}),
    });
  }
  if (e.kind === "pinecone") {
    return createPineconeInferenceEmbedder(
      { config: { apiKey: e.apiKey } },
      { model: e.model, ...(e.dimensions ? { dimensions: e.dimensions } : {}), ...(e.batchSize ? { batchSize: e.batchSize } : {}) },
    );
  }
  return createLocalEmbedder();
}
