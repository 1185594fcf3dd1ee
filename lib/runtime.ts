// Builds a running Strata from a config: adapters, services, the HTTP app and the job
// runner. This is where configuration picks adapters; every tier not configured falls back
// to its embedded adapter (all of them, in this build).

import { createLocalEmbedder } from "./adapters/local/embedder.ts";
import { createLocalExtractor } from "./adapters/local/extractor.ts";
import { createMemoryHotStore } from "./adapters/local/hot-store.ts";
import { createLocalJobQueue } from "./adapters/local/job-queue.ts";
import { createLocalTokenizer } from "./adapters/local/tokenizer.ts";
import { createLocalVectorIndex } from "./adapters/local/vector-index.ts";
import { createPgliteClient } from "./adapters/pglite/client.ts";
import { createSqlArchive } from "./adapters/sql/archive.ts";
import { createSqlGraphStore } from "./adapters/sql/graph-store.ts";
import { DEFAULT_TENANT, type StrataConfig } from "./config.ts";
import type { StrataDeps } from "./core/deps.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { createJobHandler } from "./core/services/worker.ts";
import { createApp, hashApiKey, type StrataApp } from "./http/app.ts";

const ANALYZE_EVERY_MS = 5 * 60_000;

export interface Strata {
  deps: StrataDeps;
  app: StrataApp;
  /** Resolves once the job runner has nothing runnable left (tests, eval). */
  idle(): Promise<void>;
  /** Stops the runner (letting the job in hand finish) and closes every tier. */
  close(): Promise<void>;
}

export async function createStrata(config: StrataConfig, options: { log?: Logger } = {}): Promise<Strata> {
  const log = options.log ?? createLogger(config.logLevel);
  const sql = await createPgliteClient({ dataDir: config.dataDir === "memory://" ? "memory://" : `${config.dataDir}/pg` });
  const archive = createSqlArchive({ sql, ownsClient: true });
  await archive.migrate();

  const queue = createLocalJobQueue({
    archive,
    onError: (job, error) => log.warn("job attempt failed", { jobId: job.id, type: job.type, attempts: job.attempts, error }),
  });
  const deps: StrataDeps = {
    archive,
    hot: createMemoryHotStore(),
    vectors: createLocalVectorIndex({ sql }),
    graph: createSqlGraphStore({ sql }),
    queue,
    embedder: createLocalEmbedder(),
    extractor: createLocalExtractor(),
    tokenizer: createLocalTokenizer(),
    log,
    settings: { recentWindow: config.recentWindow, tierTimeoutMs: 2_000 },
  };

  await archive.ensureTenant({ id: DEFAULT_TENANT, name: "Default tenant" });
  if (config.apiKey) await archive.addApiKey({ tenantId: DEFAULT_TENANT, keyHash: hashApiKey(config.apiKey), label: "STRATA_API_KEY" });

  const app = createApp(deps, config.apiKey ? { mode: "keys" } : { mode: "open", tenantId: DEFAULT_TENANT });
  if (config.workers) queue.start(createJobHandler(deps));

  // PGlite has no autovacuum, so without this its planner never has statistics and picks
  // plans for one-row tables; a periodic ANALYZE keeps the graph and keyword queries on
  // their indexes as data grows (about 200 ms per run at tens of thousands of rows).
  const analyze = () => sql.exec("analyze").catch((e) => log.warn("analyze failed", { error: e }));
  await analyze();
  const analyzeTimer = setInterval(analyze, ANALYZE_EVERY_MS);
  analyzeTimer.unref();

  return {
    deps,
    app,
    idle: () => queue.idle(),
    async close() {
      clearInterval(analyzeTimer);
      await queue.stop();
      await Promise.all([deps.hot.close(), deps.vectors.close(), deps.graph.close()]);
      await archive.close();
    },
  };
}
