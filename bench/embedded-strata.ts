// The embedded Strata of lib/runtime.ts (createStrata) with the in-process keyword index
// wired in, as the runtime is proposed to build it (see lib/core/keyword-index.ts): the
// archive wrapped by withKeywordIndex so every committed ingest and forget reaches the
// index, and the index handed to the services as deps.keywords. Benchmarks use it until the
// runtime does the same; `node_modules/.bin/node bench/embedded-strata.ts [port]` serves it
// over HTTP so ../shared/eval/locomo-recall.mjs can measure it end to end.

import { serve } from "@hono/node-server";
import { loadConfig, DEFAULT_TENANT } from "../lib/config.ts";
import { openTiers, type Tiers } from "../lib/runtime.ts";
import { createLocalEmbedder } from "../lib/adapters/local/embedder.ts";
import { createLocalExtractor } from "../lib/adapters/local/extractor.ts";
import { createLocalSummarizer } from "../lib/adapters/local/summarizer.ts";
import { createLocalKeywordIndex, withKeywordIndex } from "../lib/adapters/local/keyword-index.ts";
import { createLocalTokenizer } from "../lib/adapters/local/tokenizer.ts";
import { createLogger } from "../lib/core/log.ts";
import type { SearchDeps } from "../lib/core/services/search.ts";
import { createJobHandler } from "../lib/core/services/worker.ts";
import { createApp, type StrataApp } from "../lib/http/app.ts";

export interface EmbeddedStrata {
  deps: SearchDeps;
  tiers: Tiers;
  app: StrataApp;
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** An in-memory embedded Strata (PGlite "memory://"), job runner started, keyword index wired. */
export async function startEmbedded(options: { keywordIndex?: boolean } = {}): Promise<EmbeddedStrata> {
  const config = loadConfig({}, { dataDir: "memory://", logLevel: "silent" });
  const log = createLogger("silent");
  const tiers = await openTiers(config, log);
  await tiers.archive.migrate();
  const keywords = options.keywordIndex === false ? undefined : createLocalKeywordIndex({ sql: tiers.sql });
  const deps: SearchDeps = {
    archive: keywords ? withKeywordIndex(tiers.archive, keywords) : tiers.archive,
    hot: tiers.hot,
    vectors: tiers.vectors,
    graph: tiers.graph,
    queue: tiers.queue,
    embedder: createLocalEmbedder(),
    extractor: createLocalExtractor(),
    summarizer: createLocalSummarizer({ tokenizer: createLocalTokenizer() }),
    tokenizer: createLocalTokenizer(),
    log,
    settings: { recentWindow: config.recentWindow, tierTimeoutMs: 2_000 },
    ...(keywords ? { keywords } : {}),
  };
  await deps.archive.ensureTenant({ id: DEFAULT_TENANT, name: "Default tenant" });
  tiers.queue.start(createJobHandler(deps));
  await tiers.sql.exec("analyze");
  return {
    deps,
    tiers,
    app: createApp(deps, { mode: "open", tenantId: DEFAULT_TENANT }),
    idle: () => tiers.queue.idle(),
    async close() {
      await tiers.queue.stop();
      await Promise.all([tiers.hot.close(), tiers.vectors.close(), tiers.graph.close(), keywords?.close()]);
      await tiers.archive.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 8787);
  const strata = await startEmbedded();
  const server = serve({ fetch: strata.app.fetch, port, hostname: "127.0.0.1" });
  process.stdout.write(`embedded Strata with the keyword index on http://127.0.0.1:${port}\n`);
  const stop = () => server.close(() => void strata.close().then(() => process.exit(0)));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
