// What the embedded server's scheduled summaries cost the requests beside them (issue 8): on a
// fresh data directory, --sessions long coding-agent sessions of 400 turns each (tool output
// included) and a short chat session are written, their derived work drained, then the short
// session's context call is made every 5 ms until --seconds after the server started. The
// summary timer (STRATA_SUMMARY_EVERY_SECONDS, --every) first fires inside that stretch and
// finds the long sessions due; their summaries run beside the calls. Per run: the calls' p50,
// p99 and slowest, and the calls over 15 ms with when they came (seconds after the start).
//
// Two builds one after the other, A B B A by default (--runs 2), each on its own directory.
//
//   node bench/summary-stall.ts --a ../base --b . [--sessions 6] [--every 60] [--seconds 75] [--runs 2]

import { mkdtempSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quantile } from "./stats.ts";
import { generateMessages } from "./peers/data.ts";
import { abBuilds, answering, getJson, postJson, spawnServe, watchServer } from "./serve-client.ts";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    a: { type: "string" },
    b: { type: "string", default: "." },
    sessions: { type: "string", default: "6" },
    every: { type: "string", default: "60" },
    seconds: { type: "string", default: "75" },
    runs: { type: "string", default: "2" },
    port: { type: "string", default: "8951" },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

/** A run that went wrong after its command line was accepted: exit 1. */
function fail(message: string): never {
  return benchFailure(import.meta.url, message);
}

if (!opts.a) usage("--a is required (see the header of bench/summary-stall.ts)");
const sessions = wholeNumber(import.meta.url, "--sessions", opts.sessions, 1, { of: "sessions" });
const every = wholeNumber(import.meta.url, "--every", opts.every, 1, { of: "seconds" });
const seconds = wholeNumber(import.meta.url, "--seconds", opts.seconds, 1, { of: "seconds" });
const runs = wholeNumber(import.meta.url, "--runs", opts.runs, 1);
const port = wholeNumber(import.meta.url, "--port", opts.port, 1, { most: 65535 });
if (seconds <= every) usage(`--seconds must be past the timer's first run (--every ${every}), got ${seconds}`);
const { roots } = abBuilds({ a: opts.a, b: opts.b!, envA: [], envB: [] }, usage);

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONTEXT = "/v1/sessions/chat/context?userId=u1&budget=2000";

async function runOnce(build: "A" | "B"): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "strata-summary-stall-"));
  const server = watchServer(spawnServe(roots[build], dir, port, { env: { STRATA_SUMMARY_EVERY_SECONDS: String(every) } }), (how) => {
    rmSync(dir, { recursive: true, force: true });
    fail(`${build}'s server ${how} before the run ended`);
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) => getJson(agent, port, path);
  let failure: string | null = null;
  try {
    await answering(get);
    const started = Date.now();
    const at = () => (Date.now() - started) / 1000;
    for (let s = 0; s < sessions; s++) {
      const msgs = generateMessages({ seed: 11 + s, count: 400, profile: "coding", prefix: `c${s}-` });
      for (let i = 0; i < msgs.length; i += 100) await postJson(agent, port, `/v1/sessions/long-${s}/messages`, { userId: "u1", messages: msgs.slice(i, i + 100) });
    }
    await postJson(agent, port, "/v1/sessions/chat/messages", { userId: "u1", messages: generateMessages({ seed: 3, count: 20, profile: "chat", prefix: "k-" }) });
    while ((await get("/v1/status")).body.queue.pending > 0) await sleep(200);
    const drained = at();
    if (drained >= every) log(`${build}: the derived work drained ${drained.toFixed(1)} s after the start, past the timer's first run: raise --every`);
    // The first calls load the user: not timed.
    for (let i = 0; i < 20; i++) await get(CONTEXT);
    const ms: number[] = [];
    const slow: string[] = [];
    while (at() < seconds) {
      const r = await get(CONTEXT);
      ms.push(r.ms);
      if (r.ms > 15) slow.push(`${at().toFixed(2)}:${r.ms.toFixed(0)}`);
      await sleep(5);
    }
    ms.sort((x, y) => x - y);
    log(`${build} ${roots[build]}: drained at ${drained.toFixed(1)} s; ${ms.length} context calls, p50 ${quantile(ms, 0.5).toFixed(2)}, p99 ${quantile(ms, 0.99).toFixed(2)}, slowest ${ms[ms.length - 1]!.toFixed(1)} ms; over 50 ms: ${ms.filter((x) => x > 50).length}`);
    log(`  over 15 ms (s:ms): ${slow.join(" ") || "none"}`);
  } catch (e) {
    // A request that failed because the server went away: the exit handler says so, if the
    // server is gone within a second. Otherwise the request's error, once the server is stopped.
    await Promise.race([server.exited, sleep(1000)]);
    failure = `${build}: ${(e as Error).message}`;
  } finally {
    agent.destroy();
    await server.stop("SIGINT");
    rmSync(dir, { recursive: true, force: true });
  }
  if (failure) fail(failure);
}

const order: ("A" | "B")[] = [];
for (let r = 0; r < runs; r++) order.push(...((r % 2 ? ["B", "A"] : ["A", "B"]) as ("A" | "B")[]));
for (const [i, build] of order.entries()) {
  log(`run ${i + 1} / ${order.length}: ${build}`);
  await runOnce(build);
}
