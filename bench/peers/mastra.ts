// Mastra Memory (@mastra/memory 1.x), configured as Mastra's docs show for semantic recall:
// lastMessages 20 (Strata's recent window) and semanticRecall over the user's threads (scope
// "resource", topK 10, messageRange 1), on two sets of stores:
//
// - mastra-libsql: LibSQLStore for threads and messages, LibSQLVector for the embeddings, in
//   one file. Everything in the peer's process, the counterpart of Strata's embedded wiring.
// - mastra-managed: PostgresStore (@mastra/pg) on the benchmark's PostgreSQL, and
//   PineconeVector (@mastra/pinecone, client 3) against a Pinecone stand-in of its own process,
//   as Strata's managed wiring has one: the counterpart of the managed wiring. Mastra's vector
//   store on Postgres (PgVector) needs the pgvector extension, which the machine's PostgreSQL
//   15 lacks and Debian's archive here does not carry. Mastra's recall calls createIndex before
//   each query; against Pinecone that is a create answered 409, then describe_index_stats and
//   describe_index to check the dimension, each a round trip: measured as Mastra does it.
//
// The embedder is Strata's own local embedder (lib/adapters/local/embedder.ts, 512-dim
// feature hashing) behind the AI SDK EmbeddingModelV3 interface Mastra accepts, so neither
// side calls a network model and both spend the same work per vector.
//
// Mapping: a Strata session is a Mastra thread, the user its resource; a tool turn is stored
// as an assistant message whose text is the tool output (Mastra keeps tool results as parts
// of assistant messages). saveMessages embeds and upserts vectors before it returns, so an
// acknowledged Mastra write already includes the embedding work.

import { Memory } from "@mastra/memory";
import { LibSQLStore, LibSQLVector } from "@mastra/libsql";
import { PostgresStore } from "@mastra/pg";
import { PineconeVector } from "@mastra/pinecone";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createLocalEmbedder } from "../../lib/adapters/local/embedder.ts";
import type { BenchMessage } from "./data.ts";
import type { Peer } from "./serve-peer.ts";
import { MASTRA_PINECONE_INDEX, peerEnv } from "./config.ts";

function localEmbeddingModel() {
  const embedder = createLocalEmbedder();
  return {
    specificationVersion: "v3" as const,
    provider: "strata-local",
    modelId: embedder.model,
    maxEmbeddingsPerCall: 256,
    supportsParallelCalls: true,
    async doEmbed(options: { values: string[] }) {
      const vectors = await embedder.embed(options.values);
      return { embeddings: vectors.map((v) => Array.from(v)), warnings: [] };
    },
  };
}

export async function createMastraPeer(dir: string): Promise<Peer> {
  if (!dir) throw new Error("mastra needs --dir");
  await mkdir(dir, { recursive: true });
  const url = `file:${join(dir, "mastra.db")}`;
  return mastraPeer(new LibSQLStore({ id: "bench-storage", url }), new LibSQLVector({ id: "bench-vector", url }));
}

/** Mastra on PostgreSQL (BENCH_PG_URL) and Pinecone (BENCH_PINECONE_HOST, BENCH_PINECONE_API_KEY). */
export async function createMastraManagedPeer(): Promise<Peer> {
  const env = (name: string) => peerEnv("mastra-managed", name);
  const storage = new PostgresStore({ id: "bench-storage", connectionString: env("BENCH_PG_URL"), schemaName: env("BENCH_PREFIX") });
  const vector = new PineconeVector({ id: "bench-vector", apiKey: env("BENCH_PINECONE_API_KEY"), controllerHostUrl: env("BENCH_PINECONE_HOST") });
  if (createLocalEmbedder().dimensions !== MASTRA_PINECONE_INDEX.dimension) throw new Error("the local embedder's dimension is not MASTRA_PINECONE_INDEX's");
  return mastraPeer(storage, vector);
}

async function mastraPeer(storage: LibSQLStore | PostgresStore, vector: LibSQLVector | PineconeVector): Promise<Peer> {
  const memory = new Memory({
    storage,
    // Typed loosely: @mastra/pinecone 1.1's query narrows the filter type Memory's MastraVector declares.
    vector: vector as never,
    // The EmbeddingModelV3 shape, typed loosely: Mastra's bundled AI SDK types are internal.
    embedder: localEmbeddingModel() as never,
    options: { lastMessages: 20, semanticRecall: { topK: 10, messageRange: 1, scope: "resource" } },
  });
  const threads = new Map<string, Promise<unknown>>();
  const ensureThread = (sessionId: string, userId: string) => {
    let p = threads.get(sessionId);
    if (!p) {
      p = memory.createThread({ threadId: sessionId, resourceId: userId, title: sessionId });
      threads.set(sessionId, p);
    }
    return p;
  };
  const toMastra = (sessionId: string, userId: string, m: BenchMessage) => ({
    id: m.id,
    role: m.role === "user" ? ("user" as const) : ("assistant" as const),
    createdAt: new Date(m.createdAt),
    threadId: sessionId,
    resourceId: userId,
    type: "text",
    content: { format: 2 as const, parts: [{ type: "text" as const, text: m.content }] },
  });
  // What an agent hands its model: each message's text, as the other systems answer it.
  const plain = (m: { id: string; role: string; threadId?: string; createdAt: Date; content: { parts: { type: string; text?: string }[] } }) => ({
    id: m.id,
    role: m.role,
    threadId: m.threadId,
    createdAt: m.createdAt,
    content: m.content.parts.map((p) => (p.type === "text" ? p.text : "")).join(""),
  });
  return {
    async append(sessionId, userId, messages) {
      await ensureThread(sessionId, userId);
      await memory.saveMessages({ messages: messages.map((m) => toMastra(sessionId, userId, m)) });
      return messages.length;
    },
    async context(sessionId, userId, query) {
      const out = await memory.recall({ threadId: sessionId, resourceId: userId, vectorSearchString: query });
      return { messages: out.messages.map(plain as never), total: out.total };
    },
    async search(userId, query, limit) {
      // Semantic recall alone, across the user's threads: the counterpart of /v1/search.
      const anyThread = [...threads.keys()].at(-1);
      if (!anyThread) return [];
      const out = await memory.recall({
        threadId: anyThread,
        resourceId: userId,
        vectorSearchString: query,
        threadConfig: { lastMessages: false, semanticRecall: { topK: limit, messageRange: 0, scope: "resource" } },
      });
      return out.messages.map(plain as never);
    },
    async close() {
      await memory.settled?.();
      if (storage instanceof PostgresStore) await storage.close();
    },
  };
}
