// The embedded server: one process serving HTTP API v1 on Node, with the job runner
// beside it. SIGINT/SIGTERM stop accepting requests, let the job in hand finish and close
// the archive cleanly; whatever is still queued stays in the outbox for the next start.

import { serve, type ServerType } from "@hono/node-server";
import type { StrataConfig } from "./config.ts";
import { createStrata, describeTiers, type Strata } from "./runtime.ts";

export interface RunningServer {
  strata: Strata;
  server: ServerType;
  url: string;
  stop(): Promise<void>;
}

export async function startServer(config: StrataConfig, out: (line: string) => void = (l) => process.stdout.write(l + "\n")): Promise<RunningServer> {
  const strata = await createStrata(config);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: strata.app.fetch, port: config.port, hostname: config.host }, () => resolve(s));
    s.once("error", reject);
  });
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`;
  out(`Strata listening on ${url}`);
  for (const [tier, what] of Object.entries(describeTiers(config))) out(`  ${tier.padEnd(8)} ${what}`);
  out(
    config.apiKey
      ? "Auth: every request needs Authorization: Bearer <key> (STRATA_API_KEY or a key from `strata tenants create`)."
      : "Auth: none. No STRATA_API_KEY is set, so this server serves one default tenant without auth and listens on loopback only.",
  );
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await strata.close();
    })());
  return { strata, server, url, stop };
}
