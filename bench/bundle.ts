// Size and cold module-init time of the Lambda bundles, variants side by side.
//
//   node_modules/.bin/node bench/bundle.ts [runs]      (default 20 fresh processes per variant)
//
// Bundles functions/api.ts with esbuild, minified, ESM for node22 (what SST does for
// `runtime: "nodejs22.x"`), three ways: one file; split into chunks, where PGlite, the Neo4j
// driver and the NLP extractor sit in chunks loaded only when used (lib/runtime.ts imports
// them lazily) — what stacks/ deploy; and split with `@aws-sdk/*` left to the SDK v3 the
// Lambda runtime ships. The worker and cron bundles are built as deployed. Reports, per variant, the bytes a cold start
// loads (the entry and the chunks it imports statically) and whether neo4j-driver, the AWS
// SDK or PGlite are among them; then the module-init time — from import() to its
// resolution, in a fresh Node process each run, variants interleaved so noise hits them
// alike — as median and p95. Init is module evaluation only: the entry then starts
// connecting to its services, which no configuration here points anywhere. Last, the size
// of the edge read path's bundle (functions/edge-build.ts), which runs in workerd, not here.

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { build, type Metafile } from "esbuild";
import { buildEdgeBundle } from "../functions/edge-build.ts";
import { positionalCounts } from "./args.ts";

const [RUNS] = positionalCounts(import.meta.url, "runs", [20], 1) as [number];
const ROOT = resolve(import.meta.dirname, "..");
// Inside node_modules, so the SDK left external resolves as it does on Lambda.
const OUT = join(ROOT, "node_modules/.cache/strata-bundle");
const WATCH = ["neo4j-driver", "@aws-sdk/", "@electric-sql/pglite", "gpt-tokenizer"];

interface Variant {
  name: string;
  entry: string;
  splitting: boolean;
  sdkExternal: boolean;
}

const variants: Variant[] = [
  { name: "api: one file, SDK bundled", entry: "functions/api.ts", splitting: false, sdkExternal: false },
  { name: "api: split, SDK bundled (deployed)", entry: "functions/api.ts", splitting: true, sdkExternal: false },
  { name: "api: split, SDK from runtime", entry: "functions/api.ts", splitting: true, sdkExternal: true },
  { name: "worker: split, SDK bundled (deployed)", entry: "functions/worker.ts", splitting: true, sdkExternal: false },
  { name: "cron: split, SDK bundled (deployed)", entry: "functions/cron.ts", splitting: true, sdkExternal: false },
];

interface Built {
  variant: Variant;
  entryFile: string;
  initBytes: number;
  initGzip: number;
  totalBytes: number;
  files: number;
  inInit: string[];
}

async function bundle(v: Variant, dir: string): Promise<Built> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const result = await build({
    entryPoints: [join(ROOT, v.entry)],
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node22",
    splitting: v.splitting,
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    external: v.sdkExternal ? ["@aws-sdk/*"] : [],
    // CommonJS dependencies inside an ESM bundle need require().
    banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
    metafile: true,
    logLevel: "error",
  });
  const outputs = result.metafile.outputs;
  // Chunks reached by import() carry an entryPoint too: pick the variant's own.
  const entryKey = Object.keys(outputs).find((k) => outputs[k]!.entryPoint?.endsWith(v.entry))!;
  // What a cold start loads: the entry and, transitively, its static chunk imports.
  const init = new Set<string>();
  const visit = (k: string) => {
    if (init.has(k)) return;
    init.add(k);
    for (const imp of outputs[k]!.imports) if (imp.kind === "import-statement" && !imp.external) visit(imp.path);
  };
  visit(entryKey);
  const inputsOf = (ks: Iterable<string>) => [...ks].flatMap((k) => Object.keys(outputs[k]!.inputs));
  const externals = [...init].flatMap((k) => outputs[k]!.imports.filter((i) => i.external).map((i) => i.path));
  const inInit = WATCH.filter((w) => inputsOf(init).some((f) => f.includes(`node_modules/${w}`)) || externals.some((e) => e.startsWith(w))).map((w) =>
    externals.some((e) => e.startsWith(w)) ? `${w.replace(/\/$/, "")} (runtime's)` : w.replace(/\/$/, ""),
  );
  const initBytes = [...init].reduce((n, k) => n + outputs[k]!.bytes, 0);
  const initGzip = [...init].reduce((n, k) => n + gzipSync(readFileSync(k)).length, 0);
  const totalBytes = Object.values(outputs as Metafile["outputs"]).reduce((n, o) => n + o.bytes, 0);
  return { variant: v, entryFile: resolve(entryKey), initBytes, initGzip, totalBytes, files: Object.keys(outputs).length, inInit };
}

function initMs(file: string): number {
  const script = `const t=performance.now();await import(${JSON.stringify(pathToFileURL(file).href)});process.stdout.write(String(performance.now()-t));`;
  // A clean environment: no service variables, so the entry's connection attempt fails at once, off the clock.
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    env: { PATH: process.env.PATH ?? "", STRATA_LOG_LEVEL: "silent" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return Number(out);
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};
const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

const built: Built[] = [];
process.stderr.write(`bundling ${variants.length} variants\n`);
for (const [i, v] of variants.entries()) built.push(await bundle(v, join(OUT, String(i))));

process.stderr.write(`timing module init: ${RUNS} fresh processes per variant, interleaved\n`);
const times = built.map(() => [] as number[]);
for (let r = 0; r < RUNS; r++) {
  for (const [i, b] of built.entries()) times[i]!.push(initMs(b.entryFile));
  process.stderr.write(`\r  run ${r + 1}/${RUNS}`);
}
process.stderr.write("\n");

const base = quantile(times[0]!, 0.5);
console.log(`node ${process.version}, ${RUNS} runs per variant`);
console.log("| variant | loaded at cold start (min) | gzip | all files | init p50 | init p95 | p50 vs first | heavy packages loaded at start |");
console.log("|---|---|---|---|---|---|---|---|");
for (const [i, b] of built.entries()) {
  const p50 = quantile(times[i]!, 0.5);
  console.log(
    `| ${b.variant.name} | ${kib(b.initBytes)} | ${kib(b.initGzip)} | ${kib(b.totalBytes)} (${b.files}) | ${p50.toFixed(1)} ms | ${quantile(times[i]!, 0.95).toFixed(1)} ms | ${(p50 / base).toFixed(2)} | ${b.inInit.join(", ") || "none"} |`,
  );
}

const edgeFile = join(OUT, "edge", "strata-edge.mjs");
const edge = await buildEdgeBundle(edgeFile);
console.log(`\nedge read path (functions/edge.ts, one ES module for workerd): ${kib(edge.bytes)}, gzip ${kib(gzipSync(readFileSync(edgeFile)).length)}`);
