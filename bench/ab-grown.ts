// Two builds of Strata side by side on a user grown by ingest over HTTP, as the peers run's
// growth workload grows one (bench/peers.ts): each checkout's `strata serve` (npm start's Node
// options) on an empty data directory of its own; the user's first session written and its
// context asked for (so the user is loaded while it grows, as after the peers run's smaller
// sizes), then sessions of 100 turns written to both, two requests at a time, up to --size;
// then, once both have drained their derived work and build no index (each one's time to that
// is printed), --warm untimed pairs and --calls context calls (the growth workload's: the last
// session, the peers' queries, a budget of 4000 tokens) alternated query by query, and the
// median per-query ratio B/A.
//
//   node bench/ab-grown.ts --a ../base --b . [--size 100000] [--calls 1000] [--warm 2000] [--port 8941]
//
// bench/ab-http.ts compares builds on a data directory loaded at start; a server that grew by
// ingest holds the same user in another state (its vector index trained at an earlier size, its
// rows laid out as they came), which this measures. Growing both takes minutes (about 3.5 at
// 100k on two cores). One run is one round: a server's place biases it, so run it again with
// --a and --b swapped and combine the two ratios (the geometric mean of B/A and 1 / the
// swapped run's B/A). A checkout needs its own node_modules (a worktree can link the main one).

import { mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { quantile } from "./stats.ts";
import { generateMessages, generateQueries } from "./peers/data.ts";
import { answering, contextPath, getJson, serveCheckoutProblem, spawnServe, watchServer, type WatchedServer } from "./serve-client.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    a: { type: "string" },
    b: { type: "string", default: "." },
    size: { type: "string", default: "100000" },
    calls: { type: "string", default: "1000" },
    warm: { type: "string", default: "2000" },
    port: { type: "string", default: "8941" },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

if (!opts.a) usage("--a is required (see the header of bench/ab-grown.ts)");
const size = Number(opts.size);
const calls = wholeNumber(import.meta.url, "--calls", opts.calls, 1, { of: "context calls" });
const warm = wholeNumber(import.meta.url, "--warm", opts.warm, 0, { of: "query pairs" });
const port = Number(opts.port);
if (!Number.isInteger(size) || size < 100 || size % 100 !== 0) usage(`--size must be a whole number of 100-turn sessions (100, 200, ...), got ${opts.size}`);
if (!Number.isInteger(port) || port < 1 || port > 65534) usage(`--port must be a port number below 65535, got ${opts.port}`);
const roots = [resolve(opts.a), resolve(opts.b!)] as const;
for (const [i, root] of roots.entries()) {
  const problem = serveCheckoutProblem(i === 0 ? "--a" : "--b", root);
  if (problem) usage(problem);
}

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

interface Server {
  name: "A" | "B";
  root: string;
  dir: string;
  port: number;
  agent: Agent;
  server: WatchedServer;
  get(path: string): Promise<{ ms: number; body: any }>;
}

const servers: Server[] = roots.map((root, i) => {
  const name = i === 0 ? "A" : "B";
  const dir = mkdtempSync(join(tmpdir(), "strata-ab-grown-"));
  const p = port + i;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const server = watchServer(spawnServe(root, dir, p), async (how) => {
    // The other server stopped, both directories removed, then the tool exits.
    await Promise.all(servers.map((s) => s.server.stop()));
    for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
    benchFailure(import.meta.url, `server ${name} (${root}) ${how} before the run ended`);
  });
  return { name, root, dir, port: p, agent, server, get: (path: string) => getJson(agent, p, path) };
});

async function post(s: Server, path: string, body: unknown): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${s.port}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (r.status >= 300) throw new Error(`POST ${path} to ${s.name} -> ${r.status} ${(await r.text()).slice(0, 300)}`);
}

/** Derived work not yet done and index builds in flight, on each server. */
async function backlogs(): Promise<number[]> {
  const left: number[] = [];
  for (const s of servers) {
    const st = (await s.get("/v1/status")).body;
    left.push((st?.queue?.pending ?? 0) + (st?.queue?.inFlight ?? 0) + (st?.indexes?.building ?? 0));
  }
  return left;
}

const session = (k: number) => generateMessages({ seed: 1000 + k, count: 100, profile: "chat", prefix: "g", start: k * 100 });

try {
  for (const s of servers) await answering(s.get);
  const t0 = performance.now();
  // The user loaded from its first session on.
  for (const s of servers) {
    await post(s, "/v1/sessions/g-0/messages", { userId: "u-growth", messages: session(0) });
    await s.get(contextPath("coffee", 100));
  }
  const sessions = size / 100;
  let next = 1;
  let shown = Date.now();
  await Promise.all(
    [0, 1].map(async () => {
      for (;;) {
        const k = next++;
        if (k >= sessions) return;
        const messages = session(k);
        for (const s of servers) await post(s, `/v1/sessions/g-${k}/messages`, { userId: "u-growth", messages });
        if (Date.now() - shown >= 10_000) {
          shown = Date.now();
          log(`${((k + 1) * 100).toLocaleString("en-US")} / ${size.toLocaleString("en-US")} messages written to both`);
        }
      }
    }),
  );
  log(`${size.toLocaleString("en-US")} messages written to both in ${((performance.now() - t0) / 1000).toFixed(1)} s; waiting for their derived work and index builds`);
  // When each server's backlog first read 0 once every write was acknowledged (the two share
  // the machine's cores meanwhile, so each one's time depends on the other's work too).
  const drained: (number | null)[] = servers.map(() => null);
  for (;;) {
    const left = await backlogs();
    for (const [j, n] of left.entries()) if (n === 0 && drained[j] === null) drained[j] = performance.now() - t0;
    if (left.every((n) => n === 0)) break;
    if (Date.now() - shown >= 10_000) {
      shown = Date.now();
      log(`backlog: A ${left[0]!.toLocaleString("en-US")}, B ${left[1]!.toLocaleString("en-US")} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`drained ${servers.map((s, j) => `${s.name} ${(drained[j]! / 1000).toFixed(1)} s`).join(", ")} after the first write`);
  const warmQueries = generateQueries(9, 400);
  for (let i = 0; i < warm; i++) for (const s of servers) await s.get(contextPath(warmQueries[i % warmQueries.length]!, size));
  const queries = generateQueries(8, 400);
  const ratios: number[] = [];
  const timed = servers.map(() => ({ ms: [] as number[], own: [] as number[], vector: [] as number[] }));
  for (let i = 0; i < calls; i++) {
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    const ms: number[] = [];
    for (const j of order) {
      const r = await servers[j]!.get(contextPath(queries[i % queries.length]!, size));
      ms[j] = r.ms;
      timed[j]!.ms.push(r.ms);
      timed[j]!.own.push(r.body?.timings?.total ?? NaN);
      timed[j]!.vector.push(r.body?.timings?.vector ?? NaN);
    }
    ratios.push(ms[1]! / ms[0]!);
    if ((i + 1) % 250 === 0 && i + 1 < calls) log(`${i + 1} / ${calls} query pairs`);
  }
  const p50 = (xs: number[]) => quantile(xs, 0.5).toFixed(2);
  for (const [j, s] of servers.entries()) {
    const t = timed[j]!;
    log(`${s.name} ${s.root} grown to ${size.toLocaleString("en-US")} messages: p50 ${p50(t.ms)} ms; server's own total p50 ${p50(t.own)} ms, its vector tier ${p50(t.vector)} ms`);
  }
  log(`median of B/A per query: ${quantile(ratios, 0.5).toFixed(3)}`);
} finally {
  for (const s of servers) s.agent.destroy();
  await Promise.all(servers.map((s) => s.server.stop()));
  for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
}
