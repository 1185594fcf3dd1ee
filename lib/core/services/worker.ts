// Derived work. Every handler is idempotent: it re-reads the messages from the archive by id
// (a message that is gone is skipped), and the tiers it writes are keyed by message id, so
// running a job twice leaves the same state as running it once.

import { StrataError } from "../errors.ts";
import type { StrataDeps } from "../deps.ts";
import type { JobHandler } from "../ports.ts";
import type { Job, Message } from "../types.ts";

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

export async function runEmbedJob(deps: StrataDeps, job: Job<"embed">): Promise<void> {
  const messages = await loadMessages(deps, job);
  if (!messages.length) return;
  const vectors = await deps.embedder.embed(messages.map(embeddingText));
  await deps.vectors.upsert(
    messages.map((m, i) => ({
      tenantId: m.tenantId,
      userId: m.userId,
      sessionId: m.sessionId,
      kind: "message" as const,
      id: m.id,
      model: deps.embedder.model,
      vector: vectors[i]!,
    })),
  );
}

export async function runExtractJob(deps: StrataDeps, job: Job<"extract">): Promise<void> {
  const messages = await loadMessages(deps, job);
  if (!messages.length) return;
  const extractions = await deps.extractor.extract(messages.map((m) => ({ content: m.content, name: m.name, createdAt: m.createdAt })));
  await deps.graph.merge(
    messages.map((m, i) => ({
      tenantId: m.tenantId,
      userId: m.userId,
      sessionId: m.sessionId,
      messageId: m.id,
      extraction: extractions[i]!,
    })),
  );
}

export function createJobHandler(deps: StrataDeps): JobHandler {
  return async (job) => {
    switch (job.type) {
      case "embed":
        return runEmbedJob(deps, job as Job<"embed">);
      case "extract":
        return runExtractJob(deps, job as Job<"extract">);
      default:
        // summarize and forget jobs are created by features not in this build; failing keeps them visible as dead letters.
        throw new StrataError("internal", "JOB_TYPE_UNSUPPORTED", `no handler for ${job.type} jobs in this build`);
    }
  };
}
