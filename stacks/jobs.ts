// The jobs queue, its dead-letter queue and the worker subscribed to it. The numbers hang
// together: the worker may run WORKER_TIMEOUT; the queue hides a received batch for six
// times that (what AWS advises for Lambda event sources, so a retried invocation never sees
// its own batch again); the worker leases each job in the archive for the same visibility;
// and after MAX_RECEIVES receives a message moves to the dead-letter queue, when the worker
// also marks its job failed (it counts receives with the same number).

import { NODE_FUNCTION } from "./defaults.ts";

export const WORKER_TIMEOUT_SECONDS = 60;
export const VISIBILITY_SECONDS = 6 * WORKER_TIMEOUT_SECONDS;
export const MAX_RECEIVES = 5;

export function createJobs(links: unknown[]) {
  const deadLetters = new sst.aws.Queue("JobsDeadLetters", {
    transform: { queue: { messageRetentionSeconds: 14 * 24 * 3600 } },
  });
  const queue = new sst.aws.Queue("Jobs", {
    visibilityTimeout: `${VISIBILITY_SECONDS} seconds`,
    dlq: { queue: deadLetters.arn, retry: MAX_RECEIVES },
  });
  queue.subscribe(
    {
      handler: "functions/worker.handler",
      ...NODE_FUNCTION,
      timeout: `${WORKER_TIMEOUT_SECONDS} seconds`,
      memory: "1024 MB",
      link: [...links, queue],
      environment: {
        STRATA_QUEUE_MAX_RECEIVES: String(MAX_RECEIVES),
        STRATA_QUEUE_VISIBILITY_SECONDS: String(VISIBILITY_SECONDS),
      },
    },
    // Partial responses: functions/worker.ts returns batchItemFailures, so one bad job is retried alone.
    { batch: { size: 10, window: "5 seconds", partialResponses: true } },
  );
  return { queue, deadLetters };
}
