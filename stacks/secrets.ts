// The secrets every stage's functions read, set per stage or once for all stages with
// `npx sst secret set <Name> <value> [--fallback]`. A secret with an empty placeholder is
// optional: left unset, its tier keeps the embedded adapter (the graph as tables in the
// archive, the local embedder). Production's database URL is its own secret (the Neon main
// branch); other stages get a branch of their own (stacks/database.ts).

export function createSecrets() {
  return {
    /** Bearer key of the default tenant (at least 16 characters). */
    strataApiKey: new sst.Secret("StrataApiKey"),
    upstashUrl: new sst.Secret("UpstashUrl"),
    upstashToken: new sst.Secret("UpstashToken"),
    pineconeApiKey: new sst.Secret("PineconeApiKey", ""),
    pineconeIndexHost: new sst.Secret("PineconeIndexHost", ""),
    neo4jUri: new sst.Secret("Neo4jUri", ""),
    neo4jUsername: new sst.Secret("Neo4jUsername", ""),
    neo4jPassword: new sst.Secret("Neo4jPassword", ""),
    openAiApiKey: new sst.Secret("OpenAiApiKey", ""),
    /** Neon API key and project: preview stages branch the project's main branch with them. */
    neonApiKey: new sst.Secret("NeonApiKey", ""),
    neonProjectId: new sst.Secret("NeonProjectId", ""),
  };
}

export type Secrets = ReturnType<typeof createSecrets>;

/** The secrets the functions link (functions/linked.ts maps each to a variable of lib/config.ts). */
export function functionSecrets(s: Secrets) {
  return [
    s.strataApiKey,
    s.upstashUrl,
    s.upstashToken,
    s.pineconeApiKey,
    s.pineconeIndexHost,
    s.neo4jUri,
    s.neo4jUsername,
    s.neo4jPassword,
    s.openAiApiKey,
  ];
}
