// Rolling summaries and retention, the scheduled side of the archive.
//
// A session is summarized once enough of it has scrolled out of the hot window: the summary
// covers messages up to lastSeq − recentWindow, rolled forward from the previous summary, so
// the context call gets the old part of a long conversation in a few hundred tokens while
// the recent window shows the rest verbatim. scheduleSummaries only enqueues jobs through
// the outbox (the same path as every derived job, so the embedded runner and SQS both carry
// them); the summarize job does the work and is idempotent per (session, upToSeq).
//
// Forgetting: a message forget deletes its session's summaries (archive.forget). A job that
// read the messages before the forget and writes after it is caught twice: saveSummary
// refuses to roll from a summary that is gone, and the tombstones of the messages it read
// are checked after the write, deleting the session's summaries again if one was forgotten.

import type { StrataDeps } from "../deps.ts";
import type { Job, Message } from "../types.ts";

/** The summary's size: it fits the context call's summary share (15%) of the default 2,000-token budget. */
export const SUMMARY_MAX_TOKENS = 250;
/** Messages past the window, beyond the last summary, before a session is summarized again. */
export const SUMMARY_MIN_NEW = 10;
const PAGE = 500;
/** Sessions queued per scheduled run, and memories deleted per retention run (the cron and the embedded timers). */
export const SCHEDULE_BATCH = 200;
export const SWEEP_BATCH = 5_000;

export interface SummarySettings {
  maxTokens?: number;
  minNew?: number;
}

/** Enqueues a summarize job for each session due for one (at most `limit`); returns how many. */
export async function scheduleSummaries(deps: StrataDeps, options: { limit: number } & SummarySettings): Promise<number> {
  const due = await deps.archive.sessionsDueForSummary({
    recentWindow: deps.settings.recentWindow,
    minNew: options.minNew ?? SUMMARY_MIN_NEW,
    limit: options.limit,
  });
  if (!due.length) return 0;
  const jobs = await deps.archive.enqueueJobs(due.map((d) => ({ tenantId: d.tenantId, type: "summarize" as const, payload: { sessionId: d.sessionId } })));
  try {
    await deps.queue.dispatch(jobs);
    await deps.archive.markDispatched(jobs.map((j) => j.id));
  } catch (e) {
    // Committed to the outbox: the relay (or the embedded runner, which claims pending jobs) carries them.
    deps.log.warn("summarize jobs not dispatched; the outbox keeps them pending", { jobs: jobs.length, error: e });
  }
  return jobs.length;
}

/** The summarize job: rolls the session's summary forward to lastSeq − recentWindow. */
export async function runSummarizeJob(deps: StrataDeps, job: Job<"summarize">, settings: SummarySettings = {}): Promise<void> {
  const { tenantId } = job;
  const { sessionId } = job.payload;
  const session = await deps.archive.getSession(tenantId, sessionId);
  if (!session) return; // forgotten, or never there: nothing to summarize
  const upToSeq = session.lastSeq - deps.settings.recentWindow;
  const previous = await deps.archive.latestSummary(tenantId, sessionId);
  const fromSeq = previous?.upToSeq ?? 0;
  if (upToSeq <= fromSeq) {
    // Found due, yet summarized up to here: its latest summary was written by older code,
    // which did not record it on the session (migration 7). Recorded now, or it is found due
    // again on every scheduled run.
    if (previous) await deps.archive.markSummarized(tenantId, sessionId, previous.upToSeq);
    return;
  }

  const messages: Message[] = [];
  for (let after = fromSeq; after < upToSeq; ) {
    const page = await deps.archive.listMessages(tenantId, sessionId, { after, limit: PAGE });
    if (!page.length) break;
    for (const m of page) if (m.seq <= upToSeq) messages.push(m);
    after = page[page.length - 1]!.seq;
  }
  const content = await deps.summarizer.summarize({
    previous: previous?.content ?? null,
    messages,
    maxTokens: settings.maxTokens ?? SUMMARY_MAX_TOKENS,
  });
  const stored = await deps.archive.saveSummary(
    { tenantId, sessionId, userId: session.userId, upToSeq, content, tokens: deps.tokenizer.count(content) },
    previous ? previous.upToSeq : null,
  );
  if (!stored) return; // the summary it rolled from was forgotten meanwhile: the next run rebuilds
  const forgotten = await deps.archive.tombstoned(tenantId, messages.map((m) => m.id));
  if (forgotten.size) await deps.archive.deleteSummaries(tenantId, sessionId);
}

/** Deletes memories past their expiry, in batches, until none is left or `limit` is reached; returns how many. */
export async function sweepRetention(deps: StrataDeps, options: { limit: number }): Promise<number> {
  let swept = 0;
  for (;;) {
    const want = Math.min(PAGE, options.limit - swept);
    if (want <= 0) break;
    const batch = await deps.archive.sweepExpired(want);
    swept += batch.length;
    if (batch.length < want) break;
  }
  return swept;
}
