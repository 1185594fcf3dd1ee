// The one reader of the environment. Everything else takes the plain StrataConfig this
// returns, so Lambda entry points, the CLI and tests can build one without touching
// process.env. Invalid values fail at start with a message that says what to set.
//
// Each tier is picked by the conventional variables of its service; a tier whose variables
// are unset falls back to its embedded adapter, so managed and embedded tiers mix freely.
// The AWS SDK reads its own region, endpoint and credential variables (AWS_REGION,
// AWS_ENDPOINT_URL_SQS, ...), as it does everywhere.

import { z } from "zod";
import { StrataError } from "./core/errors.ts";

const intFrom = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

const url = (name: string, schemes: string[]) =>
  z
    .string()
    .trim()
    .refine((s) => {
      try {
        return schemes.includes(new URL(s).protocol.replace(/:$/, ""));
      } catch {
        return false;
      }
    }, `${name} must be a ${schemes.join(" or ")} URL`);

const EnvSchema = z.object({
  PORT: intFrom("PORT", 1, 65535).optional(),
  HOST: z.string().trim().min(1).optional(),
  STRATA_DATA_DIR: z.string().trim().min(1).optional(),
  STRATA_API_KEY: z.string().trim().min(16, "STRATA_API_KEY must be at least 16 characters").optional(),
  STRATA_RECENT_WINDOW: intFrom("STRATA_RECENT_WINDOW", 1, 1000).optional(),
  STRATA_PGLITE_BUFFERS_MB: intFrom("STRATA_PGLITE_BUFFERS_MB", 1, 1024).optional(),
  STRATA_PGLITE_THREAD: z.enum(["on", "off"], { message: 'STRATA_PGLITE_THREAD must be "on" or "off"' }).optional(),
  STRATA_SUMMARY_EVERY_SECONDS: intFrom("STRATA_SUMMARY_EVERY_SECONDS", 0, 86_400).optional(),
  STRATA_RETENTION_EVERY_SECONDS: intFrom("STRATA_RETENTION_EVERY_SECONDS", 0, 604_800).optional(),
  STRATA_WORKERS: z.enum(["on", "off"], { message: 'STRATA_WORKERS must be "on" or "off"' }).optional(),
  STRATA_LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).optional(),
  STRATA_STAGE: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "STRATA_STAGE must be lower-case letters, digits and dashes (at most 40)")
    .optional(),

  UPSTASH_REDIS_REST_URL: url("UPSTASH_REDIS_REST_URL", ["https", "http"]).optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().trim().min(1).optional(),

  DATABASE_URL: url("DATABASE_URL", ["postgres", "postgresql"]).optional(),
  STRATA_NEON_WS_PROXY: z.string().trim().min(1).optional(),
  STRATA_NEON_FETCH_ENDPOINT: url("STRATA_NEON_FETCH_ENDPOINT", ["http", "https"]).optional(),

  // Not parsed with URL(): local SQS endpoints hand out hosts like sqs.us-east-1.127.0.0.1,
  // which WHATWG URL parsing rejects (a numeric last label must be an IPv4 address).
  STRATA_QUEUE_URL: z
    .string()
    .trim()
    .regex(/^https?:\/\/[^\s/]+\/\S+$/, "STRATA_QUEUE_URL must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)")
    .optional(),
  AWS_REGION: z.string().trim().min(1).optional(),
  AWS_ENDPOINT_URL_SQS: url("AWS_ENDPOINT_URL_SQS", ["http", "https"]).optional(),
  AWS_ENDPOINT_URL: url("AWS_ENDPOINT_URL", ["http", "https"]).optional(),
  AWS_ACCESS_KEY_ID: z.string().trim().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().trim().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().trim().min(1).optional(),
  STRATA_QUEUE_MAX_RECEIVES: intFrom("STRATA_QUEUE_MAX_RECEIVES", 1, 1000).optional(),
  STRATA_QUEUE_VISIBILITY_SECONDS: intFrom("STRATA_QUEUE_VISIBILITY_SECONDS", 1, 43_200).optional(),
  STRATA_QUEUE_WAIT_SECONDS: intFrom("STRATA_QUEUE_WAIT_SECONDS", 0, 20).optional(),

  PINECONE_API_KEY: z.string().trim().min(1).optional(),
  PINECONE_INDEX: z.string().trim().min(1).optional(),
  PINECONE_HOST: url("PINECONE_HOST", ["https", "http"]).optional(),

  STRATA_EMBEDDER: z.enum(["local", "openai", "pinecone"], { message: 'STRATA_EMBEDDER must be "local", "openai" or "pinecone"' }).optional(),
  STRATA_EMBED_BASE_URL: url("STRATA_EMBED_BASE_URL", ["http", "https"]).optional(),
  STRATA_EMBED_MODEL: z.string().trim().min(1).optional(),
  STRATA_EMBED_DIMENSIONS: intFrom("STRATA_EMBED_DIMENSIONS", 1, 20_000).optional(),
  STRATA_EMBED_BATCH: intFrom("STRATA_EMBED_BATCH", 1, 2048).optional(),
  OPENAI_API_KEY: z.string().trim().min(1).optional(),

  NEO4J_URI: url("NEO4J_URI", ["neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"]).optional(),
  NEO4J_USERNAME: z.string().trim().min(1).optional(),
  NEO4J_PASSWORD: z.string().min(1).optional(),
  NEO4J_DATABASE: z.string().trim().min(1).optional(),
});

export type ArchiveTier =
  | {
      kind: "pglite";
      dataDir: string;
      /** Postgres's shared_buffers in MB (STRATA_PGLITE_BUFFERS_MB); unset, the adapter's default. */
      sharedBuffersMb?: number;
      /** PGlite on a worker thread of its own (STRATA_PGLITE_THREAD=on; pglite/client.ts); unset, on the API's thread. */
      thread?: boolean;
    }
  | { kind: "neon"; connectionString: string; wsProxy?: string; fetchEndpoint?: string };
export type HotTier = { kind: "memory" } | { kind: "upstash"; url: string; token: string };
export type VectorTier = { kind: "local" } | { kind: "pinecone"; apiKey: string; indexName?: string; indexHost?: string };
export type EmbedderTier =
  | { kind: "local" }
  | { kind: "openai"; baseUrl: string; apiKey?: string; model: string; dimensions?: number; batchSize?: number }
  | { kind: "pinecone"; apiKey: string; model: string; dimensions?: number; batchSize?: number };
export type GraphTier = { kind: "sql" } | { kind: "neo4j"; uri: string; username: string; password: string; database?: string };
export type QueueTier =
  | { kind: "local" }
  | {
      kind: "sqs";
      queueUrl: string;
      maxReceives: number;
      visibilityTimeoutSeconds: number;
      waitTimeSeconds: number;
      /** The SDK's own variables, passed through so a config built from a plain record works too. */
      region?: string;
      endpoint?: string;
      credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    };

export interface StrataConfig {
  port: number;
  /** Interface to bind; 127.0.0.1 unless an API key protects the server. */
  host: string;
  /** Where the embedded archive lives; "memory://" for a throwaway one. */
  dataDir: string;
  /** When set, every request needs `Authorization: Bearer <key>`; unset means one open default tenant on loopback. */
  apiKey: string | null;
  /** Messages kept in each session's hot window. */
  recentWindow: number;
  /** Run the job consumer in this process (the in-process runner, or an SQS long-poller). */
  workers: boolean;
  /** How often this process queues summaries of sessions due for one, in seconds; 0 is never (a cron does it when deployed). */
  summaryEverySeconds: number;
  /** How often this process deletes memories past their expiry, in seconds; 0 is never. */
  retentionEverySeconds: number;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  /** Deployment stage: prefixes Upstash keys and Pinecone namespaces so stages never share data. */
  stage: string;
  tiers: {
    archive: ArchiveTier;
    hot: HotTier;
    vectors: VectorTier;
    graph: GraphTier;
    queue: QueueTier;
    embedder: EmbedderTier;
  };
}

export const DEFAULT_TENANT = "default";

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The absolute, normalised form of a POSIX path (as node:path's resolve gives it), written
 * out so this file imports no Node module: the edge read path loads it too.
 */
function absolutePath(path: string): string {
  const base = path.startsWith("/") ? "" : (globalThis.process?.cwd?.() ?? "/");
  const parts: string[] = [];
  for (const segment of `${base}/${path}`.split("/")) {
    if (!segment || segment === ".") continue;
    if (segment === "..") parts.pop();
    else parts.push(segment);
  }
  return `/${parts.join("/")}`;
}

function fail(message: string): never {
  throw new StrataError("config", "CONFIG_INVALID", message);
}

/** Reads the environment (or the given record) into a validated config. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<StrataConfig> = {}): StrataConfig {
  const blankToUndefined = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "" ? undefined : v]));
  const parsed = EnvSchema.safeParse(blankToUndefined);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? "environment");
    fail(`${field}: ${issue?.message ?? "invalid"} (fix or unset it)`);
  }
  const e = parsed.data;
  const apiKey = e.STRATA_API_KEY ?? null;
  const dataDirRaw = overrides.dataDir ?? e.STRATA_DATA_DIR ?? "./.strata";
  const dataDir = dataDirRaw.startsWith("memory://") ? dataDirRaw : absolutePath(dataDirRaw);
  if (!apiKey && e.HOST && !isLoopback(e.HOST)) {
    fail(`HOST=${e.HOST} needs STRATA_API_KEY: without a key the server is open and stays on loopback`);
  }

  if (Boolean(e.UPSTASH_REDIS_REST_URL) !== Boolean(e.UPSTASH_REDIS_REST_TOKEN)) {
    fail("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN go together: set both, or unset both to use the in-process hot store");
  }
  const embedderKind = e.STRATA_EMBEDDER ?? "local";
  if (embedderKind !== "local" && !e.STRATA_EMBED_MODEL) {
    fail(`STRATA_EMBEDDER=${embedderKind} needs STRATA_EMBED_MODEL (e.g. ${embedderKind === "openai" ? "text-embedding-3-small" : "multilingual-e5-large"})`);
  }
  if (embedderKind === "pinecone" && !e.PINECONE_API_KEY) fail("STRATA_EMBEDDER=pinecone needs PINECONE_API_KEY");
  // The Pinecone key alone may serve the embedder; it selects the vector index only with an index or host.
  if (e.PINECONE_API_KEY && !e.PINECONE_INDEX && !e.PINECONE_HOST && embedderKind !== "pinecone") {
    fail("PINECONE_API_KEY is set but neither PINECONE_INDEX nor PINECONE_HOST is: set one, or unset PINECONE_API_KEY to use the embedded vector index");
  }
  if (!e.PINECONE_API_KEY && (e.PINECONE_INDEX || e.PINECONE_HOST)) {
    fail("PINECONE_INDEX/PINECONE_HOST is set without PINECONE_API_KEY: set the key, or unset them to use the embedded vector index");
  }
  if (e.NEO4J_URI && (!e.NEO4J_USERNAME || !e.NEO4J_PASSWORD)) {
    fail("NEO4J_URI is set but NEO4J_USERNAME or NEO4J_PASSWORD is not: set both, or unset NEO4J_URI to use the embedded graph");
  }

  const archive: ArchiveTier = e.DATABASE_URL
    ? {
        kind: "neon",
        connectionString: e.DATABASE_URL,
        ...(e.STRATA_NEON_WS_PROXY ? { wsProxy: e.STRATA_NEON_WS_PROXY } : {}),
        ...(e.STRATA_NEON_FETCH_ENDPOINT ? { fetchEndpoint: e.STRATA_NEON_FETCH_ENDPOINT } : {}),
      }
    : {
        kind: "pglite",
        dataDir,
        ...(e.STRATA_PGLITE_BUFFERS_MB ? { sharedBuffersMb: e.STRATA_PGLITE_BUFFERS_MB } : {}),
        ...(e.STRATA_PGLITE_THREAD === "on" ? { thread: true } : {}),
      };

  return {
    port: e.PORT ?? 8787,
    host: e.HOST ?? (apiKey ? "0.0.0.0" : "127.0.0.1"),
    dataDir,
    apiKey,
    recentWindow: e.STRATA_RECENT_WINDOW ?? 20,
    workers: (e.STRATA_WORKERS ?? "on") === "on",
    summaryEverySeconds: e.STRATA_SUMMARY_EVERY_SECONDS ?? 60,
    retentionEverySeconds: e.STRATA_RETENTION_EVERY_SECONDS ?? 3600,
    logLevel: e.STRATA_LOG_LEVEL ?? "info",
    stage: e.STRATA_STAGE ?? "local",
    tiers: {
      archive,
      hot: e.UPSTASH_REDIS_REST_URL ? { kind: "upstash", url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN! } : { kind: "memory" },
      vectors: e.PINECONE_API_KEY && (e.PINECONE_INDEX || e.PINECONE_HOST)
        ? {
            kind: "pinecone",
            apiKey: e.PINECONE_API_KEY,
            ...(e.PINECONE_INDEX ? { indexName: e.PINECONE_INDEX } : {}),
            ...(e.PINECONE_HOST ? { indexHost: e.PINECONE_HOST } : {}),
          }
        : { kind: "local" },
      graph: e.NEO4J_URI
        ? {
            kind: "neo4j",
            uri: e.NEO4J_URI,
            username: e.NEO4J_USERNAME!,
            password: e.NEO4J_PASSWORD!,
            ...(e.NEO4J_DATABASE ? { database: e.NEO4J_DATABASE } : {}),
          }
        : { kind: "sql" },
      embedder:
        embedderKind === "openai"
          ? {
              kind: "openai",
              baseUrl: e.STRATA_EMBED_BASE_URL ?? "https://api.openai.com/v1",
              model: e.STRATA_EMBED_MODEL!,
              ...(e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY } : {}),
              ...(e.STRATA_EMBED_DIMENSIONS ? { dimensions: e.STRATA_EMBED_DIMENSIONS } : {}),
              ...(e.STRATA_EMBED_BATCH ? { batchSize: e.STRATA_EMBED_BATCH } : {}),
            }
          : embedderKind === "pinecone"
            ? {
                kind: "pinecone",
                apiKey: e.PINECONE_API_KEY!,
                model: e.STRATA_EMBED_MODEL!,
                ...(e.STRATA_EMBED_DIMENSIONS ? { dimensions: e.STRATA_EMBED_DIMENSIONS } : {}),
                ...(e.STRATA_EMBED_BATCH ? { batchSize: e.STRATA_EMBED_BATCH } : {}),
              }
            : { kind: "local" },
      queue: e.STRATA_QUEUE_URL
        ? {
            kind: "sqs",
            queueUrl: e.STRATA_QUEUE_URL,
            maxReceives: e.STRATA_QUEUE_MAX_RECEIVES ?? 5,
            visibilityTimeoutSeconds: e.STRATA_QUEUE_VISIBILITY_SECONDS ?? 60,
            waitTimeSeconds: e.STRATA_QUEUE_WAIT_SECONDS ?? 20,
            ...(e.AWS_REGION ? { region: e.AWS_REGION } : {}),
            ...(e.AWS_ENDPOINT_URL_SQS || e.AWS_ENDPOINT_URL ? { endpoint: (e.AWS_ENDPOINT_URL_SQS ?? e.AWS_ENDPOINT_URL)! } : {}),
            // Without explicit keys the SDK's default chain applies (the Lambda role in production).
            ...(e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
              ? {
                  credentials: {
                    accessKeyId: e.AWS_ACCESS_KEY_ID,
                    secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
                    ...(e.AWS_SESSION_TOKEN ? { sessionToken: e.AWS_SESSION_TOKEN } : {}),
                  },
                }
              : {}),
          }
        : { kind: "local" },
    },
    ...overrides,
  };
}
