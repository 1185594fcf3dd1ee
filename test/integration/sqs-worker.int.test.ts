// SQS specifics beyond the JobQueue contract: the Lambda-shaped record processor reports
// partial batch failures (only the bad record is retried), and a job that keeps failing ends
// up in the dead-letter queue as well as failed in the archive.

import { afterAll, beforeAll, expect, it } from "vitest";
import { createSqsJobQueue, type SqsRecord } from "../../lib/adapters/sqs/job-queue.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { Archive } from "../../lib/core/ports.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { startSqsStandIn, type SqsStandIn } from "../stand-ins/sqs.ts";

let sqs: SqsStandIn;
let archive: Archive;
beforeAll(async () => {
  sqs = await startSqsStandIn();
  archive = createSqlArchive({ sql: await sharedPglite() });
});
afterAll(async () => {
  await sqs?.close();
  await closeSharedPglite();
});

async function jobsFor(n: number) {
  const tenantId = uid("t");
  await archive.ensureTenant({ id: tenantId, name: tenantId });
  const r = await archive.ingest({
    tenantId,
    sessionId: uid("s"),
    userId: "u",
    messages: Array.from({ length: n }, (_, i) => ({ id: uid("m"), role: "user" as const, content: `m${i}`, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 })),
    jobsFor: (ms) => ms.map((m) => ({ type: "extract" as const, payload: { messageIds: [m.id] } })),
  });
  return { tenantId, jobs: r.jobs };
}

it("reports only the failing record of a Lambda batch", async () => {
  const { queueUrl } = sqs.createQueue(uid("q"), { maxReceiveCount: 3 });
  const queue = createSqsJobQueue({ archive, queueUrl, client: sqs.client, maxReceives: 3 });
  const { tenantId, jobs } = await jobsFor(3);
  const records: SqsRecord[] = jobs.map((j, i) => ({
    messageId: `rec-${i}`,
    receiptHandle: `rh-${i}`,
    body: JSON.stringify({ jobId: j.id, tenantId, type: j.type }),
    attributes: { ApproximateReceiveCount: "1" },
    eventSource: "aws:sqs",
  }));
  const bad = jobs[1]!.id;
  const seen: string[] = [];
  const result = await queue.processRecords(records, async (job) => {
    seen.push(job.id);
    if (job.id === bad) throw new Error("extractor crashed");
  });
  expect(result.batchItemFailures).toEqual([{ itemIdentifier: "rec-1" }]);
  expect(seen.sort()).toEqual(jobs.map((j) => j.id).sort());
  const after = Object.fromEntries((await archive.getJobs(jobs.map((j) => j.id))).map((j) => [j.id, j.status]));
  expect(after[bad]).toBe("dispatched"); // SQS owns the retry
  expect(Object.values(after).filter((s) => s === "done")).toHaveLength(2);
  // A redelivery of a finished job is acknowledged without running it again.
  const again = await queue.processRecords([records[0]!], async () => {
    throw new Error("must not run");
  });
  expect(again.batchItemFailures).toEqual([]);
});

it("moves a job that keeps failing to the dead-letter queue and marks it failed", async () => {
  const name = uid("q");
  const { queueUrl, dlqName } = sqs.createQueue(name, { maxReceiveCount: 2, visibilityTimeoutSeconds: 1 });
  const queue = createSqsJobQueue({ archive, queueUrl, client: sqs.client, maxReceives: 2, visibilityTimeoutSeconds: 1, waitTimeSeconds: 1 });
  const { tenantId, jobs } = await jobsFor(2);
  const bad = jobs[0]!.id;
  queue.start(async (job) => {
    if (job.id === bad) throw new Error("poison input");
  });
  await queue.dispatch(jobs);
  await archive.markDispatched(jobs.map((j) => j.id));
  for (let i = 0; i < 100 && sqs.depth(dlqName) === 0; i++) await new Promise((r) => setTimeout(r, 100));
  await queue.stop();
  expect(sqs.depth(dlqName)).toBe(1);
  expect(sqs.depth(name)).toBe(0);
  expect(await archive.queueStats(tenantId)).toMatchObject({ pending: 0, failed: 1 });
  expect((await archive.getJobs([bad]))[0]).toMatchObject({ status: "failed", lastError: "poison input", attempts: 2 });
});
