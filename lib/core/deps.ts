import type { KeywordIndex } from "./keyword-index.ts";
import type { Logger } from "./log.ts";
import type { Archive, Embedder, Extractor, GraphStore, HotStore, JobQueue, Summarizer, Tokenizer, VectorIndex } from "./ports.ts";

/** Everything the services need, built once per process from config (see lib/runtime.ts). */
export interface StrataDeps {
  archive: Archive;
  hot: HotStore;
  vectors: VectorIndex;
  graph: GraphStore;
  queue: JobQueue;
  embedder: Embedder;
  extractor: Extractor;
  summarizer: Summarizer;
  tokenizer: Tokenizer;
  /** In-process BM25 keyword tier (embedded wiring); without it search uses the archive's full-text index. */
  keywords?: KeywordIndex;
  log: Logger;
  settings: {
    /** Messages kept in each session's hot window. */
    recentWindow: number;
    /** Time limit per tier on the read path, in ms; a tier that misses it is reported degraded. */
    tierTimeoutMs: number;
  };
}
