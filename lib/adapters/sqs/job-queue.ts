// The JobQueue port on Amazon SQS. A queue message carries only a job id and its tenant
// (never message text), so it stays far below the 256 KiB limit and the archive's outbox
// row remains the job's single source of truth: status, attempts and the last error live
// there, which is what GET /v1/status reads.
//
// One record processor serves both consumers: the Lambda SQS handler (event.Records) and
// the long-polling local worker (`strata worker`). A batch's jobs are leased and recorded in
// one archive call each, and run merged where the handler can (JobHandler.batch): a batch of
// ten single-message jobs costs one embedder call and one tier write, not ten. The answer is
// a partial batch response, so one bad job is retried alone, not its whole batch. Retries
// are SQS redeliveries after the visibility timeout; after `maxReceives` the job is marked
// failed in the archive and the queue's redrive policy moves the message to the DLQ.

import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type SQSClientConfig,
  SendMessageBatchCommand,
  type Message as SqsMessage,
} from "@aws-sdk/client-sqs";
import { StrataError, upstream } from "../../core/errors.ts";
import type { Archive, JobHandler, JobQueue } from "../../core/ports.ts";
import { QUIET_SETTLE_MS, QUIET_WAIT_MS, type RequestGate } from "../../core/request-gate.ts";
import type { Job } from "../../core/types.ts";

/** The part of a Lambda SQS record the processor reads; ReceiveMessage results are mapped to it. */
export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount?: string; [k: string]: string | undefined };
  eventSource?: string;
  [k: string]: unknown;
}

export interface BatchResult {
  batchItemFailures: { itemIdentifier: string }[];
}

export interface SqsJobQueueOptions {
  archive: Archive;
  queueUrl: string;
  /** A ready client (closed by its owner); otherwise one is made from `clientConfig` and the SDK's defaults. */
  client?: SQSClient;
  clientConfig?: SQSClientConfig;
  /** Receives before a job is dead-lettered; set it equal to the queue's redrive maxReceiveCount. */
  maxReceives?: number;
  /** Visibility timeout requested on receive: the time a worker has for one batch. */
  visibilityTimeoutSeconds?: number;
  /** Long-poll wait per ReceiveMessage call (0–20). */
  waitTimeSeconds?: number;
  /**
   * Outbox relay run by every consumer: at start and then every `everyMs`, pending jobs older
   * than `afterMs` that never reached the queue (an API process died between commit and
   * dispatch, or the send failed) are sent again.
   */
  relay?: { afterMs: number; everyMs: number };
  /**
   * The requests of an API served by the same process (`strata serve` on the managed
   * services): a batch waits for a moment without one before its lease and before each of its
   * runs (at most QUIET_WAIT_MS each), as the embedded runner does (request-gate.ts). A chat
   * frontend posts a turn and then asks for the context: the turn's own jobs, received at
   * once, made that context call wait for them. A process that serves no requests (a Lambda
   * worker, `strata worker`) is never held by it.
   */
  gate?: RequestGate;
  /** Longest a batch waits for the gate's requests each time (default QUIET_WAIT_MS). */
  yieldMs?: number;
  /** How long without a request in flight counts as quiet (default QUIET_SETTLE_MS). */
  settleMs?: number;
  onError?: (job: Pick<Job, "id" | "type">, error: unknown) => void;
}

interface Envelope {
  jobId: string;
  tenantId: string;
  type: string;
}

const SEND_BATCH = 10; // SQS's SendMessageBatch limit

export type SqsJobQueue = JobQueue & {
  processRecords(records: SqsRecord[], handler: JobHandler): Promise<BatchResult>;
  /** Sends pending jobs the queue never got; returns how many. */
  relay(): Promise<number>;
  idle(): Promise<void>;
};

export function createSqsJobQueue(options: SqsJobQueueOptions): SqsJobQueue {
  const { archive, queueUrl } = options;
  if (!/^https?:\/\//.test(queueUrl)) {
    throw new StrataError("config", "CONFIG_INVALID", `STRATA_QUEUE_URL must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), got "${queueUrl}"`);
  }
  const ownsClient = !options.client;
  const client = options.client ?? new SQSClient(options.clientConfig ?? {});
  const maxReceives = options.maxReceives ?? 5;
  const visibility = options.visibilityTimeoutSeconds ?? 60;
  const waitTime = options.waitTimeSeconds ?? 20;

  const relayOpts = options.relay ?? { afterMs: 30_000, everyMs: 30_000 };
  let handler: JobHandler | null = null;
  let relayTimer: NodeJS.Timeout | null = null;
  let loop: Promise<void> | null = null;
  let abort: AbortController | null = null;

  const yieldMs = options.yieldMs ?? QUIET_WAIT_MS;
  const settleMs = options.settleMs ?? QUIET_SETTLE_MS;
  /** A moment without requests in flight (the gate's), before a batch's lease and each of its runs. */
  const between = async (): Promise<void> => {
    if (options.gate) await options.gate.quiet(yieldMs, settleMs);
  };

  async function processRecords(records: SqsRecord[], run: JobHandler): Promise<BatchResult> {
    // Each record's job id; a malformed record is not ours to retry (it would fail the same
    // way every time), so it is reported and acknowledged.
    const recordsOf = new Map<string, SqsRecord[]>();
    for (const record of records) {
      let envelope: Envelope;
      try {
        envelope = JSON.parse(record.body) as Envelope;
        if (typeof envelope.jobId !== "string") throw new Error("no jobId");
      } catch {
        options.onError?.({ id: record.messageId, type: "embed" }, new Error(`malformed queue message ${record.messageId}: ${record.body.slice(0, 200)}`));
        continue;
      }
      // A job delivered twice in one batch (a redelivery beside the first) runs once.
      (recordsOf.get(envelope.jobId) ?? recordsOf.set(envelope.jobId, []).get(envelope.jobId)!).push(record);
    }
    const failures = (ids: Iterable<string>) => [...ids].flatMap((id) => recordsOf.get(id) ?? []).map((r) => ({ itemIdentifier: r.messageId }));
    if (!recordsOf.size) return { batchItemFailures: [] };

    // One lease for the whole batch; done, dead or unknown jobs are left out and their
    // records acknowledged (a redelivery of finished work).
    let jobs: Job[];
    await between();
    try {
      jobs = await archive.startJobs([...recordsOf.keys()], visibility * 1000);
    } catch (e) {
      options.onError?.({ id: "(start)", type: "embed" }, e);
      return { batchItemFailures: failures(recordsOf.keys()) };
    }

    // The jobs run merged where the handler can (JobHandler.batch: one archive read and one
    // tier write for many single-message jobs), else one by one side by side. A merged run
    // that fails is retried job by job inside batch(), so only the bad job fails.
    const failed = new Map<string, unknown>();
    const runOne = async (job: Job) => {
      try {
        await run(job);
      } catch (e) {
        failed.set(job.id, e);
      }
    };
    if (run.batch && jobs.length > 1) {
      try {
        for (const [id, e] of await run.batch(jobs, between)) failed.set(id, e);
      } catch {
        await Promise.all(jobs.map(runOne));
      }
    } else {
      await Promise.all(jobs.map(runOne));
    }

    const done = jobs.filter((j) => !failed.has(j.id)).map((j) => j.id);
    const unrecorded = new Set<string>();
    try {
      await archive.completeJobs(done);
    } catch (e) {
      // Their work is written (idempotently); SQS delivers them again to record it.
      options.onError?.({ id: "(complete)", type: "embed" }, e);
      for (const id of done) unrecorded.add(id);
    }
    for (const job of jobs) {
      if (!failed.has(job.id)) continue;
      const e = failed.get(job.id);
      options.onError?.(job, e);
      const message = e instanceof Error ? e.message : String(e);
      const receives = Math.max(...recordsOf.get(job.id)!.map((r) => Number(r.attributes?.ApproximateReceiveCount ?? "1")));
      try {
        if (receives >= maxReceives) await archive.failJob(job.id, message, null);
        else await archive.releaseJob(job.id, message);
      } catch (err) {
        options.onError?.(job, err);
      }
    }
    return { batchItemFailures: failures([...failed.keys(), ...unrecorded]) };
  }

  async function relay(): Promise<number> {
    let sent = 0;
    for (;;) {
      const jobs = await archive.undispatchedJobs(relayOpts.afterMs, 100);
      if (!jobs.length) return sent;
      await queue.dispatch(jobs);
      await archive.markDispatched(jobs.map((j) => j.id));
      sent += jobs.length;
    }
  }

  function toRecord(m: SqsMessage): SqsRecord {
    return {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? "",
      attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount },
      eventSource: "aws:sqs",
    };
  }

  async function poll(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let messages: SqsMessage[];
      try {
        const out = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: waitTime,
            VisibilityTimeout: visibility,
            MessageSystemAttributeNames: ["ApproximateReceiveCount"],
          }),
          { abortSignal: signal },
        );
        messages = out.Messages ?? [];
      } catch (e) {
        if (signal.aborted) return;
        options.onError?.({ id: "(receive)", type: "embed" }, e);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!messages.length) continue;
      const records = messages.map(toRecord);
      const { batchItemFailures } = await processRecords(records, handler!);
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
      const done = records.filter((r) => !failed.has(r.messageId));
      try {
        if (done.length) {
          await client.send(
            new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })) }),
          );
        }
        // Failed jobs come back after a short backoff rather than the whole visibility timeout.
        const retry = records.filter((r) => failed.has(r.messageId));
        if (retry.length) {
          await client.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queueUrl,
              Entries: retry.map((r, i) => ({
                Id: String(i),
                ReceiptHandle: r.receiptHandle,
                VisibilityTimeout: Math.min(visibility, 2 ** Number(r.attributes.ApproximateReceiveCount ?? 1)),
              })),
            }),
          );
        }
      } catch (e) {
        // Undeleted messages are redelivered; their jobs are done in the archive and will be acknowledged then.
        options.onError?.({ id: "(delete)", type: "embed" }, e);
      }
    }
  }

  const queue: SqsJobQueue = {
    adapter: "sqs",

    async ping() {
      try {
        await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
      } catch (e) {
        throw upstream("sqs", e);
      }
    },

    async dispatch(jobs: Job[]) {
      for (let i = 0; i < jobs.length; i += SEND_BATCH) {
        const chunk = jobs.slice(i, i + SEND_BATCH);
        let failed: number;
        try {
          const out = await client.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((j, k) => ({
                Id: String(k),
                MessageBody: JSON.stringify({ jobId: j.id, tenantId: j.tenantId, type: j.type } satisfies Envelope),
              })),
            }),
          );
          failed = out.Failed?.length ?? 0;
        } catch (e) {
          throw upstream("sqs", e);
        }
        if (failed) throw new StrataError("upstream", "QUEUE_SEND_FAILED", `sqs: ${failed} of ${chunk.length} jobs were not accepted`);
      }
    },

    start(h: JobHandler) {
      if (loop) throw new Error("job queue already started");
      handler = h;
      abort = new AbortController();
      // One relay run at a time: a run slower than the period (a slow send) would otherwise
      // read the same still-undispatched rows and send every one of them again.
      let relaying: Promise<unknown> | null = null;
      const runRelay = () =>
        (relaying ??= relay()
          .catch((e) => options.onError?.({ id: "(relay)", type: "embed" }, e))
          .finally(() => {
            relaying = null;
          }));
      loop = Promise.all([runRelay(), poll(abort.signal)]).then(() => undefined);
      relayTimer = setInterval(runRelay, relayOpts.everyMs);
      relayTimer.unref();
    },

    async stop() {
      if (relayTimer) clearInterval(relayTimer);
      abort?.abort();
      await loop;
      loop = null;
      if (ownsClient) client.destroy();
    },

    processRecords,
    relay,

    /** Resolves once the archive shows no job pending anywhere (tests, eval). */
    async idle() {
      for (;;) {
        const stats = await archive.queueStats();
        if (stats.pending === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  return queue;
}
