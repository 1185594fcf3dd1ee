// Settings every function shares. Splitting puts PGlite, the Neo4j driver and the NLP
// extractor in chunks that load only when used (lib/runtime.ts imports them lazily); the
// AWS SDK stays bundled, which measured a faster cold start than the runtime's own copy
// (bench/bundle.ts, BENCHMARKS.md).

export const NODE_FUNCTION = {
  runtime: "nodejs22.x",
  architecture: "arm64",
  nodejs: { format: "esm", minify: true, splitting: true },
} as const;
