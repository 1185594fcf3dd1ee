// `npm run dev:cloud`: the whole production wiring on one machine. Starts the local
// counterparts of the managed services — the Upstash REST bridge in front of redis-server,
// the Neon WebSocket proxy and /sql endpoint in front of the machine's Postgres, fauxqs for
// SQS, and the Pinecone data-plane server — then runs `strata serve` in a child process with
// every managed adapter pointed at them. Neo4j cannot run here, so the graph stays on its
// embedded adapter (tables in the Neon archive) unless NEO4J_URI is set.
//
//   npm run dev:cloud [-- --port 8787 --database strata_dev --fresh]
//
// Needs redis-server on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres,
// trust auth), as .ci/run ensures.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { startNeonStandIn } from "./neon-proxy.ts";
import { startPineconeServer } from "./pinecone-server.ts";
import { startSqsStandIn } from "./sqs.ts";
import { startUpstashBridge } from "./upstash-bridge.ts";

export interface CloudStandIns {
  env: Record<string, string>;
  close(): Promise<void>;
}

/** The managed services' counterparts, each of which a caller may start alone. */
export const STAND_IN_PARTS = ["upstash", "neon", "sqs", "pinecone"] as const;
export type StandInPart = (typeof STAND_IN_PARTS)[number];

/**
 * Starts the counterparts (every one, or `parts`) and returns the environment that points
 * Strata at them. A caller that starts each part in a process of its own (bench/peers) merges
 * their environments: the deployed services answer side by side, where counterparts sharing one
 * process answer a call's concurrent reads one after another.
 */
export async function startCloudStandIns(options: {
  database: string;
  fresh?: boolean;
  postgresUrl?: string;
  redisUrl?: string;
  /** The counterparts to start (default all). */
  parts?: readonly StandInPart[];
  /** A Pinecone stand-in already running elsewhere (its own process, as the benchmarks start it) instead of one in this process. */
  pinecone?: { host: string; apiKey: string };
  /** The Pinecone stand-in's index, when it starts one: its name and fixed dimension (default: "strata-test", each namespace its first vector's). */
  pineconeIndex?: { name: string; dimension: number };
}): Promise<CloudStandIns> {
  const parts = new Set<StandInPart>(options.parts ?? STAND_IN_PARTS);
  const pgBase = options.postgresUrl ?? "postgres://postgres@127.0.0.1:5432";
  const env: Record<string, string> = { STRATA_STAGE: "dev" };
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    await Promise.allSettled(closers.map((c) => c()));
  };
  try {
    if (parts.has("upstash")) {
      const token = randomBytes(16).toString("hex");
      const upstash = await startUpstashBridge({ token, ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}) });
      closers.push(() => upstash.close());
      Object.assign(env, { UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: token });
    }
    if (parts.has("neon")) {
      const admin = new pg.Client({ connectionString: `${pgBase}/postgres` });
      await admin.connect();
      try {
        if (options.fresh) await admin.query(`drop database if exists "${options.database}" with (force)`);
        const exists = await admin.query("select 1 from pg_database where datname = $1", [options.database]);
        if (!exists.rowCount) await admin.query(`create database "${options.database}"`);
      } finally {
        await admin.end();
      }
      const neon = await startNeonStandIn({ postgresUrl: `${pgBase}/${options.database}` });
      closers.push(() => neon.close());
      Object.assign(env, {
        DATABASE_URL: neon.connectionString,
        STRATA_NEON_WS_PROXY: `ws://${neon.wsProxyHost}`,
        STRATA_NEON_FETCH_ENDPOINT: neon.fetchEndpoint,
      });
    }
    if (parts.has("sqs")) {
      const sqs = await startSqsStandIn();
      closers.push(() => sqs.close());
      const queue = sqs.createQueue(`strata-jobs-${randomBytes(4).toString("hex")}`, { maxReceiveCount: 5, visibilityTimeoutSeconds: 60 });
      Object.assign(env, {
        STRATA_QUEUE_URL: queue.queueUrl,
        STRATA_QUEUE_WAIT_SECONDS: "2",
        AWS_REGION: sqs.region,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
      });
    }
    if (options.pinecone) {
      Object.assign(env, { PINECONE_API_KEY: options.pinecone.apiKey, PINECONE_HOST: options.pinecone.host });
    } else if (parts.has("pinecone")) {
      const apiKey = randomBytes(16).toString("hex");
      const server = await startPineconeServer({ apiKey, ...(options.pineconeIndex ? { indexName: options.pineconeIndex.name, dimension: options.pineconeIndex.dimension } : {}) });
      closers.push(() => server.close());
      Object.assign(env, { PINECONE_API_KEY: apiKey, PINECONE_HOST: server.host });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { env, close };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: "string", default: process.env.PORT ?? "8787" }, database: { type: "string", default: "strata_dev" }, fresh: { type: "boolean", default: false } },
  });
  const cloud = await startCloudStandIns({ database: values.database!, fresh: values.fresh });
  process.stdout.write("dev:cloud counterparts up:\n" + Object.entries(cloud.env).map(([k, v]) => `  ${k}=${v}`).join("\n") + "\n");
  const child = spawn(process.execPath, ["bin/strata.mjs", "serve"], {
    stdio: "inherit",
    env: { ...process.env, ...cloud.env, PORT: values.port! },
  });
  const stop = () => child.kill("SIGTERM");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
  await cloud.close();
  process.exit(code);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`dev:cloud: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
