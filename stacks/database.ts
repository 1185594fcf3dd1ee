// The archive of a stage, linked to the functions as `Database` ({ url }).
// - production: the Neon main branch, whose URL is the DatabaseUrl secret. The stage is
//   protected and retained (sst.config.ts), so `sst remove` never touches it.
// - any other stage (a pull request's pr-123, a developer's own): a Neon branch of the main
//   branch made for it by stacks/stage-data.ts, run as a command whose delete hook, on
//   `sst remove`, deletes the branch and clears the stage's Upstash keys, Pinecone
//   namespaces and Neo4j labels.

import type { Secrets } from "./secrets.ts";

export const PRODUCTION = "production";

export function createDatabase(s: Secrets) {
  if ($app.stage === PRODUCTION) {
    const url = new sst.Secret("DatabaseUrl");
    return new sst.Linkable("Database", { properties: { url: url.value } });
  }
  const data = new command.local.Command(
    "StageData",
    {
      dir: $cli.paths.root,
      create: "node_modules/.bin/node stacks/stage-data.ts create",
      delete: "node_modules/.bin/node stacks/stage-data.ts remove",
      environment: {
        STRATA_STAGE: $app.stage,
        NEON_API_KEY: s.neonApiKey.value,
        NEON_PROJECT_ID: s.neonProjectId.value,
        UPSTASH_REDIS_REST_URL: s.upstashUrl.value,
        UPSTASH_REDIS_REST_TOKEN: s.upstashToken.value,
        PINECONE_API_KEY: s.pineconeApiKey.value,
        PINECONE_HOST: s.pineconeIndexHost.value,
        NEO4J_URI: s.neo4jUri.value,
        NEO4J_USERNAME: s.neo4jUsername.value,
        NEO4J_PASSWORD: s.neo4jPassword.value,
      },
      triggers: [$app.stage],
    },
    {
      // stdout carries the branch's connection string.
      additionalSecretOutputs: ["stdout"],
      // A rotated secret must not re-run create (one branch per stage); the delete hook
      // keeps the values it was created with.
      ignoreChanges: ["environment"],
      deleteBeforeReplace: true,
    },
  );
  const url = data.stdout.apply((out) => (JSON.parse(out) as { databaseUrl: string }).databaseUrl);
  return new sst.Linkable("Database", { properties: { url: $util.secret(url) } });
}
