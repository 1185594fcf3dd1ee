// Rebuilds every message vector from the archive with one embedder: what `strata reindex
// --vectors` runs after the embedder (model or dimensions) changes. The vector tier is
// derived, so the archive is the whole input; the rebuild is a walk over it in (tenant, id)
// order that any number of interruptions do not disturb:
//
// - Checkpoints: the run is the archive's reindex run for ("vectors", model). After every
//   batch is written, the cursor (last tenant and id) and the count are saved; a run that
//   stops — aborted, crashed, killed — is picked up at that cursor by the next call for the
//   same model, so at most the batch in hand is embedded twice (upserts are keyed, so twice
//   is harmless). A finished run is closed; the next call starts from the beginning.
// - Forgetting: a forget that lands while a batch is in hand must not be undone by it, so
//   the write is guarded as the embed worker guards its own: tombstoned messages are dropped
//   before the upsert, and checked again after it, deleting what a forget purged in between.
// - Refused inputs: an embedder that refuses one text (EMBED_INPUT_REJECTED with its index,
//   e.g. a message over the model's input limit) would otherwise stop the run at the same
//   place on every resume. The message is set aside instead: its stale vector (made by the
//   old model, meaningless beside the new ones) is deleted, the rest of the batch is embedded,
//   and the result lists it. Any other error stops the run, resumable.
//
// Messages written while the rebuild runs are embedded by the workers with the configured
// embedder, the same one; those whose ids sort after the cursor are embedded twice, harmless.

import { StrataError, isStrataError } from "../errors.ts";
import type { Archive, Embedder, VectorIndex } from "../ports.ts";
import type { Message } from "../types.ts";
import { createProgressWriter, formatDuration, type ProgressStream } from "./progress.ts";
import { embeddingText } from "./worker.ts";

export interface ReindexDeps {
  archive: Archive;
  vectors: VectorIndex;
  embedder: Embedder;
}

export interface ReindexProgress {
  /** Messages done in this run, including those done before it was resumed. */
  processed: number;
  /** Messages in the archive when this call started (or processed, if more). */
  total: number;
  resumed: boolean;
  /** Messages per second in this call. */
  rate: number;
}

export interface ReindexOptions {
  /** Messages per scan, embed call and checkpoint; default 100. */
  batchSize?: number;
  /** Called once before the first batch and after every batch. */
  onProgress?: (progress: ReindexProgress) => void;
  /** Stops the run before its next batch; the promise rejects with the signal's reason and the run stays resumable. */
  signal?: AbortSignal;
}

export interface SkippedMessage {
  tenantId: string;
  id: string;
  /** What the embedder said. */
  reason: string;
}

export interface ReindexResult {
  /** Messages done by the run, from its start (before any resume). */
  processed: number;
  total: number;
  /** This call picked up an interrupted run. */
  resumed: boolean;
  /** The model the vectors now carry. */
  model: string;
  /** Messages whose text the embedder refused, in this call: they have no vector now. */
  skipped: SkippedMessage[];
}

const DEFAULT_BATCH = 100;
const REJECTED = "EMBED_INPUT_REJECTED";

/** Position of the refused text, when `e` is an embedder's refusal of one input. */
function rejectedIndex(e: unknown): number | null {
  if (!isStrataError(e) || e.category !== "validation" || e.code !== REJECTED) return null;
  const index = e.details?.index;
  return typeof index === "number" && Number.isInteger(index) && index >= 0 ? index : null;
}

/** Embeds the messages, setting aside any the embedder refuses. */
async function embedAll(embedder: Embedder, messages: Message[]): Promise<{ vectors: Map<Message, Float32Array>; refused: Map<Message, string> }> {
  let pending = messages;
  const refused = new Map<Message, string>();
  while (pending.length) {
    try {
      const out = await embedder.embed(pending.map(embeddingText));
      if (out.length !== pending.length) {
        throw new StrataError("internal", "EMBEDDER_CONTRACT", `embedder ${embedder.model} returned ${out.length} vectors for ${pending.length} texts`);
      }
      return { vectors: new Map(pending.map((m, i) => [m, out[i]!])), refused };
    } catch (e) {
      const at = rejectedIndex(e);
      if (at === null || at >= pending.length) throw e;
      refused.set(pending[at]!, (e as Error).message);
      pending = pending.filter((_, i) => i !== at);
    }
  }
  return { vectors: new Map(), refused };
}

function byTenant(messages: Message[]): Map<string, Message[]> {
  const out = new Map<string, Message[]>();
  for (const m of messages) {
    const list = out.get(m.tenantId);
    if (list) list.push(m);
    else out.set(m.tenantId, [m]);
  }
  return out;
}

/** The messages of `messages` forgotten meanwhile, by tenant. */
async function forgotten(archive: Archive, messages: Message[]): Promise<Set<Message>> {
  const out = new Set<Message>();
  for (const [tenantId, list] of byTenant(messages)) {
    const gone = await archive.tombstoned(
      tenantId,
      list.map((m) => m.id),
    );
    for (const m of list) if (gone.has(m.id)) out.add(m);
  }
  return out;
}

async function deleteVectors(vectors: VectorIndex, messages: Iterable<Message>): Promise<void> {
  for (const [tenantId, list] of byTenant([...messages])) {
    await vectors.deleteByIds(
      tenantId,
      list.map((m) => m.id),
    );
  }
}

/** Rebuilds every message vector with `deps.embedder`; resumes an interrupted run for the same model. */
export async function reindexVectors(deps: ReindexDeps, options: ReindexOptions = {}): Promise<ReindexResult> {
  const { archive, vectors, embedder } = deps;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new StrataError("validation", "VALIDATION_ERROR", `batchSize must be a whole number from 1 to 10000, got ${batchSize}`);
  }
  const { signal, onProgress } = options;
  signal?.throwIfAborted();

  const run = await archive.openReindexRun("vectors", embedder.model);
  const counted = await archive.countMessages();
  let cursor = run.cursor;
  let processed = run.processed;
  const skipped: SkippedMessage[] = [];
  const started = Date.now();
  let doneHere = 0;
  const report = () => {
    const seconds = (Date.now() - started) / 1000;
    onProgress?.({ processed, total: Math.max(counted, processed), resumed: run.resumed, rate: seconds > 0 ? doneHere / seconds : 0 });
  };
  report();

  for (;;) {
    signal?.throwIfAborted();
    const batch = await archive.scanMessages(cursor, batchSize);
    if (!batch.length) break;

    const live = await forgotten(archive, batch).then((gone) => batch.filter((m) => !gone.has(m)));
    const { vectors: made, refused } = await embedAll(embedder, live);
    if (made.size) {
      await vectors.upsert(
        [...made].map(([m, vector]) => ({
          tenantId: m.tenantId,
          userId: m.userId,
          sessionId: m.sessionId,
          kind: "message" as const,
          id: m.id,
          model: embedder.model,
          vector,
        })),
      );
      const late = await forgotten(archive, [...made.keys()]);
      if (late.size) await deleteVectors(vectors, late);
    }
    if (refused.size) {
      await deleteVectors(vectors, refused.keys());
      for (const [m, reason] of refused) skipped.push({ tenantId: m.tenantId, id: m.id, reason });
    }

    const lastMessage = batch[batch.length - 1]!;
    cursor = { tenantId: lastMessage.tenantId, id: lastMessage.id };
    processed += batch.length;
    doneHere += batch.length;
    await archive.saveReindexProgress(run.id, cursor, processed, Math.max(counted, processed));
    report();
  }

  await archive.finishReindexRun(run.id);
  return { processed, total: Math.max(counted, processed), resumed: run.resumed, model: embedder.model, skipped };
}

export interface ReindexCommandOptions {
  /** Where progress and the outcome go: the process's stderr. */
  stderr: ProgressStream;
  batchSize?: number;
  /**
   * Stops the run before its next batch. When omitted, the first SIGINT or SIGTERM does that
   * (a second one ends the process as usual).
   */
  signal?: AbortSignal;
}

/**
 * `strata reindex --vectors`: the rebuild with a progress bar on stderr. Resolves to the exit
 * code: 0 when finished (refused messages are listed, not failures), 130 when interrupted
 * (run it again to resume). Other errors reject; the run stays resumable.
 */
export async function runReindexCommand(deps: ReindexDeps, options: ReindexCommandOptions): Promise<number> {
  const { stderr } = options;
  const controller = new AbortController();
  const stop = (signal: string) => {
    stderr.write(`\n${signal}: stopping after the batch in hand (again to stop at once; that batch is redone next time)\n`);
    controller.abort(new StrataError("internal", "REINDEX_INTERRUPTED", `interrupted by ${signal}`));
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  const external = options.signal;
  if (external) {
    if (external.aborted) controller.abort(external.reason);
    else external.addEventListener("abort", () => controller.abort(external.reason), { once: true });
  } else {
    process.once("SIGINT", onInt);
    process.once("SIGTERM", onTerm);
  }

  const bar = createProgressWriter(stderr, { label: "vectors" });
  const started = Date.now();
  let announced = false;
  let last = { processed: 0, total: 0 };
  try {
    const result = await reindexVectors(deps, {
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      signal: controller.signal,
      onProgress(p) {
        if (!announced) {
          announced = true;
          stderr.write(
            p.resumed
              ? `resuming the interrupted rebuild with ${deps.embedder.model} at ${p.processed} of ${p.total} messages\n`
              : `rebuilding ${p.total} message vectors with ${deps.embedder.model}\n`,
          );
        }
        last = p;
        bar.update(p);
      },
    });
    bar.done();
    const took = formatDuration((Date.now() - started) / 1000);
    stderr.write(`done: ${result.processed} messages carry ${result.model} vectors (${took})\n`);
    if (result.skipped.length) {
      stderr.write(`${result.skipped.length} message(s) refused by the embedder have no vector now:\n`);
      for (const s of result.skipped.slice(0, 20)) stderr.write(`  ${s.tenantId}/${s.id}: ${s.reason}\n`);
      if (result.skipped.length > 20) stderr.write(`  ... and ${result.skipped.length - 20} more\n`);
    }
    return 0;
  } catch (e) {
    bar.done();
    if (controller.signal.aborted && e === controller.signal.reason) {
      stderr.write(`interrupted at ${last.processed} of ${last.total}: run \`strata reindex --vectors\` again to resume from there\n`);
      return 130;
    }
    stderr.write(`reindex stopped at ${last.processed} of ${last.total}; running it again resumes from there\n`);
    throw e;
  } finally {
    process.removeListener("SIGINT", onInt);
    process.removeListener("SIGTERM", onTerm);
  }
}
