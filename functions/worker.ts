// The worker function: SQS invokes it with batches of job envelopes. The SQS adapter's record
// processor (the same one `strata worker` runs when it long-polls) runs each job and answers
// a partial batch response, so SQS retries only the records that failed and, after the
// queue's maxReceiveCount, moves them to the dead-letter queue.

import type { SQSEvent, SQSBatchResponse } from "aws-lambda";
import type { SqsJobQueue, SqsRecord } from "../lib/adapters/sqs/job-queue.ts";
import { StrataError } from "../lib/core/errors.ts";
import { createJobHandler } from "../lib/core/services/worker.ts";
import { lambdaStrata } from "./strata.ts";

const ready = lambdaStrata();

export async function worker(event: SQSEvent): Promise<SQSBatchResponse> {
  const strata = await ready.catch(() => lambdaStrata());
  const queue = strata.deps.queue;
  if (queue.adapter !== "sqs") {
    throw new StrataError("config", "CONFIG_INVALID", "the worker function needs the Jobs queue linked (STRATA_QUEUE_URL)");
  }
  return (queue as SqsJobQueue).processRecords(event.Records as unknown as SqsRecord[], createJobHandler(strata.deps));
}

export { worker as handler };
