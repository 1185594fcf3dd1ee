// Builds a running Strata from a config: adapters, services, the HTTP app and the job
// consumer. This is the one place configuration picks adapters; every tier whose service is
// not configured gets its embedded adapter, and the embedded vector index and graph live in
// whatever Postgres the archive uses (PGlite, or Neon when DATABASE_URL is set).
//
// PGlite and the Neo4j driver are imported when a config picks them, and the extractor's
// NLP library when a job first extracts in a thread (extractor-host.ts), not at load: a
// bundled Lambda function (split into chunks) then loads none of them unless it uses it,
// which keeps its cold start short (bench/bundle.ts). The embedded server's own thread never
// loads it: its extractions run on a worker thread.

import type { StrataConfig } from "./config.ts";
import { DEFAULT_TENANT } from "./config.ts";
import { createLocalExtractor } from "./adapters/local/extractor-host.ts";
import { createLocalJobQueue } from "./adapters/local/job-queue.ts";
import { withGraphIndex } from "./adapters/local/graph-index.ts";
import { createLocalKeywordIndex, withKeywordIndex } from "./adapters/local/keyword-index.ts";
import { withReadCache } from "./adapters/local/read-cache.ts";
import { createLocalSummarizer } from "./adapters/local/summarizer.ts";
import { createLocalTokenizer } from "./adapters/local/tokenizer.ts";
import { createNeonSqlClient } from "./adapters/neon/client.ts";
import type { SqlClient } from "./adapters/sql/client.ts";
import { createSqlArchive } from "./adapters/sql/archive.ts";
import { createSqlGraphStore } from "./adapters/sql/graph-store.ts";
import { createSqsJobQueue } from "./adapters/sqs/job-queue.ts";
import type { StrataDeps } from "./core/deps.ts";
import { createLogger, type Logger } from "./core/log.ts";
import type { Embedder, GraphStore, HotStore, JobQueue, VectorIndex } from "./core/ports.ts";
import { createRequestGate, sliceScheduler, type RequestGate } from "./core/request-gate.ts";
import { createStatsKeeper, type StatsKeeper } from "./adapters/pglite/stats.ts";
import { SCHEDULE_BATCH, scheduleSummaries, SWEEP_BATCH, sweepRetention } from "./core/services/summaries.ts";
import { createJobHandler } from "./core/services/worker.ts";
import { openEmbedder } from "./embedder.ts";
import { openHotStore, openVectorIndex } from "./fetch-tiers.ts";
import { createNodeFetch } from "./adapters/shared/node-fetch.ts";

export { openEmbedder };
import { createApp, hashApiKey, type StrataApp } from "./http/app.ts";
import { createTurns, type Turns } from "./http/turns.ts";

/** How often the embedded server looks for tables whose statistics are due (stats.ts). */
const STATS_CHECK_EVERY_MS = 60_000;
/** Most turns an embedded ingest waits for others to join its group commit (group-commit.ts). */
const GATHER_TURNS = 16;

export interface Strata {
  config: StrataConfig;
  deps: StrataDeps;
  app: StrataApp;
  /** Resolves once the job consumer has nothing runnable left (tests, eval). */
  idle(): Promise<void>;
  /** Stops the consumer (letting the job in hand finish) and closes every tier. */
  close(): Promise<void>;
}

async function openSql(config: StrataConfig): Promise<SqlClient> {
  const tier = config.tiers.archive;
  if (tier.kind === "neon") {
    return createNeonSqlClient({
      connectionString: tier.connectionString,
      ...(tier.wsProxy ? { wsProxy: tier.wsProxy } : {}),
      ...(tier.fetchEndpoint ? { fetchEndpoint: tier.fetchEndpoint } : {}),
    });
  }
  const { createPgliteClient } = await import("./adapters/pglite/client.ts");
  return createPgliteClient({
    dataDir: tier.dataDir === "memory://" ? "memory://" : `${tier.dataDir}/pg`,
    ...(tier.sharedBuffersMb ? { sharedBuffersMb: tier.sharedBuffersMb } : {}),
    // On a thread of its own (client.ts, `thread`) when asked: the derived work's statements then run beside requests.
    ...(tier.thread ? { thread: true } : {}),
  });
}

/**
 * Stages share a Neo4j server unless NEO4J_DATABASE gives each its own database (Enterprise);
 * then labels carry the stage, so a preview stack never sees another stage's graph.
 */
export function neo4jLabelPrefix(config: StrataConfig): string {
  if (config.tiers.graph.kind === "neo4j" && config.tiers.graph.database) return "";
  return /^[a-z]/.test(config.stage) ? `${config.stage}_` : `s${config.stage}_`;
}

/** Applies the archive migrations and, when the graph is on Neo4j, its constraints and indexes. */
export async function migrateAll(config: StrataConfig): Promise<string[]> {
  const done: string[] = [];
  const sql = await openSql(config);
  const archive = createSqlArchive({ sql, ownsClient: true });
  try {
    await archive.migrate();
    done.push(`archive schema up to date (${describeTiers(config).archive})`);
  } finally {
    await archive.close();
  }
  const graph = config.tiers.graph;
  if (graph.kind === "neo4j") {
    const { default: neo4j } = await import("neo4j-driver");
    const { applyNeo4jSchema } = await import("./adapters/neo4j/graph-store.ts");
    const driver = neo4j.driver(graph.uri, neo4j.auth.basic(graph.username, graph.password));
    try {
      await applyNeo4jSchema(driver, graph.database, { labelPrefix: neo4jLabelPrefix(config) });
      done.push(`neo4j constraints and indexes applied (${describeTiers(config).graph})`);
    } finally {
      await driver.close();
    }
  }
  return done;
}

export interface Tiers {
  sql: SqlClient;
  archive: ReturnType<typeof createSqlArchive>;
  hot: HotStore;
  vectors: VectorIndex;
  graph: GraphStore;
  queue: JobQueue & { idle(): Promise<void> };
  embedder: Embedder;
  /** Requests in flight, which the in-process job runner yields to. */
  gate: RequestGate;
  /** The HTTP handlers' turns (lib/http/turns.ts). */
  turns: Turns;
}

/** Opens the adapter of every tier, without migrating or starting anything (`strata doctor` uses it as is). */
export async function openTiers(config: StrataConfig, log: Logger): Promise<Tiers> {
  const { tiers } = config;
  const sql = await openSql(config);
  // Request handlers start one per turn of the event loop (lib/http/turns.ts). Before each
  // group commit (PGlite's), ingests wait for the ingests already read to start their handlers
  // and join it (Turns.settled).
  const turns = createTurns();
  const archive = createSqlArchive({ sql, ownsClient: true, gatherIngests: () => turns.settled(GATHER_TURNS) });
  // The managed tiers' HTTP requests (Upstash, Pinecone, a remote embedder) go over node:http:
  // Node's own fetch keeps each answer alive through V8's scavenges into the old generation
  // (node-fetch.ts).
  const fetch = createNodeFetch();
  const hot = openHotStore(config, { fetch });
  const gate = createRequestGate();
  // The local vector index's builds run their slices between requests.
  const vectors = openVectorIndex(config, sql, { scheduleSlice: sliceScheduler(gate), fetch });
  const graph: GraphStore =
    tiers.graph.kind === "neo4j"
      ? (await import("./adapters/neo4j/graph-store.ts")).createNeo4jGraphStore({
          config: {
            uri: tiers.graph.uri,
            username: tiers.graph.username,
            password: tiers.graph.password,
            ...(tiers.graph.database ? { database: tiers.graph.database } : {}),
          },
          labelPrefix: neo4jLabelPrefix(config),
        })
      : // The graph's reads come from memory (lib/adapters/local/graph-index.ts) instead of
        // SQL over the graph tables. This process alone writes the embedded archive (PGlite),
        // so there its own writes keep the index current. Other processes write a Neon
        // archive (API and worker Lambdas): there each read first checks the user's graph
        // version (migration 6) and loads what they merged, or the user whole after a delete.
        withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: tiers.archive.kind !== "pglite" });
  const onJobError = (job: { id: string; type: string; attempts?: number }, error: unknown) =>
    log.warn("job attempt failed", { jobId: job.id, type: job.type, attempts: job.attempts, error });
  const queue: JobQueue & { idle(): Promise<void> } =
    tiers.queue.kind === "sqs"
      ? createSqsJobQueue({
          archive,
          queueUrl: tiers.queue.queueUrl,
          maxReceives: tiers.queue.maxReceives,
          visibilityTimeoutSeconds: tiers.queue.visibilityTimeoutSeconds,
          waitTimeSeconds: tiers.queue.waitTimeSeconds,
          clientConfig: {
            ...(tiers.queue.region ? { region: tiers.queue.region } : {}),
            ...(tiers.queue.endpoint ? { endpoint: tiers.queue.endpoint } : {}),
            ...(tiers.queue.credentials ? { credentials: tiers.queue.credentials } : {}),
          },
          onError: onJobError,
          // `strata serve` on the managed services answers requests beside its consumer.
          gate,
        })
      : createLocalJobQueue({ archive, onError: onJobError, gate });
  return { sql, archive, hot, vectors, graph, queue, embedder: openEmbedder(config, { fetch }), gate, turns };
}

export async function createStrata(config: StrataConfig, options: { log?: Logger } = {}): Promise<Strata> {
  const log = options.log ?? createLogger(config.logLevel);
  const { tiers } = config;
  const { sql, archive: rawArchive, hot, vectors, graph, queue, embedder, gate, turns } = await openTiers(config, log);
  await rawArchive.migrate();
  // The in-process BM25 tier: kept current by this process's writes, and, where other
  // processes write the same archive (Neon), by a version check before each search that
  // loads what they stored (lib/adapters/local/keyword-index.ts).
  const keywords = createLocalKeywordIndex({ sql, shared: tiers.archive.kind !== "pglite", scheduleSlice: sliceScheduler(gate) });
  const indexed = withKeywordIndex(rawArchive, keywords);
  // An archive this process owns alone (PGlite) sees every write pass through here, so the
  // context call's summary and memory reads can come from memory (lib/adapters/local/read-cache.ts).
  const archive = tiers.archive.kind === "pglite" ? withReadCache(indexed) : indexed;
  if (tiers.archive.kind === "pglite" && config.workers) {
    // This process owns the embedded archive alone: jobs marked running were leased by a
    // process that died, and need not wait out their lease.
    const released = await archive.releaseRunningJobs();
    if (released) log.info("jobs left running by the previous process are queued again", { released });
  }

  const deps: StrataDeps = {
    archive,
    hot,
    vectors,
    graph,
    queue,
    embedder,
    // A server that answers requests and runs jobs (`strata serve`, embedded or on the managed
    // services) parses with compromise on a worker thread: in this thread, compromise's first
    // load after a start held the requests behind it for half a second (BENCHMARKS.md, "The
    // managed server's extractor on a worker thread"), and every parse holds them a few ms. A
    // Lambda function does one or the other (workers off), so it extracts in-thread.
    extractor: createLocalExtractor({ thread: tiers.archive.kind === "pglite" || config.workers }),
    // A long session's summary is made in slices between requests: in one go, 400 turns of a
    // coding agent's session held the thread for 0.45 s (summarizer.ts, SLICE_MS).
    summarizer: createLocalSummarizer({ tokenizer: createLocalTokenizer(), scheduleSlice: sliceScheduler(gate) }),
    tokenizer: createLocalTokenizer(),
    keywords,
    log,
    settings: { recentWindow: config.recentWindow, tierTimeoutMs: 2_000 },
  };

  await archive.ensureTenant({ id: DEFAULT_TENANT, name: "Default tenant" });
  if (config.apiKey) await archive.addApiKey({ tenantId: DEFAULT_TENANT, keyHash: await hashApiKey(config.apiKey), label: "STRATA_API_KEY" });

  const app = createApp(deps, config.apiKey ? { mode: "keys" } : { mode: "open", tenantId: DEFAULT_TENANT }, { gate, turns });
  if (config.workers) queue.start(createJobHandler(deps));

  // PGlite has no autovacuum, so without statistics its planner picks plans for one-row
  // tables: everything is analysed once here, and then each table as autovacuum would, once
  // enough of it changed, between requests (lib/adapters/pglite/stats.ts).
  let stats: StatsKeeper | null = null;
  if (tiers.archive.kind === "pglite") {
    await sql.exec("analyze").catch((e) => log.warn("analyze failed", { error: e }));
    stats = createStatsKeeper(sql, { gate, everyMs: STATS_CHECK_EVERY_MS, onError: (e) => log.warn("analyze failed; the next check retries", { error: e }) });
  }

  // Scheduled work of the embedded server (a deployment runs it from functions/cron.ts).
  // Each run waits for the previous one: a slow archive never stacks them up.
  const timers: NodeJS.Timeout[] = [];
  const every = (seconds: number, name: string, run: () => Promise<number>) => {
    if (!seconds || !config.workers) return;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const n = await run();
        if (n) log.debug(`${name} done`, { count: n });
      } catch (e) {
        log.warn(`${name} failed; the next run retries`, { error: e });
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(tick, seconds * 1000);
    timer.unref();
    timers.push(timer);
  };
  every(config.summaryEverySeconds, "summary scheduling", () => scheduleSummaries(deps, { limit: SCHEDULE_BATCH }));
  every(config.retentionEverySeconds, "retention sweep", () => sweepRetention(deps, { limit: SWEEP_BATCH }));

  return {
    config,
    deps,
    app,
    idle: () => queue.idle(),
    async close() {
      await stats?.close();
      for (const t of timers) clearInterval(t);
      await queue.stop();
      await Promise.all([hot.close(), vectors.close(), graph.close(), keywords.close(), deps.extractor.close?.()]);
      await archive.close();
    },
  };
}

/** Which adapter serves each tier, for the start-up banner and `strata doctor`. */
export function describeTiers(config: StrataConfig): Record<string, string> {
  const t = config.tiers;
  return {
    archive: t.archive.kind === "neon" ? `neon (${new URL(t.archive.connectionString).host})` : `pglite (${t.archive.dataDir})`,
    hot: t.hot.kind === "upstash" ? `upstash (${new URL(t.hot.url).host}, prefix strata:${config.stage})` : "in-process LRU",
    vectors: t.vectors.kind === "pinecone" ? `pinecone (${t.vectors.indexHost ?? t.vectors.indexName}, namespaces ${config.stage}#<tenant>)` : "in-process index persisted in the archive",
    graph: t.graph.kind === "neo4j" ? `neo4j (${new URL(t.graph.uri).host})` : "tables in the archive",
    queue: t.queue.kind === "sqs" ? `sqs (${t.queue.queueUrl})` : "in-process runner over the outbox",
    embedder: t.embedder.kind === "local" ? "local hashing embedder (no network)" : `${t.embedder.kind} (${t.embedder.model})`,
  };
}
