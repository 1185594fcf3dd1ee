// The write path of DESIGN.md: one archive transaction for the messages and their outbox
// rows, then best-effort hot-window append and dispatch, side by side. Once the transaction
// commits the write is acknowledged; nothing after it can lose it (an undispatched job is
// still a pending outbox row that the runner or relay picks up).

import type { StrataDeps } from "../deps.ts";
import type { Message, NewJob, NewMessage, Role } from "../types.ts";

export interface IngestMessageInput {
  id?: string;
  role: Role;
  content: string;
  name?: string;
  createdAt?: string;
  metadata?: Record<string, unknown>;
}

export interface IngestInput {
  tenantId: string;
  sessionId: string;
  userId: string;
  messages: IngestMessageInput[];
}

export interface IngestOutput {
  messages: { id: string; seq: number }[];
}

/** Ids per derived job: big enough to batch the embedder, small enough to retry cheaply. */
export const JOB_CHUNK = 100;

export function derivedJobs(inserted: Pick<Message, "id">[]): NewJob[] {
  const jobs: NewJob[] = [];
  for (let i = 0; i < inserted.length; i += JOB_CHUNK) {
    const messageIds = inserted.slice(i, i + JOB_CHUNK).map((m) => m.id);
    jobs.push({ type: "embed", payload: { messageIds } }, { type: "extract", payload: { messageIds } });
  }
  return jobs;
}

export async function ingestMessages(deps: StrataDeps, input: IngestInput): Promise<IngestOutput> {
  const now = new Date().toISOString();
  const messages: NewMessage[] = input.messages.map((m) => ({
    id: m.id ?? `msg_${crypto.randomUUID()}`,
    role: m.role,
    content: m.content,
    name: m.name ?? null,
    createdAt: m.createdAt ? new Date(m.createdAt).toISOString() : now,
    metadata: m.metadata ?? {},
    tokens: deps.tokenizer.count(m.content),
  }));

  const result = await deps.archive.ingest({
    tenantId: input.tenantId,
    sessionId: input.sessionId,
    userId: input.userId,
    messages,
    jobsFor: derivedJobs,
  });

  // The hot window and the queue are separate stores: their two writes go side by side.
  await Promise.all([
    result.inserted.length
      ? deps.hot.appendWindow(input.tenantId, input.sessionId, result.inserted, deps.settings.recentWindow).catch((e: unknown) => {
          deps.log.warn("hot window append failed; the next read repairs it", { sessionId: input.sessionId, error: e });
        })
      : null,
    result.jobs.length
      ? (async () => {
          await deps.queue.dispatch(result.jobs);
          if (!deps.queue.readsOutbox) await deps.archive.markDispatched(result.jobs.map((j) => j.id));
        })().catch((e: unknown) => {
          deps.log.warn("dispatch failed; the outbox keeps the jobs pending", { jobs: result.jobs.length, error: e });
        })
      : null,
  ]);
  return { messages: result.messages.map(({ id, seq }) => ({ id, seq })) };
}
