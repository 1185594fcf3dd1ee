// The scheduled function. A schedule invokes it either with the payload its CronV2 names
// (`{ "task": "relay" }`, EventBridge Scheduler passes it as the event) or with an
// EventBridge "Scheduled Event" whose detail carries the task; both are normalised to one
// task name before anything runs.
//
// Tasks:
// - relay: sends outbox jobs that never reached SQS (an API invocation that died between its
//   archive commit and its dispatch) — the safety net of the write path.
// - summarize: queues a summarize job for each session with enough messages past its hot
//   window since its last summary (the worker function writes the summaries).
// - retention: deletes memories whose expiry has passed.

import type { ScheduledEvent } from "aws-lambda";
import type { SqsJobQueue } from "../lib/adapters/sqs/job-queue.ts";
import { StrataError } from "../lib/core/errors.ts";
import { SCHEDULE_BATCH, scheduleSummaries, SWEEP_BATCH, sweepRetention } from "../lib/core/services/summaries.ts";
import { lambdaStrata } from "./strata.ts";

export const CRON_TASKS = ["relay", "summarize", "retention"] as const;
export type CronTask = (typeof CRON_TASKS)[number];

export type CronEvent = { task: string } | ScheduledEvent<{ task?: string }>;

/** What a run did: outbox jobs relayed, summarize jobs queued, or expired memories swept. */
export type CronResult = { task: "relay"; relayed: number } | { task: "summarize"; queued: number } | { task: "retention"; swept: number };

/** The task an event names; rejects events that name none or an unknown one. */
export function cronTask(event: CronEvent): CronTask {
  const task = "detail-type" in event ? event.detail?.task : (event as { task?: unknown }).task;
  if (typeof task !== "string" || !(CRON_TASKS as readonly string[]).includes(task)) {
    throw new StrataError("validation", "INVALID_REQUEST", `task: expected one of ${CRON_TASKS.join(", ")}, got ${JSON.stringify(task ?? null)}`);
  }
  return task as CronTask;
}

const ready = lambdaStrata();

export async function cron(event: CronEvent): Promise<CronResult> {
  const task = cronTask(event);
  const strata = await ready.catch(() => lambdaStrata());
  const { deps } = strata;
  let result: CronResult;
  if (task === "relay") {
    if (deps.queue.adapter !== "sqs") {
      throw new StrataError("config", "CONFIG_INVALID", "the relay needs the Jobs queue linked (STRATA_QUEUE_URL)");
    }
    result = { task, relayed: await (deps.queue as SqsJobQueue).relay() };
  } else if (task === "summarize") {
    result = { task, queued: await scheduleSummaries(deps, { limit: SCHEDULE_BATCH }) };
  } else {
    result = { task, swept: await sweepRetention(deps, { limit: SWEEP_BATCH }) };
  }
  deps.log.info("cron task done", result);
  return result;
}

export { cron as handler };
