// Turns what SST links into a Lambda function into the environment record lib/config.ts
// reads, so lib never learns about SST: each linked resource arrives as an
// SST_RESOURCE_<Name> variable holding JSON (`Resource` from sst/resource parses them), and
// this file names which variable of lib/config.ts each one fills. Nothing here validates:
// loadConfig does, with messages that name the variable. A secret left at its empty
// placeholder counts as unset, so its tier keeps its embedded adapter.

import type { StrataConfig } from "../lib/config.ts";
import { loadConfig } from "../lib/config.ts";
import { StrataError } from "../lib/core/errors.ts";

/** Linked resource name → the property holding the value → the variable lib/config.ts reads. */
export const LINKS: ReadonlyArray<readonly [resource: string, property: string, variable: string]> = [
  ["Database", "url", "DATABASE_URL"],
  ["Jobs", "url", "STRATA_QUEUE_URL"],
  ["StrataApiKey", "value", "STRATA_API_KEY"],
  ["UpstashUrl", "value", "UPSTASH_REDIS_REST_URL"],
  ["UpstashToken", "value", "UPSTASH_REDIS_REST_TOKEN"],
  ["PineconeApiKey", "value", "PINECONE_API_KEY"],
  ["PineconeIndexHost", "value", "PINECONE_HOST"],
  ["Neo4jUri", "value", "NEO4J_URI"],
  ["Neo4jUsername", "value", "NEO4J_USERNAME"],
  ["Neo4jPassword", "value", "NEO4J_PASSWORD"],
  ["Neo4jDatabase", "value", "NEO4J_DATABASE"],
  ["OpenAiApiKey", "value", "OPENAI_API_KEY"],
];

/** The variables the linked resources provide (only those linked and non-empty). */
export function linkedEnvironment(resources: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, property, variable] of LINKS) {
    if (!(name in resources)) continue;
    const value = (resources[name] as Record<string, unknown> | undefined)?.[property];
    if (typeof value === "string" && value !== "") env[variable] = value;
  }
  const app = "App" in resources ? (resources.App as { stage?: unknown }) : undefined;
  if (typeof app?.stage === "string") env.STRATA_STAGE = app.stage;
  return env;
}

/**
 * The config of a Lambda function: the function's environment, overlaid by its links. A
 * Lambda never runs the in-process consumer (SQS invokes the worker function instead) and
 * cannot keep an embedded archive, so a missing Database link fails here, at init.
 */
export function lambdaConfig(env: Record<string, string | undefined>, resources: Record<string, unknown>): StrataConfig {
  const config = loadConfig({ ...env, ...linkedEnvironment(resources) }, { workers: false, dataDir: "memory://", summaryEverySeconds: 0, retentionEverySeconds: 0 });
  if (config.tiers.archive.kind !== "neon") {
    throw new StrataError("config", "CONFIG_INVALID", "no DATABASE_URL: link the Database resource to this function (stacks/database.ts) or set DATABASE_URL");
  }
  return config;
}
