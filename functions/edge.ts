// The read path on a Workers-style edge runtime (workerd, Cloudflare Workers): history,
// context and search, served by the same Hono app as the API function, over services that
// speak fetch — Neon's HTTP query endpoint, Upstash REST, Pinecone. Everything this file
// loads uses web-standard APIs only (functions/edge-build.ts bundles it with no Node built-in
// available, and test/functions/edge.int.test.ts runs that bundle in workerd).
//
// Writes, forgetting and job status stay on the API function: they need transactions and
// the queue. The edge answers them with a JSON 404 saying so, and its deps hold a queue and
// an extractor that refuse, which the read routes never call.

import { DEFAULT_TENANT, loadConfig, type StrataConfig } from "../lib/config.ts";
import { createLocalKeywordIndex } from "../lib/adapters/local/keyword-index.ts";
import { createLocalTokenizer } from "../lib/adapters/local/tokenizer.ts";
import { createNeonHttpSqlClient } from "../lib/adapters/neon/http-client.ts";
import { createSqlArchive } from "../lib/adapters/sql/archive.ts";
import { createSqlGraphStore } from "../lib/adapters/sql/graph-store.ts";
import type { StrataDeps } from "../lib/core/deps.ts";
import { StrataError } from "../lib/core/errors.ts";
import { createLogger } from "../lib/core/log.ts";
import type { Extractor, JobQueue, Summarizer } from "../lib/core/ports.ts";
import { openEmbedder } from "../lib/embedder.ts";
import { openHotStore, openVectorIndex } from "../lib/fetch-tiers.ts";
import { createApp } from "../lib/http/app.ts";

/** What a Workers runtime calls. */
export interface EdgeApp {
  fetch(request: Request): Response | Promise<Response>;
}

/** Method and path of every route the edge serves; the rest belong to the API function. */
const READ_ROUTES: [string, RegExp][] = [
  ["GET", /^\/v1\/sessions\/[^/]+\/messages$/],
  ["GET", /^\/v1\/sessions\/[^/]+\/context$/],
  ["POST", /^\/v1\/search$/],
  ["GET", /^\/v1\/health$/],
];

function writesElsewhere(what: string): never {
  throw new StrataError("internal", "NOT_ON_EDGE", `${what} runs on the API function, not on the edge read path`);
}

const readOnlyQueue: JobQueue = {
  adapter: "none (edge read path)",
  ping: async () => {},
  dispatch: async () => writesElsewhere("dispatching jobs"),
  start: () => writesElsewhere("consuming jobs"),
  stop: async () => {},
};
const readOnlyExtractor: Extractor = { version: "none (edge read path)", extract: async () => writesElsewhere("extraction") };
const readOnlySummarizer: Summarizer = { version: "none (edge read path)", summarize: async () => writesElsewhere("summarization") };

/** Deps for the read path from a config: every tier over fetch. */
export function edgeDeps(config: StrataConfig): StrataDeps {
  const { tiers } = config;
  if (tiers.archive.kind !== "neon") throw new StrataError("config", "CONFIG_INVALID", "the edge read path needs DATABASE_URL (Neon): it cannot open an embedded archive");
  if (tiers.graph.kind === "neo4j") throw new StrataError("config", "CONFIG_INVALID", "the edge read path reads the graph from the archive's tables: unset NEO4J_URI for it, or serve reads from the API function");
  const sql = createNeonHttpSqlClient({
    connectionString: tiers.archive.connectionString,
    ...(tiers.archive.fetchEndpoint ? { fetchEndpoint: tiers.archive.fetchEndpoint } : {}),
  });
  const log = createLogger(config.logLevel, (line) => console.log(line));
  return {
    archive: createSqlArchive({ sql, ownsClient: true }),
    hot: openHotStore(config),
    vectors: openVectorIndex(config, sql),
    graph: createSqlGraphStore({ sql }),
    queue: readOnlyQueue,
    embedder: openEmbedder(config),
    extractor: readOnlyExtractor,
    summarizer: readOnlySummarizer,
    tokenizer: createLocalTokenizer(),
    // BM25 as on the API function: the shared index checks the user's version in the archive
    // before each search and loads only what it does not hold, so an isolate kept warm
    // serves later searches from memory.
    keywords: createLocalKeywordIndex({ sql, shared: true }),
    log,
    settings: { recentWindow: config.recentWindow, tierTimeoutMs: 2_000 },
  };
}

/** The read-only app: the API's routes for reads, a JSON 404 for the rest. */
export function createEdgeApp(config: StrataConfig): EdgeApp {
  const deps = edgeDeps(config);
  const app = createApp(deps, config.apiKey ? { mode: "keys" } : { mode: "open", tenantId: DEFAULT_TENANT });
  return {
    fetch(request) {
      const { pathname } = new URL(request.url);
      if (!READ_ROUTES.some(([method, path]) => method === request.method && path.test(pathname))) {
        return Response.json(
          { error: { code: "NOT_ON_EDGE", message: `${request.method} ${pathname} is served by the API function; the edge serves history, context and search` } },
          { status: 404 },
        );
      }
      return app.fetch(request);
    },
  };
}

let cached: { key: string; app: EdgeApp } | null = null;

export default {
  /** Workers module entry: `env` holds the bindings (the same variable names lib/config.ts reads). */
  fetch(request: Request, env: Record<string, unknown>): Response | Promise<Response> {
    const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === "string"));
    const key = JSON.stringify(vars);
    if (cached?.key !== key) {
      try {
        cached = { key, app: createEdgeApp(loadConfig(vars, { workers: false, dataDir: "memory://" })) };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        return Response.json({ error: { code: "CONFIG_INVALID", message } }, { status: 500 });
      }
    }
    return cached.app.fetch(request);
  },
};
