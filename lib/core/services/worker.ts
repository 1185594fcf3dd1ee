// Derived work. Every handler is idempotent: it re-reads the messages from the archive by id
// (a message that is gone is skipped), and the tiers it writes are keyed by message id, so
// running a job twice leaves the same state as running it once.

import { StrataError } from "../errors.ts";
import type { StrataDeps } from "../deps.ts";
import type { JobHandler } from "../ports.ts";
import type { Job, Message } from "../types.ts";
import { runForgetJob } from "./forget.ts";
import { runSummarizeJob } from "./summaries.ts";

/** Decisions outrank tasks in the context: they constrain everything after them. */
const MEMORY_PRIORITY = { decision: 7, task: 6 } as const;

/** The text a message is embedded as: the speaker's name carries meaning for recall. */
export function embeddingText(m: Pick<Message, "name" | "content">): string {
  return m.name ? `${m.name}: ${m.content}` : m.content;
}

async function loadMessages(deps: StrataDeps, job: Job<"embed" | "extract">): Promise<Message[]> {
  const ids = job.payload.messageIds;
  const found = await deps.archive.getMessages(job.tenantId, ids);
  const byId = new Map(found.map((m) => [m.id, m]));
  return ids.map((id) => byId.get(id)).filter((m): m is Message => m !== undefined);
}

/**
 * Writes derived data for messages unless they were forgotten: tombstones are checked just
 * before the write, and again after it, undoing whatever a forget that landed in between
 * would otherwise have missed (its purge may have run before this write).
 */
async function guardedWrite(
  deps: StrataDeps,
  tenantId: string,
  messages: Message[],
  write: (live: Message[]) => Promise<void>,
  undo: (ids: string[]) => Promise<void>,
): Promise<void> {
  const ids = messages.map((m) => m.id);
  const before = await deps.archive.tombstoned(tenantId, ids);
  const live = messages.filter((m) => !before.has(m.id));
  if (!live.length) return;
  await write(live);
  const after = await deps.archive.tombstoned(
    tenantId,
    live.map((m) => m.id),
  );
  if (after.size) await undo([...after]);
}

export async function runEmbedJob(deps: StrataDeps, job: Job<"embed">): Promise<void> {
  const messages = await loadMessages(deps, job);
  if (!messages.length) return;
  const vectors = await deps.embedder.embed(messages.map(embeddingText));
  const byId = new Map(messages.map((m, i) => [m.id, vectors[i]!]));
  await guardedWrite(deps, job.tenantId, messages, (live) => deps.vectors.upsert(
    live.map((m) => ({
      tenantId: m.tenantId,
      userId: m.userId,
      sessionId: m.sessionId,
      kind: "message" as const,
      id: m.id,
      model: deps.embedder.model,
      vector: byId.get(m.id)!,
    })),
  ), (ids) => deps.vectors.deleteByIds(job.tenantId, ids));
}

export async function runExtractJob(deps: StrataDeps, job: Job<"extract">): Promise<void> {
  const messages = await loadMessages(deps, job);
  if (!messages.length) return;
  const extractions = await deps.extractor.extract(messages.map((m) => ({ content: m.content, name: m.name, createdAt: m.createdAt })));
  const byId = new Map(messages.map((m, i) => [m.id, extractions[i]!]));
  await guardedWrite(
    deps,
    job.tenantId,
    messages,
    async (live) => {
      await deps.graph.merge(
        live.map((m) => ({ tenantId: m.tenantId, userId: m.userId, sessionId: m.sessionId, messageId: m.id, extraction: byId.get(m.id)! })),
      );
      // Decisions and tasks become typed memories; ids derive from the message, so a rerun stores nothing twice.
      await deps.archive.saveMemories(
        live.flatMap((m) =>
          (byId.get(m.id)!.statements ?? []).map((st, i) => ({
            tenantId: m.tenantId,
            id: `${st.kind}:${m.id}:${i}`,
            userId: m.userId,
            kind: st.kind,
            content: st.text,
            priority: MEMORY_PRIORITY[st.kind],
            tokens: deps.tokenizer.count(st.text),
            sourceMessageId: m.id,
          })),
        ),
      );
    },
    async (ids) => {
      await deps.graph.deleteByMessages(job.tenantId, ids);
      await deps.archive.deleteMemoriesFrom(job.tenantId, ids);
    },
  );
}

/**
 * Messages per merged run: one embedder call and one tier write each. Small jobs (from
 * single-message ingests) merge up to the size of a batched ingest's job, and no further:
 * a bigger write would hold the single-threaded embedded archive longer between requests.
 */
export const MERGED_RUN_MESSAGES = 100;

/**
 * Runs several jobs, merging embed and extract jobs of one tenant into runs over all their
 * message ids (handlers are idempotent per message, so a merged run writes what the jobs
 * would have written one by one). A merged run that fails is retried job by job, so a bad
 * message fails only its own job. Answers the ids of the jobs that failed, with the error.
 * `pause` is awaited before each run (JobHandler.batch).
 */
export async function runJobs(jobs: Job[], run: (job: Job) => Promise<void>, pause?: () => Promise<void>): Promise<Map<string, unknown>> {
  const failed = new Map<string, unknown>();
  const one = async (job: Job) => {
    try {
      await run(job);
    } catch (e) {
      failed.set(job.id, e);
    }
  };
  const groups = new Map<string, Job<"embed" | "extract">[][]>();
  for (const job of jobs) {
    if (job.type !== "embed" && job.type !== "extract") {
      // A summary, a forget: one after another, each after the pause as a merged run is.
      if (pause) await pause();
      await one(job);
      continue;
    }
    const key = `${job.type}\u0000${job.tenantId}`;
    const runs = groups.get(key) ?? groups.set(key, [[]]).get(key)!;
    let last = runs[runs.length - 1]!;
    const size = last.reduce((n, j) => n + j.payload.messageIds.length, 0);
    if (last.length && size + (job as Job<"embed">).payload.messageIds.length > MERGED_RUN_MESSAGES) runs.push((last = []));
    last.push(job as Job<"embed" | "extract">);
  }
  const runGroup = async (group: Job<"embed" | "extract">[]) => {
    if (group.length === 1) return one(group[0]!);
    const merged = { ...group[0]!, payload: { messageIds: [...new Set(group.flatMap((j) => j.payload.messageIds))] } };
    try {
      await run(merged);
    } catch {
      for (const job of group) await one(job);
    }
  };
  // Embed runs and extract runs go side by side, each type's runs one after another: the
  // extractor parses on its own thread (embedded) while this one embeds and writes, instead
  // of each waiting for the other. They write different tiers, and each run checks
  // tombstones itself, so their order relative to each other does not matter.
  const chains = new Map<string, Job<"embed" | "extract">[][]>();
  for (const [key, runs] of groups) {
    const type = key.slice(0, key.indexOf("\u0000"));
    chains.set(type, [...(chains.get(type) ?? []), ...runs]);
  }
  await Promise.all(
    [...chains.values()].map(async (runs) => {
      for (const group of runs) {
        if (pause) await pause();
        await runGroup(group);
      }
    }),
  );
  return failed;
}

export function createJobHandler(deps: StrataDeps): JobHandler {
  const handler = async (job: Job) => {
    switch (job.type) {
      case "embed":
        return runEmbedJob(deps, job as Job<"embed">);
      case "extract":
        return runExtractJob(deps, job as Job<"extract">);
      case "forget":
        return runForgetJob(deps, job as Job<"forget">);
      case "summarize":
        return runSummarizeJob(deps, job as Job<"summarize">);
      default:
        // A type this build does not know (a newer deploy's): failing keeps it visible as a dead letter.
        throw new StrataError("internal", "JOB_TYPE_UNSUPPORTED", `no handler for ${job.type} jobs in this build`);
    }
  };
  return Object.assign(handler, { batch: (jobs: Job[], pause?: () => Promise<void>) => runJobs(jobs, handler, pause) });
}
