/// <reference path="./.sst/platform/config.d.ts" />

// Strata on AWS (SST v3): the API function behind a Function URL, the jobs queue with its
// dead-letter queue and worker, the scheduled relay, and per-stage data. Every function runs
// on nodejs22.x and gets its configuration only through links (functions/linked.ts). The
// production stage's resources are protected and retained by `sst remove`; any other stage
// (pr-123 for a pull request) gets data of its own that `sst remove` deletes.
//
//   npx sst deploy --stage production
//   npx sst deploy --stage pr-123 && npx sst remove --stage pr-123

export default $config({
  app(input) {
    const production = input?.stage === "production";
    return {
      name: "strata",
      home: "aws",
      removal: production ? "retain" : "remove",
      protect: production,
      providers: { aws: "7.20.0", command: "1.0.1" },
    };
  },
  async run() {
    const { createSecrets, functionSecrets } = await import("./stacks/secrets.ts");
    const { createDatabase } = await import("./stacks/database.ts");
    const { createJobs } = await import("./stacks/jobs.ts");
    const { createApi } = await import("./stacks/api.ts");
    const { createCrons } = await import("./stacks/crons.ts");

    const secrets = createSecrets();
    const database = createDatabase(secrets);
    const links = [database, ...functionSecrets(secrets)];
    const { queue, deadLetters } = createJobs(links);
    const api = createApi([...links, queue]);
    createCrons([...links, queue]);

    return { api: api.url, queue: queue.url, deadLetters: deadLetters.url };
  },
});
