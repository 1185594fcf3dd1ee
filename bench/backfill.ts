// Writes beside derived work (issue 8): the embedded server takes batched ingests from
// --clients clients while its job runner embeds and extracts what came before, on the same
// thread. It prints how long the ingests took and their latency, how long until the derived
// work drained, and how long the server's event loop was held meanwhile (bench/loop-lag.mjs,
// loaded into the server). A held loop delays every request that comes, whatever it asks.
//
//   node_modules/.bin/node bench/backfill.ts [--a .] [--b DIR] [--rounds 2] [--clients 8]
//     [--batches 12] [--batch 100] [--port 8871] [--seed 42]
//
// Each round starts a server per checkout (--a, then --b when given), one after the other, on
// a fresh data directory, and sends the same messages (strata-load.ts's generators, from
// --seed). The first few seconds after a start (opening PGlite, migrations) are not counted in
// the loop's figures: lateness is counted from the first ingest on.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { benchFailure, benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { quantile } from "./stats.ts";
import { getJson, postJson, readyForCalls, serveCheckoutProblem, spawnServe, watchServer } from "./serve-client.ts";
import { messagesFor, NAMES, pick, rng } from "./strata-load.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    a: { type: "string", default: "." },
    b: { type: "string" },
    rounds: { type: "string", default: "2" },
    clients: { type: "string", default: "8" },
    batches: { type: "string", default: "12" },
    batch: { type: "string", default: "100" },
    port: { type: "string", default: "8871" },
    seed: { type: "string", default: "42" },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

const count = (flag: string, value: string | undefined, most: number) => wholeNumber(import.meta.url, flag, value, 1, { most });
const rounds = count("--rounds", opts.rounds, 100);
const clients = count("--clients", opts.clients, 256);
const batches = count("--batches", opts.batches, 10_000);
const batch = count("--batch", opts.batch, 500);
const port = count("--port", opts.port, 65535);
const seed = Number(opts.seed);
if (!Number.isInteger(seed)) usage(`--seed must be a whole number, got ${opts.seed}`);
const roots = [opts.a!, ...(opts.b ? [opts.b] : [])].map((r) => resolve(r));
for (const [i, root] of roots.entries()) {
  const problem = serveCheckoutProblem(i === 0 ? "--a" : "--b", root);
  if (problem) usage(problem);
}

const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const lagModule = new URL("./loop-lag.mjs", import.meta.url).pathname;

interface Outcome {
  ingestMs: number;
  ackP50: number;
  ackMax: number;
  drainMs: number;
  lags: number[];
}

async function once(root: string): Promise<Outcome> {
  const scratch = mkdtempSync(join(tmpdir(), "strata-backfill-"));
  const lagFile = join(scratch, "lags");
  writeFileSync(lagFile, "");
  const server = watchServer(
    spawnServe(root, join(scratch, "data"), port, {
      extraFlags: ["--import", lagModule],
      env: { STRATA_BENCH_LAG_FILE: lagFile },
    }),
    (how) => {
      rmSync(scratch, { recursive: true, force: true });
      benchFailure(import.meta.url, `the server of ${root} ${how} before its round ended`);
    },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: clients + 1 });
  try {
    await readyForCalls((path) => getJson(agent, port, path), []);
    writeFileSync(lagFile, ""); // lateness from here on
    const acks: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const r = rng(seed * 1000 + c);
        for (let i = 0; i < batches; i++) {
          const sessionId = `bf-${c}-${i}`;
          const messages = messagesFor(r, sessionId, 0, batch, pick(r, NAMES), Date.UTC(2026, 0, 1));
          acks.push(await postJson(agent, port, `/v1/sessions/${sessionId}/messages`, { userId: `u-${c % 4}`, messages }));
        }
      }),
    );
    const ingestMs = performance.now() - start;
    for (let polls = 0; ; polls++) {
      const { body } = await getJson(agent, port, "/v1/status");
      if (body.queue.pending === 0 && body.queue.inFlight === 0) break;
      if (polls % 25 === 0) log(`  draining: ${body.queue.pending} jobs pending, ${body.queue.inFlight} running`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const drainMs = performance.now() - start;
    const lags = readFileSync(lagFile, "utf8").split("\n").filter(Boolean).map(Number);
    return { ingestMs, ackP50: quantile(acks, 0.5), ackMax: Math.max(...acks), drainMs, lags };
  } finally {
    agent.destroy();
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const [i, root] of roots.entries()) {
    const name = roots.length > 1 ? (i === 0 ? "a" : "b") : "";
    log(`round ${round}${name ? `, ${name} (${root})` : ""}: ${clients} clients × ${batches} batches of ${batch}`);
    const o = await once(root);
    const held = o.lags.filter((ms) => ms > 300);
    const line = `| ${round} | ${name || root} | ${(o.ingestMs / 1000).toFixed(2)} | ${((clients * batches * batch) / (o.ingestMs / 1000)).toFixed(0)} | ${o.ackP50.toFixed(0)} | ${o.ackMax.toFixed(0)} | ${(o.drainMs / 1000).toFixed(1)} | ${held.length} | ${o.lags.length ? Math.max(...o.lags).toFixed(0) : "–"} |`;
    log(line);
    rows.push(line);
  }
}
process.stdout.write(
  `\n| round | server | ingest s | acknowledged msg/s | ack p50 ms | ack max ms | drained after s | loop held > 300 ms (times) | longest hold ms |\n|---|---|---|---|---|---|---|---|---|\n${rows.join("\n")}\n`,
);
