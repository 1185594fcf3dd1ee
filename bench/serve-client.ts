// Both sides of the benchmarks that start `strata serve` and time it over HTTP
// (bench/ab-http.ts, bench/chat-loop.ts, bench/backfill.ts, bench/server-profile.ts,
// bench/steady.ts, bench/ab-grown.ts, bench/summary-stall.ts): a checkout's server started as
// npm start starts it and watched until the tool stops it, the two checkouts of an
// A/B tool, the size of the user a data directory holds, the growth workload's context call on
// it, a GET timed from request to parsed body and a POST to its stored answer, and a server
// brought to where timed calls start (answering, its user loaded, no index building).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request, type Agent } from "node:http";
import { join, resolve } from "node:path";
import { generateQueries } from "./peers/data.ts";
import { startNodeFlags } from "./start-script.ts";

/**
 * Why spawnServe cannot start the checkout at `root` (`flag` names the option that gave it),
 * or null when it can: it needs the checkout's bin/strata.mjs and its node_modules/.bin/node.
 */
export function serveCheckoutProblem(flag: string, root: string): string | null {
  if (!existsSync(join(root, "bin/strata.mjs"))) return `${flag} ${root} is not a Strata checkout (no bin/strata.mjs)`;
  if (!existsSync(join(root, "node_modules/.bin/node"))) return `${root} has no node_modules/.bin/node: run npm ci there, or link the main checkout's node_modules`;
  return null;
}

/**
 * `strata serve` of the checkout at `root`, with the Node options of its own start script (a
 * build may differ from another in those alone) and `extraFlags` after them, on `dataDir`, at
 * 127.0.0.1:`port`, logging errors only; `env` adds to its environment. Its stdout is dropped
 * and its stderr is this process'.
 */
export function spawnServe(root: string, dataDir: string, port: number, options: { extraFlags?: readonly string[]; env?: Record<string, string> } = {}): ChildProcess {
  const startScript = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts.start as string;
  return spawn(join(root, "node_modules/.bin/node"), [...startNodeFlags(startScript), ...(options.extraFlags ?? []), "bin/strata.mjs", "serve"], {
    cwd: root,
    env: { ...process.env, ...options.env, PORT: String(port), HOST: "127.0.0.1", STRATA_DATA_DIR: dataDir, STRATA_LOG_LEVEL: "error" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** A server a bench tool started, watched until the tool stops it (watchServer). */
export interface WatchedServer {
  readonly child: ChildProcess;
  /** Resolves once the server has exited, asked to or not. */
  readonly exited: Promise<void>;
  /** Sends `signal` (SIGTERM unless given) unless the server has already exited, and resolves once it has. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Watches a started server: if it exits before stop() is called, `unexpected` is told how
 * ("exited with 1", "was stopped by SIGKILL"), for the tool to clean up, say so and exit 1.
 * An exit after stop() is the one the tool asked for.
 */
export function watchServer(child: ChildProcess, unexpected: (how: string) => void): WatchedServer {
  let stopping = false;
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once("exit", () => resolveExit());
  });
  child.on("exit", (code, signal) => {
    if (!stopping) unexpected(signal ? `was stopped by ${signal}` : `exited with ${code}`);
  });
  return {
    child,
    exited,
    async stop(signal = "SIGTERM") {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The size of the user a data directory was built with (bench/search.ts's search-bench.json); `fail` on a directory it did not build. */
export function builtSize(flag: string, dir: string, fail: (message: string) => never): number {
  const file = join(dir, "search-bench.json");
  if (!existsSync(file)) fail(`${flag} ${dir} is not a data directory bench/search.ts built (no search-bench.json)`);
  const n = Number(JSON.parse(readFileSync(file, "utf8")).size);
  if (!Number.isInteger(n) || n < 1) fail(`${file} names no size`);
  return n;
}

/**
 * Untimed queries that warm a server before its timed calls: of the same kinds and words as
 * the timed ones (the peers' queries, generateQueries' seed 8), none of them a timed query's
 * string. A call warms what a later one with the same words reuses (a common word's postings
 * copied for BM25's kernel, its impacts), so that timed calls find it as a long-running
 * server's would.
 */
export function warmQueriesFor(timed: readonly string[]): string[] {
  return generateQueries(9, 400).filter((q) => !timed.includes(q));
}

/** The growth workload's context call: the user's last session of `size` messages (sessions of 100), query `q`, a budget of 4000 tokens. */
export function contextPath(q: string, size: number): string {
  return `/v1/sessions/g-${Math.floor((size - 1) / 100)}/context?userId=u-growth&query=${encodeURIComponent(q)}&budget=4000`;
}

/** Resolves once the server answers /v1/health (it has started; no user is loaded yet); throws after 5 minutes. */
export async function answering(get: (path: string) => Promise<{ body: any }>): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await get("/v1/health");
      return;
    } catch {
      if (Date.now() - t0 > 300_000) throw new Error("the server did not answer /v1/health within 5 minutes");
      await sleep(200);
    }
  }
}

/** GET `path` from 127.0.0.1:`port`: the milliseconds to the whole body, and the body parsed; rejects on a status other than 200. */
export function getJson(agent: Agent, port: number, path: string): Promise<{ ms: number; body: any }> {
  return new Promise((resolveReply, reject) => {
    const t = performance.now();
    const req = request({ host: "127.0.0.1", port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const ms = performance.now() - t;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString());
          if (res.statusCode !== 200) reject(new Error(`GET ${path} -> ${res.statusCode} ${JSON.stringify(body).slice(0, 300)}`));
          else resolveReply({ ms, body });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** POST `body` as JSON to 127.0.0.1:`port`: the milliseconds to the whole answer; rejects on a status other than 201 (stored). */
export function postJson(agent: Agent, port: number, path: string, body: unknown): Promise<number> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolveMs, reject) => {
    const t = performance.now();
    const req = request({ host: "127.0.0.1", port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": data.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => (res.statusCode === 201 ? resolveMs(performance.now() - t) : reject(new Error(`POST ${path} -> ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for the server to answer /v1/health (at most 5 minutes; throws after), makes the
 * `warm` calls untimed (they load the user's indexes), then waits until no vector index is
 * being built (GET /v1/status).
 */
export async function readyForCalls(get: (path: string) => Promise<{ body: any }>, warm: readonly string[]): Promise<void> {
  await answering(get);
  for (const path of warm) await get(path);
  for (;;) {
    const status = await get("/v1/status");
    if (!(status.body?.indexes?.building > 0)) break;
    await sleep(500);
  }
}

/**
 * The two checkouts an A/B tool runs (--a, --b) as absolute paths, and the environment each one's
 * server gets on top (--env-a, --env-b: NAME=VALUE, repeatable). `usage` on a checkout that
 * cannot serve (serveCheckoutProblem) or a pair of another shape.
 */
export function abBuilds(
  opts: { a: string; b: string; envA: readonly string[]; envB: readonly string[] },
  usage: (message: string) => never,
): { roots: { A: string; B: string }; env: { A: Record<string, string>; B: Record<string, string> } } {
  const roots = { A: resolve(opts.a), B: resolve(opts.b) };
  for (const [name, root] of Object.entries(roots)) {
    const problem = serveCheckoutProblem(`--${name.toLowerCase()}`, root);
    if (problem) usage(problem);
  }
  return { roots, env: { A: envPairs("--env-a", opts.envA, usage), B: envPairs("--env-b", opts.envB, usage) } };
}

/** NAME=VALUE options (`flag`, repeatable) as an environment to add; `usage` on one without a name or an equals sign. */
export function envPairs(flag: string, pairs: readonly string[], usage: (message: string) => never): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq < 1) usage(`${flag} takes NAME=VALUE, got ${p}`);
    env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return env;
}
