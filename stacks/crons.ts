// Scheduled work (functions/cron.ts). The relay re-sends outbox jobs that an API invocation
// committed but never got onto the queue; it is the only scheduled task lib has today —
// summaries and retention sweeps join this list when lib grows services for them.

import { NODE_FUNCTION } from "./defaults.ts";

export const CRONS = [{ name: "OutboxRelay", task: "relay", schedule: "rate(1 minute)" }] as const;

export function createCrons(links: unknown[]) {
  return CRONS.map(
    (c) =>
      new sst.aws.CronV2(c.name, {
        schedule: c.schedule,
        event: { task: c.task },
        function: { ...NODE_FUNCTION, handler: "functions/cron.handler", timeout: "60 seconds", link: links },
      }),
  );
}
