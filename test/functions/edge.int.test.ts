// The edge read path, bundled for a Workers runtime (functions/edge-build.ts: no Node
// built-in may be in it) and run in workerd, the open-source Workers runtime, against the
// local counterparts on loopback: Neon's HTTP query endpoint, the Upstash REST bridge and
// the Pinecone data-plane server. Data is written by a Node Strata on the same services;
// the edge must answer history, context and search exactly as the Node app does.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildEdgeBundle } from "../../functions/edge-build.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/core/log.ts";
import { createStrata, type Strata } from "../../lib/runtime.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { freePort, waitFor } from "../fixtures/pipeline.ts";
import { uid } from "../fixtures/pglite.ts";
import { call } from "../fixtures/strata.ts";
import { startPineconeServer, type PineconeServer } from "../stand-ins/pinecone-server.ts";
import { startUpstashBridge, type UpstashBridge } from "../stand-ins/upstash-bridge.ts";

const db = neonDatabase();
const stage = `edge-${Math.floor(Math.random() * 1e6)}`;
const apiKey = `sk_${uid("edge")}_0123456789`;
const dir = mkdtempSync(join(tmpdir(), "strata-edge-"));
let upstash: UpstashBridge;
let pinecone: PineconeServer;
let strata: Strata;
let workerd: ChildProcess | undefined;
let workerdLog = "";
let edgeUrl: string;
let bundleBytes = 0;

const session = uid("trip");
const user = uid("ann");

/** Cap'n Proto text config: one worker (the bundle) with its bindings, allowed to reach loopback. */
function workerdConfig(port: number, bindings: Record<string, string>): string {
  const text = Object.entries(bindings)
    .map(([name, value]) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`)
    .join(",\n      ");
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "strata", worker = .strata),
    (name = "loopback", network = (allow = ["local", "private", "public"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "strata") ],
);

const strata :Workerd.Worker = (
  modules = [ (name = "strata-edge.mjs", esModule = embed "strata-edge.mjs") ],
  compatibilityDate = "2025-09-01",
  bindings = [
      ${text}
  ],
  globalOutbound = "loopback",
);
`;
}

beforeAll(async () => {
  const neon = (await db.get()).config();
  upstash = await startUpstashBridge({ token: "edge-token" });
  pinecone = await startPineconeServer();
  const env: Record<string, string> = {
    STRATA_STAGE: stage,
    STRATA_API_KEY: apiKey,
    STRATA_LOG_LEVEL: "silent",
    DATABASE_URL: neon.connectionString,
    STRATA_NEON_FETCH_ENDPOINT: neon.fetchEndpoint!,
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: "edge-token",
    PINECONE_API_KEY: pinecone.apiKey,
    PINECONE_HOST: pinecone.host,
  };
  // Writes go through a Node Strata (the API function's code), jobs run in process.
  strata = await createStrata(loadConfig({ ...env, STRATA_NEON_WS_PROXY: neon.wsProxy! }, { logLevel: "silent" }), { log: createLogger("silent") });
  const res = await call(strata, "POST", `/v1/sessions/${session}/messages`, {
    userId: user,
    messages: [
      { role: "user", name: "Ann", content: "We are planning a hiking trip to Lake Tahoe in August." },
      { role: "assistant", content: "Great! Do you need a campsite near the lake?" },
      { role: "user", name: "Ann", content: "Yes, and my sister Maria is allergic to peanuts, so pack snacks without them." },
    ],
  }, { authorization: `Bearer ${apiKey}` });
  expect(res.status).toBe(201);
  await strata.idle();

  bundleBytes = (await buildEdgeBundle(join(dir, "strata-edge.mjs"))).bytes;
  const port = await freePort();
  writeFileSync(join(dir, "config.capnp"), workerdConfig(port, env));
  const bin = join(createRequire(import.meta.url).resolve("workerd/package.json"), "../bin/workerd");
  workerd = spawn(bin, ["serve", join(dir, "config.capnp"), "--verbose"], { stdio: ["ignore", "pipe", "pipe"] });
  workerd.stdout!.on("data", (d: Buffer) => (workerdLog += d.toString()));
  workerd.stderr!.on("data", (d: Buffer) => (workerdLog += d.toString()));
  edgeUrl = `http://127.0.0.1:${port}`;
  await waitFor(`workerd on ${edgeUrl} (log: ${workerdLog})`, async () => {
    if (workerd!.exitCode !== null) throw new Error(`workerd exited ${workerd!.exitCode}: ${workerdLog}`);
    return fetch(`${edgeUrl}/v1/health`, { headers: { authorization: `Bearer ${apiKey}` } }).then(() => true, () => false);
  }, { timeoutMs: 30_000, everyMs: 200 });
});

afterAll(async () => {
  workerd?.kill("SIGTERM");
  await strata?.close();
  if (upstash) {
    const redis = new Redis({ url: upstash.url, token: "edge-token" });
    const keys = await redis.keys(`strata:${stage}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await Promise.allSettled([upstash?.close(), pinecone?.close()]);
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function edge(method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${apiKey}` }) {
  const res = await fetch(`${edgeUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

/** The Node app's answer to the same request, for comparison. */
const node = (method: string, path: string, body?: unknown) => call(strata, method, path, body, { authorization: `Bearer ${apiKey}` });


it("bundles without Node built-ins", () => {
  expect(bundleBytes).toBeGreaterThan(0);
});

it("serves history, context and search in workerd as the Node app does", async () => {
  const history = await edge("GET", `/v1/sessions/${session}/messages?limit=2`);
  expect(history.status).toBe(200);
  expect(history.body).toEqual((await node("GET", `/v1/sessions/${session}/messages?limit=2`)).body);
  expect(history.body.messages).toHaveLength(2);

  const path = `/v1/sessions/${uid("new")}/context?userId=${user}&query=${encodeURIComponent("what snacks should I buy")}&budget=300`;
  const context = await edge("GET", path);
  expect(context.status, JSON.stringify(context.body)).toBe(200);
  expect(context.headers.get("server-timing")).toMatch(/vector;dur=/);
  expect(context.body.degraded).toEqual([]);
  expect(context.body.recalled.map((m: { content: string }) => m.content).join(" ")).toContain("peanuts");
  expect(context.body.recalled.some((m: { sources: string[] }) => m.sources.includes("vector"))).toBe(true);
  expect(context.body.tokens).toBeLessThanOrEqual(300);

  const search = await edge("POST", "/v1/search", { userId: user, query: "who is allergic?", limit: 3 });
  expect(search.status).toBe(200);
  const fromNode = await node("POST", "/v1/search", { userId: user, query: "who is allergic?", limit: 3 });
  // Same retrievers on both (BM25 from the shared keyword index, vectors, graph): same ranking and scores.
  const ranked = (b: { results: { id: string; score: number; sources: string[] }[] }) => b.results.map((r) => [r.id, r.score.toFixed(6), [...r.sources].sort()]);
  expect(ranked(search.body)).toEqual(ranked(fromNode.body));
  expect(search.body.results[0].content).toContain("allergic");
});

it("refuses writes and unauthenticated reads with JSON errors", async () => {
  const write = await edge("POST", `/v1/sessions/${session}/messages`, { userId: user, messages: [{ role: "user", content: "hi" }] });
  expect(write.status).toBe(404);
  expect(write.body.error.code).toBe("NOT_ON_EDGE");
  const anonymous = await edge("GET", `/v1/sessions/${session}/messages`, undefined, {});
  expect(anonymous.status).toBe(401);
  expect(anonymous.body.error.code).toBe("UNAUTHORIZED");
});
