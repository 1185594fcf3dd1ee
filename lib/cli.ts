// `strata <command>`: the CLI beside the npm scripts. Commands parse their own few flags;
// configuration comes from the environment through lib/config.ts like everywhere else.

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { loadConfig } from "./config.ts";
import { isStrataError } from "./core/errors.ts";
import { createStrata, describeTiers, migrateAll } from "./runtime.ts";
import { formatDoctor, runDoctor } from "./doctor.ts";
import { runReindexCommand } from "./core/services/reindex.ts";
import { hashApiKey } from "./http/app.ts";
import { startServer } from "./server.ts";

const USAGE = `usage: strata <command>

commands:
  serve                      start the HTTP API with the job consumer (PORT, STRATA_DATA_DIR, STRATA_API_KEY, ...)
  worker                     run only the job consumer (SQS long-poller, or the in-process runner)
  doctor                     check every configured tier and say what is wrong and how to fix it
  reindex --vectors          rebuild every message vector from the archive with the configured embedder (resumable)
  jobs retry --failed [--tenant <id>]
                             re-drive dead-lettered jobs (they run again from attempt 1)
  tenants create <name>      create a tenant and print a new API key for it
  keys create --tenant <id>  print a new API key for an existing tenant
  migrate                    apply pending schema migrations and exit
`;

async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command ? 0 : 1;
  }
  const config = loadConfig();

  if (command === "serve") {
    const running = await startServer(config);
    const shutdown = (signal: string) => {
      process.stdout.write(`${signal}: stopping (pending jobs stay queued for the next start)\n`);
      running.stop().then(
        () => process.exit(0),
        (e) => {
          process.stderr.write(`shutdown failed: ${(e as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    return -1; // keep running
  }

  if (command === "worker") {
    const strata = await createStrata({ ...config, workers: true });
    process.stdout.write(`Strata worker consuming from ${describeTiers(config).queue}\n`);
    const shutdown = (signal: string) => {
      process.stdout.write(`${signal}: finishing the job in hand, then stopping\n`);
      strata.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    return -1;
  }

  if (command === "doctor") {
    const lines = await runDoctor(config);
    process.stdout.write(formatDoctor(lines) + "\n");
    return lines.every((l) => l.ok) ? 0 : 1;
  }

  if (command === "reindex") {
    if (sub !== "--vectors") throw new Error("reindex needs --vectors (the only derived tier rebuilt this way)");
    const strata = await createStrata({ ...config, workers: false });
    try {
      const { archive, vectors, embedder } = strata.deps;
      return await runReindexCommand({ archive, vectors, embedder }, { stderr: process.stderr });
    } finally {
      await strata.close();
    }
  }

  if (command === "jobs" && sub === "retry") {
    const { values } = parseArgs({ args: rest, options: { failed: { type: "boolean" }, tenant: { type: "string" } } });
    if (!values.failed) throw new Error("jobs retry needs --failed (the only jobs that can be re-driven)");
    const strata = await createStrata({ ...config, workers: false });
    try {
      const jobs = await strata.deps.archive.retryFailedJobs(values.tenant);
      if (jobs.length) {
        await strata.deps.queue.dispatch(jobs);
        await strata.deps.archive.markDispatched(jobs.map((j) => j.id));
      }
      const counts = new Map<string, number>();
      for (const j of jobs) counts.set(j.type, (counts.get(j.type) ?? 0) + 1);
      const byType = [...counts].map(([t, n]) => `${n} ${t}`);
      process.stdout.write(jobs.length ? `re-driven ${jobs.length} failed job(s): ${byType.join(", ")}\n` : "no failed jobs\n");
    } finally {
      await strata.close();
    }
    return 0;
  }

  if (command === "migrate") {
    for (const line of await migrateAll(config)) process.stdout.write(line + "\n");
    return 0;
  }

  if ((command === "tenants" && sub === "create") || (command === "keys" && sub === "create")) {
    const { values, positionals } = parseArgs({ args: rest, options: { tenant: { type: "string" }, label: { type: "string" } }, allowPositionals: true });
    const strata = await createStrata({ ...config, workers: false });
    try {
      let tenantId: string;
      if (command === "tenants") {
        const name = positionals.join(" ").trim();
        if (!name) throw new Error("tenants create needs a name: strata tenants create <name>");
        tenantId = (await strata.deps.archive.createTenant({ name })).id;
      } else {
        if (!values.tenant) throw new Error("keys create needs --tenant <id>");
        if (!(await strata.deps.archive.getTenant(values.tenant))) throw new Error(`no tenant ${values.tenant}`);
        tenantId = values.tenant;
      }
      const key = `sk_${randomBytes(24).toString("base64url")}`;
      await strata.deps.archive.addApiKey({ tenantId, keyHash: await hashApiKey(key), label: values.label });
      process.stdout.write(`tenant ${tenantId}\napi key ${key}\n(the key is stored hashed; this is the only time it is shown)\n`);
    } finally {
      await strata.close();
    }
    return 0;
  }

  process.stderr.write(`unknown command: ${argv.join(" ")}\n\n${USAGE}`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    process.stderr.write(`strata: ${isStrataError(e) ? `${e.code}: ${e.message}` : (e as Error).message}\n`);
    process.exit(1);
  },
);
