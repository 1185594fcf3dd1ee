// The JobQueue contract on SQS (fauxqs in-process), with the archive on PGlite as the outbox.
// Short visibility timeouts and long-poll waits keep retries and shutdown quick.

import { afterAll } from "vitest";
import { createSqsJobQueue } from "../../lib/adapters/sqs/job-queue.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { startSqsStandIn, type SqsStandIn } from "../stand-ins/sqs.ts";
import { jobQueueContract } from "./job-queue.contract.ts";

let sqs: SqsStandIn | null = null;
afterAll(async () => {
  await sqs?.close();
});

jobQueueContract("sqs (fauxqs)", async () => {
  sqs = await startSqsStandIn();
  const stand = sqs;
  const archive = createSqlArchive({ sql: await sharedPglite() });
  return {
    archive,
    makeQueue: ({ maxAttempts }) => {
      const { queueUrl } = stand.createQueue(uid("jobs"), { maxReceiveCount: maxAttempts, visibilityTimeoutSeconds: 1 });
      return createSqsJobQueue({
        archive,
        queueUrl,
        client: stand.client,
        maxReceives: maxAttempts,
        visibilityTimeoutSeconds: 1,
        waitTimeSeconds: 1,
        relay: { afterMs: 300, everyMs: 200 },
      });
    },
    cleanup: closeSharedPglite,
  };
});
