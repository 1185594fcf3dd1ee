// The data of one preview stage, made by `sst deploy --stage pr-123` and removed by
// `sst remove --stage pr-123`. stacks/database.ts runs this file as a Pulumi command
// (`node stacks/stage-data.ts create|remove`) so its create and delete hooks are plain Node
// code that tests run against the local stand-ins, rather than closures serialised into the
// deployment state.
//
// create: a Neon branch `strata-<stage>` off the project's main branch (copy-on-write, so the
//   preview starts with production's schema and data), with its own compute; prints
//   {"branchId","databaseUrl"} on stdout, which the stack passes to the functions.
// remove: deletes that branch, every Upstash key under `strata:<stage>:`, every Pinecone
//   namespace `<stage>#…`, and the stage's Neo4j labels with their constraints and indexes.
//   Each service is optional (its variables unset = not used); missing data is not an error,
//   so a half-created or already-removed stage removes cleanly.
//
// The production stage never comes here: it runs on the main branch and its data is retained.

import { createApiClient, type Api } from "@neondatabase/api-client";
import { Pinecone } from "@pinecone-database/pinecone";
import { Redis } from "@upstash/redis";
import neo4j from "neo4j-driver";
import { deletePineconeNamespaces } from "../lib/adapters/pinecone/vector-index.ts";
import { neo4jSchema } from "../lib/adapters/neo4j/graph-store.ts";

const STAGE = /^[a-z0-9][a-z0-9-]{0,39}$/;
const PROTECTED = new Set(["production", "prod"]);

export interface NeonSettings {
  apiKey: string;
  projectId: string;
  /** Branch to copy (default: the project's default branch). */
  parentBranchId?: string;
  /** Which database and role the connection URL names, when the branch has several. */
  databaseName?: string;
  roleName?: string;
  /** Neon API base URL (the local stand-in in tests). */
  apiUrl?: string;
}

export interface StageServices {
  neon?: NeonSettings;
  upstash?: { url: string; token: string };
  pinecone?: { apiKey: string; indexHost: string };
  neo4j?: { uri: string; username: string; password: string; database?: string };
}

export interface StageBranch {
  branchId: string;
  databaseUrl: string;
}

export interface RemovedStage {
  branchDeleted: boolean;
  upstashKeys: number;
  pineconeNamespaces: string[];
  neo4jNodes: number;
}

function checkStage(stage: string): void {
  if (!STAGE.test(stage)) throw new Error(`stage "${stage}" must be lower-case letters, digits and dashes (at most 40)`);
  if (PROTECTED.has(stage)) throw new Error(`stage "${stage}" is production: its data is retained, never created or removed here`);
}

export const branchName = (stage: string) => `strata-${stage}`;

function neonApi(s: NeonSettings): Api<unknown> {
  return createApiClient({ apiKey: s.apiKey, ...(s.apiUrl ? { baseURL: s.apiUrl } : {}), timeout: 30_000 });
}

function status(e: unknown): number | undefined {
  return (e as { response?: { status?: number } }).response?.status;
}

function describe(e: unknown): string {
  const data = (e as { response?: { data?: { message?: string } } }).response?.data;
  return data?.message ?? (e as Error).message;
}

/** Creates the stage's Neon branch and waits until its operations finish. */
export async function createStageBranch(stage: string, neon: NeonSettings, options: { pollMs?: number; timeoutMs?: number } = {}): Promise<StageBranch> {
  checkStage(stage);
  const api = neonApi(neon);
  const name = branchName(stage);
  const existing = await api.listProjectBranches({ projectId: neon.projectId, search: name }).catch((e) => {
    throw new Error(`neon: cannot list the branches of project ${neon.projectId}: ${describe(e)} (check NEON_API_KEY and NEON_PROJECT_ID)`);
  });
  if (existing.data.branches.some((b) => b.name === name)) {
    throw new Error(`neon: branch ${name} already exists in project ${neon.projectId}: remove the stage first (npx sst remove --stage ${stage}) or delete the branch`);
  }
  const created = await api
    .createProjectBranch(neon.projectId, {
      branch: { name, ...(neon.parentBranchId ? { parent_id: neon.parentBranchId } : {}) },
      endpoints: [{ type: "read_write" as never }],
    })
    .catch((e) => {
      throw new Error(`neon: cannot create branch ${name}: ${describe(e)}`);
    });
  const { branch, operations, connection_uris: uris } = created.data;
  const uri =
    uris?.find((u) => (!neon.databaseName || u.connection_parameters.database === neon.databaseName) && (!neon.roleName || u.connection_parameters.role === neon.roleName)) ??
    null;
  if (!uri) {
    await api.deleteProjectBranch({ projectId: neon.projectId, branchId: branch.id }).catch(() => undefined);
    throw new Error(`neon: branch ${name} has no connection URI${neon.databaseName ? ` for database ${neon.databaseName}` : ""}${neon.roleName ? ` and role ${neon.roleName}` : ""}`);
  }
  // The branch and its compute come up through asynchronous operations; wait for them.
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (const op of operations) {
    for (;;) {
      const { data } = await api.getProjectOperation(neon.projectId, op.id);
      if (data.operation.status === "finished" || data.operation.status === "skipped") break;
      if (data.operation.status === "failed" || data.operation.status === "error" || data.operation.status === "cancelled") {
        throw new Error(`neon: operation ${op.action} on branch ${name} ${data.operation.status}: ${data.operation.error ?? ""}`);
      }
      if (Date.now() > deadline) throw new Error(`neon: operation ${op.action} on branch ${name} still ${data.operation.status} after ${options.timeoutMs ?? 120_000} ms`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
    }
  }
  return { branchId: branch.id, databaseUrl: uri.connection_uri };
}

/** Deletes every key under `strata:<stage>:`; returns how many. */
export async function clearUpstashStage(stage: string, config: { url: string; token: string }): Promise<number> {
  checkStage(stage);
  const redis = new Redis({ url: config.url, token: config.token, automaticDeserialization: false });
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, { match: `strata:${stage}:*`, count: 500 });
    if (keys.length) deleted += await redis.del(...keys);
    cursor = String(next);
  } while (cursor !== "0");
  return deleted;
}

/** The Neo4j label prefix of a stage, as lib/runtime.ts gives it to the graph store. */
export const neo4jStagePrefix = (stage: string) => (/^[a-z]/.test(stage) ? `${stage}_` : `s${stage}_`);

/** Deletes the stage's nodes (in batches) and drops its constraints and indexes; returns the nodes deleted. */
export async function clearNeo4jStage(stage: string, config: NonNullable<StageServices["neo4j"]>): Promise<number> {
  checkStage(stage);
  const driver = neo4j.driver(config.uri, neo4j.auth.basic(config.username, config.password));
  const session = driver.session({ defaultAccessMode: neo4j.session.WRITE, ...(config.database ? { database: config.database } : {}) });
  let deleted = 0;
  try {
    // The schema statements name every label and constraint/index of the stage.
    const schema = neo4jSchema(neo4jStagePrefix(stage)).map((s) => /^CREATE (CONSTRAINT|INDEX) (\S+) IF NOT EXISTS FOR \(\w+:(\S+)\)/.exec(s)!);
    for (const label of new Set(schema.map((m) => m[3]!))) {
      for (;;) {
        const res = await session.run(`MATCH (n:${label}) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted`);
        const n = Number(res.records[0]?.get("deleted") ?? 0);
        deleted += n;
        if (n === 0) break;
      }
    }
    for (const [, kind, name] of schema) await session.run(`DROP ${kind} ${name} IF EXISTS`);
  } finally {
    await session.close();
    await driver.close();
  }
  return deleted;
}

/** Removes everything the stage holds in each configured service. */
export async function removeStageData(stage: string, branchId: string | null, services: StageServices): Promise<RemovedStage> {
  checkStage(stage);
  let branchDeleted = false;
  if (services.neon && branchId) {
    try {
      await neonApi(services.neon).deleteProjectBranch({ projectId: services.neon.projectId, branchId });
      branchDeleted = true;
    } catch (e) {
      if (status(e) !== 404) throw new Error(`neon: cannot delete branch ${branchId}: ${describe(e)}`);
    }
  }
  const upstashKeys = services.upstash ? await clearUpstashStage(stage, services.upstash) : 0;
  const pineconeNamespaces = services.pinecone
    ? await deletePineconeNamespaces({ client: new Pinecone({ apiKey: services.pinecone.apiKey }), indexHost: services.pinecone.indexHost, namespacePrefix: stage })
    : [];
  const neo4jNodes = services.neo4j ? await clearNeo4jStage(stage, services.neo4j) : 0;
  return { branchDeleted, upstashKeys, pineconeNamespaces, neo4jNodes };
}

/** Reads the services from the variables the stack passes to the command (blank = unused). */
export function servicesFromEnv(env: Record<string, string | undefined>): StageServices {
  const v = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const services: StageServices = {};
  if (v("NEON_API_KEY") && v("NEON_PROJECT_ID")) {
    services.neon = {
      apiKey: v("NEON_API_KEY")!,
      projectId: v("NEON_PROJECT_ID")!,
      ...(v("NEON_PARENT_BRANCH_ID") ? { parentBranchId: v("NEON_PARENT_BRANCH_ID")! } : {}),
      ...(v("NEON_DATABASE_NAME") ? { databaseName: v("NEON_DATABASE_NAME")! } : {}),
      ...(v("NEON_ROLE_NAME") ? { roleName: v("NEON_ROLE_NAME")! } : {}),
      ...(v("NEON_API_URL") ? { apiUrl: v("NEON_API_URL")! } : {}),
    };
  }
  if (v("UPSTASH_REDIS_REST_URL") && v("UPSTASH_REDIS_REST_TOKEN")) services.upstash = { url: v("UPSTASH_REDIS_REST_URL")!, token: v("UPSTASH_REDIS_REST_TOKEN")! };
  if (v("PINECONE_API_KEY") && v("PINECONE_HOST")) services.pinecone = { apiKey: v("PINECONE_API_KEY")!, indexHost: v("PINECONE_HOST")! };
  if (v("NEO4J_URI") && v("NEO4J_USERNAME") && v("NEO4J_PASSWORD")) {
    services.neo4j = { uri: v("NEO4J_URI")!, username: v("NEO4J_USERNAME")!, password: v("NEO4J_PASSWORD")!, ...(v("NEO4J_DATABASE") ? { database: v("NEO4J_DATABASE")! } : {}) };
  }
  return services;
}

/**
 * `node stacks/stage-data.ts create|remove`, with STRATA_STAGE and the services' variables.
 * create prints the branch as JSON on stdout; remove reads it back from
 * PULUMI_COMMAND_STDOUT (what the command provider hands a delete hook) and prints a summary.
 */
export async function main(argv: string[], env: Record<string, string | undefined>, out: (line: string) => void): Promise<void> {
  const action = argv[0];
  const stage = env.STRATA_STAGE ?? "";
  const services = servicesFromEnv(env);
  if (action === "create") {
    if (!services.neon) throw new Error("create needs NEON_API_KEY and NEON_PROJECT_ID");
    out(JSON.stringify(await createStageBranch(stage, services.neon)));
  } else if (action === "remove") {
    const created = env.PULUMI_COMMAND_STDOUT?.trim();
    const branchId = created ? (JSON.parse(created) as Partial<StageBranch>).branchId ?? null : null;
    out(JSON.stringify(await removeStageData(stage, branchId, services)));
  } else {
    throw new Error(`usage: node stacks/stage-data.ts create|remove (got ${JSON.stringify(action ?? null)})`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), process.env, (line) => process.stdout.write(line + "\n")).catch((e) => {
    process.stderr.write(`stage-data: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
