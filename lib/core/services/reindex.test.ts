// The vector rebuild over the embedded adapters (PGlite archive and vector index), with
// embedders wrapped to count what they are asked: a rebuild re-labels every vector, an
// interrupted run resumes from its checkpoint without redoing finished batches, a finished
// run is not resumed, refused inputs and forgets in flight are handled. Then the progress
// line and the CLI entry point.
//
// The archive is shared by every test in the file and a rebuild walks all of it, so each
// test counts against countMessages() at the time, and uses its own model name (runs are
// per model).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalEmbedder } from "../../adapters/local/embedder.ts";
import { createLocalVectorIndex } from "../../adapters/local/vector-index.ts";
import { createSqlArchive } from "../../adapters/sql/archive.ts";
import type { SqlClient } from "../../adapters/sql/client.ts";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import { StrataError } from "../errors.ts";
import type { Archive, Embedder, VectorIndex } from "../ports.ts";
import type { NewMessage } from "../types.ts";
import { createProgressWriter, formatDuration, formatFigures } from "./progress.ts";
import { reindexVectors, runReindexCommand, type ReindexProgress } from "./reindex.ts";
import { embeddingText } from "./worker.ts";

let sql: SqlClient;
let archive: Archive;
let vectors: VectorIndex;
const base = createLocalEmbedder({ dimensions: 64 });

beforeAll(async () => {
  sql = await sharedPglite();
  archive = createSqlArchive({ sql });
  vectors = createLocalVectorIndex({ sql });
  for (let t = 0; t < 2; t++) {
    const tenantId = (await archive.createTenant({ id: uid("tenant"), name: "Reindex" })).id;
    for (let u = 0; u < 2; u++) await seed(tenantId, uid("user"), 10);
  }
});
afterAll(async () => {
  await closeSharedPglite();
});

const TOPICS = ["hiking in the alps", "tax return paperwork", "a rescue dog named Max", "painting lessons", "the camping trip"];

async function seed(tenantId: string, userId: string, count: number, content?: (i: number) => string): Promise<string[]> {
  const messages: NewMessage[] = Array.from({ length: count }, (_, i) => {
    const text = content?.(i) ?? `${userId} talks about ${TOPICS[i % TOPICS.length]} (${i})`;
    return { id: uid("m"), role: "user", content: text, name: i % 2 ? "Ann" : null, createdAt: new Date().toISOString(), metadata: {}, tokens: 8 };
  });
  await archive.ingest({ tenantId, sessionId: uid("s"), userId, messages, jobsFor: () => [] });
  return messages.map((m) => m.id);
}

/** An embedder under its own model name that counts every text it is asked to embed. */
function counting(model = uid("model"), inner: Embedder = base, before?: (texts: string[]) => Promise<void>) {
  const seen = new Map<string, number>();
  const embedder: Embedder = {
    model,
    dimensions: inner.dimensions,
    async embed(texts) {
      await before?.(texts);
      for (const t of texts) seen.set(t, (seen.get(t) ?? 0) + 1);
      return inner.embed(texts);
    },
  };
  return { embedder, seen };
}

/** Every message's embedding text, in scan order. */
async function allTexts(): Promise<string[]> {
  const out: string[] = [];
  let cursor: { tenantId: string; id: string } | null = null;
  for (;;) {
    const page = await archive.scanMessages(cursor, 500);
    if (!page.length) return out;
    out.push(...page.map(embeddingText));
    cursor = { tenantId: page[page.length - 1]!.tenantId, id: page[page.length - 1]!.id };
  }
}

async function modelsOfMessageVectors(): Promise<Record<string, number>> {
  const rows = await sql.query<{ model: string; n: number }>("select model, count(*)::int as n from vectors where kind = 'message' group by model");
  return Object.fromEntries(rows.map((r) => [r.model, Number(r.n)]));
}

describe("reindexVectors", () => {
  it("rebuilds every message vector with the new model, and the new vectors recall", async () => {
    const first = counting("model-a");
    const a = await reindexVectors({ archive, vectors, embedder: first.embedder }, { batchSize: 7 });
    const total = await archive.countMessages();
    expect(a).toMatchObject({ processed: total, total, resumed: false, model: "model-a", skipped: [] });
    expect(await modelsOfMessageVectors()).toEqual({ "model-a": total });

    const second = counting("model-b", createLocalEmbedder({ dimensions: 32 }));
    const b = await reindexVectors({ archive, vectors, embedder: second.embedder }, { batchSize: 7 });
    expect(b).toMatchObject({ processed: total, resumed: false, model: "model-b" });
    expect(await modelsOfMessageVectors()).toEqual({ "model-b": total });
    expect([...second.seen.values()].every((n) => n === 1)).toBe(true);
    expect(second.seen.size).toBe(new Set(await allTexts()).size);

    // The rebuilt vectors are the new model's: a 32-dimension query finds its message.
    const [m] = await archive.scanMessages(null, 1);
    const [q] = await second.embedder.embed([embeddingText(m!)]);
    const top = await vectors.query({ tenantId: m!.tenantId, userId: m!.userId, vector: q!, topK: 1 });
    expect(top[0]).toMatchObject({ id: m!.id, kind: "message" });
  });

  it("an aborted run resumes from its checkpoint and embeds each message once overall", async () => {
    const { embedder, seen } = counting();
    const controller = new AbortController();
    const reports: ReindexProgress[] = [];
    const stopped = await reindexVectors(
      { archive, vectors, embedder },
      {
        batchSize: 10,
        signal: controller.signal,
        onProgress(p) {
          reports.push(p);
          if (p.processed >= 20) controller.abort();
        },
      },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(stopped).toBeInstanceOf(DOMException);
    expect((stopped as DOMException).name).toBe("AbortError");
    expect(reports.map((p) => p.processed)).toEqual([0, 10, 20]);
    expect(reports.every((p) => !p.resumed)).toBe(true);

    const resumedReports: ReindexProgress[] = [];
    const result = await reindexVectors({ archive, vectors, embedder }, { batchSize: 10, onProgress: (p) => resumedReports.push(p) });
    const total = await archive.countMessages();
    expect(result).toMatchObject({ processed: total, total, resumed: true });
    expect(resumedReports[0]).toMatchObject({ processed: 20, resumed: true, rate: 0 });
    expect(resumedReports.at(-1)!.rate).toBeGreaterThan(0);

    const texts = await allTexts();
    expect(texts.every((t) => seen.get(t) === texts.filter((x) => x === t).length)).toBe(true);
    expect([...seen.values()].reduce((n, k) => n + k, 0)).toBe(total);
  });

  it("a run that dies mid-batch redoes only that batch", async () => {
    const { embedder, seen } = counting();
    let upserts = 0;
    const dying: VectorIndex = {
      ...vectors,
      adapter: vectors.adapter,
      async upsert(records) {
        if (++upserts === 3) throw new Error("process killed");
        return vectors.upsert(records);
      },
    };
    await expect(reindexVectors({ archive, vectors: dying, embedder }, { batchSize: 10 })).rejects.toThrow("process killed");
    const result = await reindexVectors({ archive, vectors, embedder }, { batchSize: 10 });
    expect(result.resumed).toBe(true);

    const texts = await allTexts();
    const twice = texts.filter((t) => seen.get(t) === 2);
    expect(twice).toEqual(texts.slice(20, 30));
    expect(texts.filter((t) => seen.get(t) === 1)).toHaveLength(texts.length - 10);
    expect(await modelsOfMessageVectors()).toEqual({ [embedder.model]: texts.length });
  });

  it("a finished run is not resumed: the next one starts over", async () => {
    const { embedder, seen } = counting();
    const first = await reindexVectors({ archive, vectors, embedder }, { batchSize: 25 });
    const second = await reindexVectors({ archive, vectors, embedder }, { batchSize: 25 });
    const total = await archive.countMessages();
    expect(first).toMatchObject({ processed: total, resumed: false });
    expect(second).toMatchObject({ processed: total, resumed: false });
    expect([...seen.values()].reduce((n, k) => n + k, 0)).toBe(2 * total);
  });

  it("sets aside a message whose text the embedder refuses, and deletes its stale vector", async () => {
    const tenantId = (await archive.createTenant({ id: uid("tenant"), name: "Poison" })).id;
    const userId = uid("user");
    const ids = await seed(tenantId, userId, 5, (i) => (i === 3 ? "a POISON pill" : `ordinary message ${i}`));
    await reindexVectors({ archive, vectors, embedder: counting().embedder });
    expect(await vectors.count(tenantId, userId)).toBe(5);

    // As the remote embedders refuse an input: validation, EMBED_INPUT_REJECTED, its index.
    const refusing: Embedder = {
      model: uid("model"),
      dimensions: base.dimensions,
      async embed(texts) {
        const at = texts.findIndex((t) => t.includes("POISON"));
        if (at >= 0) {
          throw new StrataError("validation", "EMBED_INPUT_REJECTED", `rejected the input at index ${at} (of ${texts.length}): too long`, { details: { index: at } });
        }
        return base.embed(texts);
      },
    };
    const result = await reindexVectors({ archive, vectors, embedder: refusing }, { batchSize: 50 });
    expect(result.processed).toBe(await archive.countMessages());
    expect(result.skipped).toEqual([{ tenantId, id: ids[3], reason: expect.stringContaining("index") }]);
    expect(await vectors.count(tenantId, userId)).toBe(4);
    expect(await modelsOfMessageVectors()).toEqual({ [refusing.model]: (await archive.countMessages()) - 1 });
  });

  it("a message forgotten while its batch is embedded gets no vector", async () => {
    const tenantId = (await archive.createTenant({ id: uid("tenant"), name: "Forget" })).id;
    const userId = uid("user");
    const ids = await seed(tenantId, userId, 4, (i) => `forgettable ${i}`);
    let forgot = false;
    const { embedder } = counting(uid("model"), base, async (texts) => {
      if (!forgot && texts.includes("forgettable 2")) {
        forgot = true;
        await archive.forget({ tenantId, scope: "message", id: ids[2]! });
      }
    });
    await reindexVectors({ archive, vectors, embedder }, { batchSize: 100 });
    expect(forgot).toBe(true);
    const rows = await sql.query<{ id: string }>("select id from vectors where tenant_id = $1 order by id", [tenantId]);
    expect(rows.map((r) => r.id)).toEqual([ids[0], ids[1], ids[3]].sort());
  });

  it("refuses a bad batch size before touching anything", async () => {
    await expect(reindexVectors({ archive, vectors, embedder: base }, { batchSize: 0 })).rejects.toMatchObject({ category: "validation" });
  });
});

/** A stream that keeps what is written to it. */
function sink(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(""), isTTY, columns, write: (s: string) => chunks.push(s) };
}

describe("progress line", () => {
  it("formats figures, bar-free, with rate and ETA", () => {
    expect(formatFigures({ processed: 4520, total: 10_000, rate: 312 })).toBe("45.2% 4,520/10,000 312/s ETA 0:18");
    expect(formatFigures({ processed: 0, total: 10, rate: 0 })).toBe("0.0% 0/10 0.0/s ETA --:--");
    expect(formatFigures({ processed: 12, total: 10, rate: 4 })).toBe("100.0% 12/10 4.0/s ETA 0:00");
    expect(formatDuration(3723)).toBe("1:02:03");
    expect(formatDuration(65)).toBe("1:05");
  });

  it("redraws one line in place on a terminal, within its width, and ends it once", () => {
    let t = 0;
    const out = sink(true, 60);
    const w = createProgressWriter(out, { label: "vectors", now: () => t });
    w.update({ processed: 0, total: 1000, rate: 0 });
    t += 50;
    w.update({ processed: 10, total: 1000, rate: 200 }); // within 100 ms: not drawn
    t += 100;
    w.update({ processed: 500, total: 1000, rate: 250 });
    t += 500;
    w.update({ processed: 1000, total: 1000, rate: 250 });
    w.done();
    w.done();
    expect(out.chunks).toHaveLength(4);
    expect(out.chunks.slice(0, 3).every((c) => c.startsWith("\r") && !c.includes("\n"))).toBe(true);
    expect(out.chunks.every((c) => c.replace(/^\r/, "").length < 60)).toBe(true);
    expect(out.chunks[1]).toMatch(/^\rvectors \[█+░+\] 50\.0% 500\/1,000 250\/s ETA 0:02/);
    expect(out.chunks[2]).toMatch(/\[█+\] 100\.0% 1,000\/1,000/);
    expect(out.chunks[3]).toBe("\n");
  });

  it("writes a plain line every few seconds when stderr is not a terminal", () => {
    let t = 0;
    const out = sink(false);
    const w = createProgressWriter(out, { label: "vectors", intervalMs: 5000, now: () => t });
    for (let i = 0; i <= 100; i++) {
      w.update({ processed: i * 10, total: 1000, rate: 10 });
      t += 200; // 20 s in all
    }
    w.done();
    const lines = out.text().split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(out.text()).not.toContain("\r");
    expect(lines[0]).toBe("vectors 0.0% 0/1,000 10/s ETA 1:40");
    expect(lines.at(-1)).toBe("vectors 100.0% 1,000/1,000 10/s ETA 0:00");
  });
});

describe("runReindexCommand", () => {
  it("reports progress and the outcome on stderr, and exits 0", async () => {
    const out = sink(false);
    const { embedder } = counting("cli-model");
    const code = await runReindexCommand({ archive, vectors, embedder }, { stderr: out, batchSize: 50, signal: new AbortController().signal });
    expect(code).toBe(0);
    const total = await archive.countMessages();
    expect(out.text()).toContain(`rebuilding ${total} message vectors with cli-model`);
    expect(out.text()).toMatch(new RegExp(`done: ${total} messages carry cli-model vectors \\(\\d+:\\d\\d\\)`));
  });

  it("stops when interrupted, says how to resume, and exits 130", async () => {
    const controller = new AbortController();
    const out = sink(false);
    out.write = (s: string) => {
      out.chunks.push(s);
      if (s.startsWith("rebuilding")) controller.abort();
      return out.chunks.length;
    };
    const { embedder, seen } = counting();
    const code = await runReindexCommand({ archive, vectors, embedder }, { stderr: out, batchSize: 10, signal: controller.signal });
    expect(code).toBe(130);
    expect(seen.size).toBe(0);
    expect(out.text()).toMatch(/interrupted at 0 of \d+: run `strata reindex --vectors` again to resume/);
    const resumed = sink(false);
    expect(await runReindexCommand({ archive, vectors, embedder }, { stderr: resumed, signal: new AbortController().signal })).toBe(0);
    expect(resumed.text()).toContain("resuming the interrupted rebuild");
  });
});
