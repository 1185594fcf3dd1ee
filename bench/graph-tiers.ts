// In-process timings of the context call and search on the embedded wiring (issue 8, the
// graph's reads): builds a Strata on an in-memory PGlite, ingests bench/strata-load.ts's
// 738-turn ≈2 MB session and grows its user to each size, lets the derived tiers drain, then
// makes sequential context calls (no query: the last user turn is the query) and searches
// through app.request(), printing the median of each tier's timing and the process CPU per
// call (process.cpuUsage(): every thread, so the extractor thread too, idle by then). No
// HTTP, so what is left is Strata's own work; CPU, unlike wall time, moves little when
// other processes share the cores.
//
//   node_modules/.bin/node bench/graph-tiers.ts [--dir CHECKOUT] [--sizes 1000,5000] [--calls 50]
//
// `--dir` serves another checkout's lib/ (e.g. the commit before a change) with the same data.

import { resolve } from "node:path";
import { messagesFor, queryFor, rng, turn } from "./strata-load.ts";
import { parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    dir: { type: "string", default: "." },
    sizes: { type: "string", default: "1000,5000" },
    calls: { type: "string", default: "50" },
    seed: { type: "string", default: "42" },
  },
});
const dir = resolve(opts.dir!);
const calls = Number(opts.calls);
const seed = Number(opts.seed);

const { createStrata } = await import(`${dir}/lib/runtime.ts`);
const { loadConfig } = await import(`${dir}/lib/config.ts`);
const strata = await createStrata(loadConfig({}, { dataDir: "memory://", logLevel: "silent", workers: true, summaryEverySeconds: 0, retentionEverySeconds: 0 }));

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await strata.app.request(path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

async function measure(label: string, n: number, one: (i: number) => Promise<any>) {
  const timings = new Map<string, number[]>();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const out = await one(i);
    for (const [k, v] of Object.entries(out.timings ?? {})) {
      if (!timings.has(k)) timings.set(k, []);
      timings.get(k)!.push(Number(v));
    }
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const tiers = [...timings].map(([k, v]) => `${k} ${median(v).toFixed(2)}`).join(", ");
  process.stdout.write(`${label}: cpu ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms/call, wall ${(wall / n).toFixed(2)} ms/call; median tiers (ms): ${tiers}\n`);
}

const day0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const r = rng(seed + 4);
const long: { id: string; role: "user" | "assistant"; name?: string; content: string; createdAt: string }[] = [];
for (let i = 0; i < 738; i++) {
  const t = turn(r, i, "Ann");
  let content = t.content;
  while (content.length < 1800 + Math.floor(r() * 1800)) content += "\n" + turn(r, i, "Ann").content;
  long.push({ id: `long-${i}`, ...t, content, createdAt: new Date(day0 + i * 60_000).toISOString() });
}
for (let k = 0; k < long.length; k += 100) await call("POST", "/v1/sessions/long/messages", { userId: "ctx", messages: long.slice(k, k + 100) });
let have = long.length;
const queries = Array.from({ length: 500 }, () => queryFor(rng(seed + 3)));
const qr = rng(seed + 3);
for (let i = 0; i < queries.length; i++) queries[i] = queryFor(qr);

process.stdout.write(`checkout ${dir}\n`);
for (const size of opts.sizes!.split(",").map(Number)) {
  const grow = rng(seed + 5 + size);
  let s = 0;
  while (have < size) {
    const len = Math.min(size - have, 200);
    await call("POST", `/v1/sessions/ctx-${size}-s${s}/messages`, { userId: "ctx", messages: messagesFor(grow, `ctx-${size}-s${s}`, 0, len, "Ann", day0 - (s + 1) * 86_400_000) });
    have += len;
    s++;
  }
  await strata.idle();
  for (let i = 0; i < 5; i++) await call("GET", "/v1/sessions/long/context?userId=ctx&budget=2000");
  for (let i = 0; i < 5; i++) await call("POST", "/v1/search", { userId: "ctx", query: queries[i]!, limit: 10 });
  await measure(`context, user of ${have}`, calls, () => call("GET", "/v1/sessions/long/context?userId=ctx&budget=2000"));
  await measure(`search, user of ${have}`, calls * 2, (i) => call("POST", "/v1/search", { userId: "ctx", query: queries[i % queries.length]!, limit: 10 }));
}
await strata.close();
