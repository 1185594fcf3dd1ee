// Bundles functions/edge.ts for a Workers-style runtime: one ES module, browser platform,
// the `workerd`/`worker` export conditions, and nothing external — so any Node built-in on
// the read path fails the build instead of failing at run time on the edge. One exception,
// kept as narrow as it can be: the Pinecone SDK's assistant module loads node:stream, fs
// and path with dynamic import() inside its file-upload and chat-stream functions, which the
// vector index never calls; those dynamic imports stay as they are (and would fail only if
// called), any other Node import still fails the build.
//
//   node_modules/.bin/node functions/edge-build.ts [outfile]   (default .edge/strata-edge.mjs)

import { resolve } from "node:path";
import { build, type Metafile, type Plugin } from "esbuild";

const UNREACHED_NODE_IMPORTS: Plugin = {
  name: "pinecone-assistant-dynamic-node-imports",
  setup(b) {
    b.onResolve({ filter: /^(node:)?(stream|fs|path)$/ }, (args) =>
      args.kind === "dynamic-import" && /@pinecone-database\/pinecone\/dist\/assistant\//.test(args.importer) ? { path: args.path, external: true } : undefined,
    );
  },
};

export async function buildEdgeBundle(outfile: string): Promise<{ bytes: number; metafile: Metafile }> {
  const result = await build({
    entryPoints: [resolve(import.meta.dirname, "edge.ts")],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    metafile: true,
    plugins: [UNREACHED_NODE_IMPORTS],
    logLevel: "silent",
  });
  const out = Object.values(result.metafile.outputs)[0]!;
  return { bytes: out.bytes, metafile: result.metafile };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outfile = resolve(process.argv[2] ?? ".edge/strata-edge.mjs");
  buildEdgeBundle(outfile).then(
    ({ bytes }) => process.stdout.write(`${outfile}: ${(bytes / 1024).toFixed(0)} KiB\n`),
    (e: { errors?: { text: string; location?: { file: string; line: number } | null }[] }) => {
      for (const err of e.errors ?? [e]) process.stderr.write(`${(err as { location?: { file: string; line: number } }).location?.file ?? ""}:${(err as { location?: { line: number } }).location?.line ?? ""} ${(err as { text?: string }).text ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
