// Rolling summaries end to end on the embedded Strata: a long session is ingested,
// scheduleSummaries queues its job through the outbox, the in-process runner runs it, and
// the context call puts the summary first. Then forgetting, a forget racing a job, and the
// retention sweep.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Strata } from "../../runtime.ts";
import { uid } from "../../../test/fixtures/pglite.ts";
import { call, startTestStrata } from "../../../test/fixtures/strata.ts";
import type { StrataDeps } from "../deps.ts";
import type { Job } from "../types.ts";
import { assembleContext } from "./context.ts";
import { forget } from "./forget.ts";
import { ingestMessages } from "./ingest.ts";
import { runSummarizeJob, scheduleSummaries, sweepRetention } from "./summaries.ts";

const WINDOW = 6;
let strata: Strata;
beforeAll(async () => {
  strata = await startTestStrata({ recentWindow: WINDOW });
});
afterAll(async () => {
  await strata?.close();
});

const DECISION = "We decided to ship the Strata beta to Acme on March 14 with Postgres only.";
const FILLER = ["ok", "thanks!", "sounds good", "lol", "nice"];

function talk(n: number, offset = 0) {
  return Array.from({ length: n }, (_, i) => {
    const k = i + offset;
    if (k === 3) return { role: "user" as const, name: "Dana", content: `Right. ${DECISION}` };
    if (k % 2) return { role: "assistant" as const, content: FILLER[k % FILLER.length]! };
    return { role: "user" as const, name: "Dana", content: `The beta checklist item ${k} covers the Postgres migration and the Acme rollout.` };
  });
}

/** Schedules summaries, lets the runner finish, and says whether this session got a job. */
async function summarizeNow(sessionId: string): Promise<boolean> {
  const before = await strata.deps.archive.latestSummary("default", sessionId);
  const queued = await scheduleSummaries(strata.deps, { limit: 1000 });
  await strata.idle();
  const after = await strata.deps.archive.latestSummary("default", sessionId);
  return queued > 0 && after?.upToSeq !== before?.upToSeq;
}

describe("rolling summaries", () => {
  it("summarizes a long session through the outbox and the context call puts the summary first", async () => {
    const s = uid("s");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: talk(40) });
    await strata.idle();
    // Its embed and extract jobs are done, but the summary is not queued until the schedule
    // runs: GET /v1/status says so, and says so no more once it has.
    const status = async () => (await call(strata, "GET", "/v1/status")).body;
    expect(await status()).toMatchObject({ queue: { pending: 0 }, summaries: { due: 1 } });
    expect(await summarizeNow(s)).toBe(true);
    expect(await status()).toMatchObject({ queue: { pending: 0 }, summaries: { due: 0 } });
    const summary = await strata.deps.archive.latestSummary("default", s);
    expect(summary).toMatchObject({ upToSeq: 40 - WINDOW, userId: "dana" });
    expect(summary!.content).toContain(`Dana: ${DECISION}`);
    expect(summary!.tokens).toBe(strata.deps.tokenizer.count(summary!.content));
    expect(summary!.tokens).toBeLessThanOrEqual(250);
    expect(summary!.content).not.toMatch(/: (ok|thanks!|lol|nice)$/m);
    expect(await strata.deps.archive.queueStats("default")).toMatchObject({ pending: 0, failed: 0 });

    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, budget: 2000 });
    expect(ctx.summary).toMatchObject({ upToSeq: 40 - WINDOW, content: summary!.content });
    expect(ctx.prompt.startsWith(`## Summary of the conversation so far\n${summary!.content}`)).toBe(true);

    // Not due again until enough new messages scroll out of the window; then it rolls forward.
    expect(await summarizeNow(s)).toBe(false);
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: talk(12, 40) });
    await strata.idle();
    expect(await summarizeNow(s)).toBe(true);
    const rolled = await strata.deps.archive.latestSummary("default", s);
    expect(rolled!.upToSeq).toBe(52 - WINDOW);
    expect(rolled!.content).toContain(DECISION);
    expect(rolled!.tokens).toBeLessThanOrEqual(250);
  });

  it("forgetting a summarized message removes it from the summary, and the next run rebuilds without it", async () => {
    const s = uid("s");
    // A user of its own: another session's decision memories would show in the prompt.
    const out = await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: uid("u"), messages: talk(30) });
    await strata.idle();
    expect(await summarizeNow(s)).toBe(true);
    expect((await strata.deps.archive.latestSummary("default", s))!.content).toContain(DECISION);

    await forget(strata.deps, { tenantId: "default", scope: "message", id: out.messages[3]!.id });
    await strata.idle();
    expect(await strata.deps.archive.latestSummary("default", s)).toBeNull();
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, budget: 2000 });
    expect(ctx.prompt).not.toContain("We decided to ship");

    expect(await summarizeNow(s)).toBe(true);
    const rebuilt = await strata.deps.archive.latestSummary("default", s);
    expect(rebuilt!.upToSeq).toBe(30 - WINDOW);
    expect(rebuilt!.content.length).toBeGreaterThan(0);
    expect(rebuilt!.content).not.toContain("We decided to ship");
  });

  it("a job racing a forget leaves no summary built from the forgotten message", async () => {
    const s = uid("s");
    const out = await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: talk(30) });
    await strata.idle();
    // The forget lands after the job read the messages and before it writes.
    const racing: StrataDeps = {
      ...strata.deps,
      summarizer: {
        version: strata.deps.summarizer.version,
        async summarize(input) {
          const text = await strata.deps.summarizer.summarize(input);
          await forget(strata.deps, { tenantId: "default", scope: "message", id: out.messages[3]!.id });
          return text;
        },
      },
    };
    const job = { id: uid("job"), tenantId: "default", type: "summarize", payload: { sessionId: s } } as Job<"summarize">;
    await runSummarizeJob(racing, job);
    expect(await strata.deps.archive.latestSummary("default", s)).toBeNull();
    await strata.idle();
  });

  it("a session of small talk only records its progress, and the context shows no empty summary", async () => {
    const s = uid("s");
    const chatter = Array.from({ length: 30 }, (_, i) => ({ role: (i % 2 ? "assistant" : "user") as "user" | "assistant", content: FILLER[i % FILLER.length]! }));
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: chatter });
    await strata.idle();
    expect(await summarizeNow(s)).toBe(true);
    expect((await strata.deps.archive.latestSummary("default", s))?.content.trim()).toBe("");
    const ctx = await assembleContext(strata.deps, { tenantId: "default", sessionId: s, budget: 500 });
    expect(ctx.summary).toBeNull();
    expect(ctx.prompt).not.toContain("## Summary");
  });

  it("a job for a session already summarized as far as it goes stores nothing and records how far on the session", async () => {
    const s = uid("s");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: talk(30) });
    await strata.idle();
    expect(await summarizeNow(s)).toBe(true);
    const latest = await strata.deps.archive.latestSummary("default", s);
    // As when older code wrote the summary: the schedule finds the session due and queues it.
    const marked: unknown[][] = [];
    const archive = Object.create(strata.deps.archive) as StrataDeps["archive"];
    archive.markSummarized = (...args) => {
      marked.push(args);
      return strata.deps.archive.markSummarized(...args);
    };
    const job = { id: uid("job"), tenantId: "default", type: "summarize", payload: { sessionId: s } } as Job<"summarize">;
    await runSummarizeJob({ ...strata.deps, archive }, job);
    expect(marked).toEqual([["default", s, 30 - WINDOW]]);
    expect(await strata.deps.archive.latestSummary("default", s)).toEqual(latest);
  });

  it("a summarize job for a forgotten session does nothing and succeeds", async () => {
    const s = uid("s");
    await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: "dana", messages: talk(30) });
    await strata.idle();
    const [job] = await strata.deps.archive.enqueueJobs([{ tenantId: "default", type: "summarize", payload: { sessionId: s } }]);
    await forget(strata.deps, { tenantId: "default", scope: "session", id: s });
    await strata.deps.queue.dispatch([job!]);
    await strata.idle();
    expect((await strata.deps.archive.getJobs([job!.id]))[0]).toMatchObject({ status: "done" });
    expect(await strata.deps.archive.latestSummary("default", s)).toBeNull();
    expect(await strata.deps.archive.getSession("default", s)).toBeNull();
  });
});

describe("retention sweep", () => {
  it("deletes memories past their expiry and keeps the rest", async () => {
    const s = uid("s");
    const u = uid("u");
    const out = await ingestMessages(strata.deps, { tenantId: "default", sessionId: s, userId: u, messages: [{ role: "user", content: "I need to renew the Acme contract." }] });
    await strata.idle();
    const src = out.messages[0]!.id;
    const mem = (id: string, expiresAt: string | null) => ({
      tenantId: "default", id, userId: u, kind: "note" as const, content: id, priority: 3, tokens: 1, sourceMessageId: src, expiresAt,
    });
    const past = new Date(Date.now() - 1000).toISOString();
    await strata.deps.archive.saveMemories([mem(uid("old"), past), mem(uid("old"), past), mem(uid("old"), past), mem("keep", null)]);
    const before = (await strata.deps.archive.listMemories("default", u, { limit: 20 })).map((m) => m.id);
    expect(before).toContain("keep");
    expect(await sweepRetention(strata.deps, { limit: 2 })).toBe(2);
    expect(await sweepRetention(strata.deps, { limit: 1000 })).toBeGreaterThanOrEqual(1);
    expect(await sweepRetention(strata.deps, { limit: 1000 })).toBe(0);
    const after = (await strata.deps.archive.listMemories("default", u, { limit: 20 })).map((m) => m.id);
    expect(after).toEqual(before);
    expect(after).toContain("keep");
  });
});

describe("the embedded server's timers", () => {
  // A Strata of its own with the timers on, every second: in the one above they would race the tests.
  let timed: Strata;
  beforeAll(async () => {
    timed = await startTestStrata({ recentWindow: WINDOW, summaryEverySeconds: 1, retentionEverySeconds: 1 });
  });
  afterAll(async () => {
    await timed?.close();
  });

  it("summarize due sessions and sweep expired memories without being asked", async () => {
    const { archive } = timed.deps;
    const s = uid("s");
    const u = uid("u");
    const out = await ingestMessages(timed.deps, { tenantId: "default", sessionId: s, userId: u, messages: talk(30) });
    const gone = uid("gone");
    const memory = (expiresAt: string | null) => ({
      tenantId: "default", id: gone, userId: u, kind: "note" as const, content: "old", priority: 1, tokens: 1, sourceMessageId: out.messages[0]!.id, expiresAt,
    });
    await archive.saveMemories([memory(new Date(0).toISOString())]);
    // Waits (bounded) for the timers; what is asserted is the outcome, not how long it took.
    const until = async (what: string, done: () => Promise<boolean>) => {
      for (let i = 0; i < 300; i++) {
        if (await done()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the timers never ${what}`);
    };
    await until("summarized the session", async () => (await archive.latestSummary("default", s))?.upToSeq === 30 - WINDOW);
    expect((await archive.latestSummary("default", s))!.content).toContain(DECISION);
    // Storing the id again is a no-op while the expired row exists (ids are idempotent): it
    // shows up, unexpired, only once the sweep deleted the old one.
    await until("swept the expired memory", async () => {
      await archive.saveMemories([memory(null)]);
      return (await archive.listMemories("default", u, { limit: 100 })).some((m) => m.id === gone);
    });
    await timed.idle();
  });
});
