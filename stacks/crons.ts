// Scheduled work (functions/cron.ts): the relay re-sends outbox jobs that an API invocation
// committed but never got onto the queue; summarize queues rolling-summary jobs for sessions
// due for one (the worker writes them); retention deletes memories past their expiry.

import { NODE_FUNCTION } from "./defaults.ts";

export const CRONS = [
  { name: "OutboxRelay", task: "relay", schedule: "rate(1 minute)" },
  { name: "Summaries", task: "summarize", schedule: "rate(5 minutes)" },
  { name: "Retention", task: "retention", schedule: "rate(1 hour)" },
] as const;

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
