// The scheduled function. A schedule invokes it either with the payload its CronV2 names
// (`{ "task": "relay" }`, EventBridge Scheduler passes it as the event) or with an
// EventBridge "Scheduled Event" whose detail carries the task; both are normalised to one
// task name before anything runs.
//
// Tasks are what lib can do on a schedule today:
// - relay: sends outbox jobs that never reached SQS (an API invocation that died between its
//   archive commit and its dispatch) — the safety net of the write path.
// Summaries and retention sweeps have no service in lib yet (summarize jobs fail as unknown
// work in the worker); they get a task here when lib has one, not before.

import type { ScheduledEvent } from "aws-lambda";
import type { SqsJobQueue } from "../lib/adapters/sqs/job-queue.ts";
import { StrataError } from "../lib/core/errors.ts";
import { lambdaStrata } from "./strata.ts";

export const CRON_TASKS = ["relay"] as const;
export type CronTask = (typeof CRON_TASKS)[number];

export type CronEvent = { task: string } | ScheduledEvent<{ task?: string }>;

/** The task an event names; rejects events that name none or an unknown one. */
export function cronTask(event: CronEvent): CronTask {
  const task = "detail-type" in event ? event.detail?.task : (event as { task?: unknown }).task;
  if (typeof task !== "string" || !(CRON_TASKS as readonly string[]).includes(task)) {
    throw new StrataError("validation", "INVALID_REQUEST", `task: expected one of ${CRON_TASKS.join(", ")}, got ${JSON.stringify(task ?? null)}`);
  }
  return task as CronTask;
}

const ready = lambdaStrata();

export async function cron(event: CronEvent): Promise<{ task: CronTask; relayed: number }> {
  const task = cronTask(event);
  const strata = await ready.catch(() => lambdaStrata());
  const queue = strata.deps.queue;
  if (queue.adapter !== "sqs") {
    throw new StrataError("config", "CONFIG_INVALID", "the relay needs the Jobs queue linked (STRATA_QUEUE_URL)");
  }
  const relayed = await (queue as SqsJobQueue).relay();
  strata.deps.log.info("cron task done", { task, relayed });
  return { task, relayed };
}

export { cron as handler };
