// A preview stage's data, created and removed by stacks/stage-data.ts as `sst deploy` and
// `sst remove` run it: a Neon branch copied from the main branch (the Neon API stand-in over
// the machine's Postgres), and on removal the branch, the stage's Upstash keys (REST bridge
// over redis-server), its Pinecone namespaces (data-plane server) and its Neo4j labels (the
// scripted Bolt stub: the statements sent) — and nothing of any other stage.

import { Pinecone } from "@pinecone-database/pinecone";
import { Redis } from "@upstash/redis";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { main } from "../../stacks/stage-data.ts";
import { POSTGRES_URL } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";
import { startBoltStub } from "../stand-ins/bolt-stub.ts";
import { startNeonApiStandIn, type NeonApiStandIn } from "../stand-ins/neon-api.ts";
import { startPineconeServer, type PineconeServer } from "../stand-ins/pinecone-server.ts";
import { startUpstashBridge, type UpstashBridge } from "../stand-ins/upstash-bridge.ts";

const parentDb = `strata_test_${uid("main").replace(/-/g, "_")}`;
const n = Math.floor(Math.random() * 1e6);
const stage = `pr-${n}`;
const neighbour = `pr-${n}0`; // shares the stage as a string prefix, must survive
let neonApi: NeonApiStandIn;
let upstash: UpstashBridge;
let pinecone: PineconeServer;
let redis: Redis;
let env: Record<string, string>;

async function admin<T>(fn: (c: pg.Client) => Promise<T>, database = "postgres"): Promise<T> {
  const u = new URL(POSTGRES_URL);
  u.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: u.href });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function run(action: string, extra: Record<string, string> = {}): Promise<unknown> {
  const lines: string[] = [];
  await main([action], { ...env, ...extra }, (l) => lines.push(l));
  return JSON.parse(lines.join("\n"));
}

beforeAll(async () => {
  await admin((c) => c.query(`create database "${parentDb}"`));
  await admin((c) => c.query("create table notes (id int primary key, body text); insert into notes values (1, 'from main')"), parentDb);
  neonApi = await startNeonApiStandIn({ postgresUrl: POSTGRES_URL, database: parentDb });
  upstash = await startUpstashBridge({ token: "t0ken" });
  pinecone = await startPineconeServer();
  redis = new Redis({ url: upstash.url, token: "t0ken" });
  env = {
    STRATA_STAGE: stage,
    NEON_API_KEY: neonApi.apiKey,
    NEON_PROJECT_ID: neonApi.projectId,
    NEON_API_URL: neonApi.url,
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: "t0ken",
    PINECONE_API_KEY: pinecone.apiKey,
    PINECONE_HOST: pinecone.host,
    NEO4J_URI: "", // unset: no graph server here
  };
});

afterAll(async () => {
  await redis?.del(`strata:${neighbour}:default:win:s1`);
  await neonApi?.close();
  await Promise.allSettled([upstash?.close(), pinecone?.close()]);
  await admin((c) => c.query(`drop database if exists "${parentDb}" with (force)`));
});

it("creates the stage's branch from main, and removes the branch, keys and namespaces of that stage only", async () => {
  const created = (await run("create")) as { branchId: string; databaseUrl: string };
  expect(neonApi.branches().get(created.branchId)?.name).toBe(`strata-${stage}`);
  // The branch starts as a copy of main and then diverges from it.
  const branch = new pg.Client({ connectionString: created.databaseUrl });
  await branch.connect();
  expect((await branch.query("select body from notes")).rows).toEqual([{ body: "from main" }]);
  await branch.query("insert into notes values (2, 'preview only')");
  await branch.end();
  expect(await admin((c) => c.query("select count(*)::int as n from notes"), parentDb).then((r) => r.rows[0].n)).toBe(1);

  // A second create for the same stage refuses rather than shadowing the first branch.
  await expect(run("create")).rejects.toThrow(`branch strata-${stage} already exists`);

  // What the stage's functions would have written, beside another stage's data.
  await redis.set(`strata:${stage}:default:win:s1`, "x");
  await redis.set(`strata:${stage}:t%3A2:win:s2`, "y");
  await redis.set(`strata:${neighbour}:default:win:s1`, "keep");
  const index = new Pinecone({ apiKey: pinecone.apiKey }).index({ host: pinecone.host });
  const vector = (id: string) => ({ id, values: [0.1, 0.2, 0.3] });
  await index.namespace(`${stage}#default`).upsert({ records: [vector("a"), vector("b")] });
  await index.namespace(`${stage}#acme`).upsert({ records: [vector("c")] });
  await index.namespace(`${neighbour}#default`).upsert({ records: [vector("d")] });

  const removed = (await run("remove", { PULUMI_COMMAND_STDOUT: JSON.stringify(created) })) as Record<string, unknown>;
  expect(removed).toMatchObject({ branchDeleted: true, upstashKeys: 2, neo4jNodes: 0 });
  expect((removed.pineconeNamespaces as string[]).sort()).toEqual([`${stage}#acme`, `${stage}#default`]);
  expect(neonApi.branches().has(created.branchId)).toBe(false);
  const databases = await admin((c) => c.query("select datname from pg_database")).then((r) => r.rows.map((x) => x.datname));
  expect(databases).not.toContain(created.databaseUrl.split("/").pop());
  expect(await redis.keys(`strata:${stage}:*`)).toEqual([]);
  expect(await redis.get(`strata:${neighbour}:default:win:s1`)).toBe("keep");
  const namespaces = pinecone.stats().namespaces;
  expect(Object.keys(namespaces).filter((ns) => ns.startsWith(`${stage}#`) && namespaces[ns]! > 0)).toEqual([]);
  expect(namespaces[`${neighbour}#default`]).toBe(1);

  // Removing again (a retried `sst remove`) finds nothing left and succeeds.
  expect(await run("remove", { PULUMI_COMMAND_STDOUT: JSON.stringify(created) })).toMatchObject({ branchDeleted: false, upstashKeys: 0 });
});

it("never creates or removes the production stage's data", async () => {
  await expect(run("create", { STRATA_STAGE: "production" })).rejects.toThrow(/production: its data is retained/);
  await expect(run("remove", { STRATA_STAGE: "production" })).rejects.toThrow(/production: its data is retained/);
  await expect(run("create", { STRATA_STAGE: "PR_1" })).rejects.toThrow(/lower-case letters, digits and dashes/);
});

it("deletes the stage's Neo4j nodes in batches and drops its constraints and indexes", async () => {
  const other = `pr-${n + 1}`;
  const left: Record<string, number[]> = { Entity: [5000, 120, 0], Message: [40, 0] };
  const bolt = await startBoltStub([
    {
      match: /DETACH DELETE n RETURN count\(\*\) AS deleted$/,
      reply: (q) => ({ fields: ["deleted"], records: [[left[/_(Entity|Message)`/.exec(q.query)![1]!]!.shift()!]] }),
    },
    { match: /^DROP (CONSTRAINT|INDEX) /, reply: { fields: [], records: [] } },
  ]);
  try {
    const removed = (await run("remove", { STRATA_STAGE: other, NEO4J_URI: bolt.uri, NEO4J_USERNAME: "neo4j", NEO4J_PASSWORD: "secret" })) as Record<string, unknown>;
    expect(removed.neo4jNodes).toBe(5160);
    const queries = bolt.received.map((q) => q.query);
    // Labels and schema names carry the stage, quoted (a dash is not a plain identifier).
    expect(queries.filter((q) => q.includes(`\`${other}_Entity\``))).toHaveLength(3);
    expect(queries.filter((q) => q.includes(`\`${other}_Message\``))).toHaveLength(2);
    expect(queries.filter((q) => q.startsWith("DROP"))).toEqual([
      `DROP CONSTRAINT \`strata_${other}_entity_key\` IF EXISTS`,
      `DROP CONSTRAINT \`strata_${other}_message_key\` IF EXISTS`,
      `DROP INDEX \`strata_${other}_entity_anchor\` IF EXISTS`,
      `DROP INDEX \`strata_${other}_entity_norm\` IF EXISTS`,
    ]);
    expect(queries.every((q) => !q.includes(`${stage}_`))).toBe(true);
  } finally {
    await bolt.close();
  }
});
