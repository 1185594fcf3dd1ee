// The Archive port's behaviour suite. Every archive adapter runs it (embedded PGlite now,
// Neon against a local Postgres later); a test file per adapter is a few lines that call
// archiveContract() with a setup function.

import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { StrataError } from "../../lib/core/errors.ts";
import type { Archive } from "../../lib/core/ports.ts";
import type { NewJob, NewMessage } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";

export interface ArchiveFixture {
  archive: Archive;
  cleanup?: () => Promise<void>;
}

function msg(id: string, content: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { id, role: "user", content, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: content.split(" ").length, ...extra };
}

const embedJobs = (ms: { id: string }[]): NewJob[] => [{ type: "embed", payload: { messageIds: ms.map((m) => m.id) } }];

export function archiveContract(name: string, setup: () => Promise<ArchiveFixture>, options: { skip?: string[] } = {}) {
  const skip = new Set(options.skip ?? []);
  const maybe = (title: string) => (skip.has(title) ? it.skip : it);

  describe(`Archive contract: ${name}`, () => {
    let fx: ArchiveFixture;
    let archive: Archive;
    let tenantId: string;

    beforeAll(async () => {
      fx = await setup();
      archive = fx.archive;
      await archive.migrate(); // a second run must be a no-op
    });
    afterAll(async () => {
      await fx.cleanup?.();
    });

    const newTenant = async () => (await archive.createTenant({ id: uid("tenant"), name: "Test" })).id;
    const ingest = (sessionId: string, userId: string, messages: NewMessage[], t = tenantId) =>
      archive.ingest({ tenantId: t, sessionId, userId, messages, jobsFor: embedJobs });
    // Every suite of a file shares its database, and earlier tests leave runnable jobs (other
    // tenants') that sort before a test's own; a claim or relay read of `limit` rows could then
    // see none of the test's. The job tests lease those out of the way first, for longer than
    // the file runs, so what they claim is their own.
    const leaseOtherJobs = async () => {
      while ((await archive.claimJobs({ limit: 1000, leaseMs: 3_600_000 })).length) {}
    };

    maybe("creates tenants and rejects a duplicate id")("creates tenants and rejects a duplicate id", async () => {
      tenantId = await newTenant();
      expect((await archive.getTenant(tenantId))?.name).toBe("Test");
      await expect(archive.createTenant({ id: tenantId, name: "Again" })).rejects.toMatchObject({ code: "TENANT_EXISTS" });
      const ensured = await archive.ensureTenant({ id: tenantId, name: "Other name" });
      expect(ensured.name).toBe("Test");
      expect(await archive.getTenant(uid("nobody"))).toBeNull();
    });

    maybe("maps hashed API keys to tenants")("maps hashed API keys to tenants", async () => {
      const other = await newTenant();
      const hash = uid("hash");
      await archive.addApiKey({ tenantId, keyHash: hash, label: "ci" });
      await archive.addApiKey({ tenantId, keyHash: hash }); // idempotent
      expect(await archive.tenantForKey(hash)).toBe(tenantId);
      expect(await archive.tenantForKey(uid("unknown"))).toBeNull();
      await expect(archive.addApiKey({ tenantId: other, keyHash: hash })).rejects.toBeInstanceOf(StrataError);
    });

    maybe("ingests with per-session sequence numbers and outbox rows")("ingests with per-session sequence numbers and outbox rows", async () => {
      const s = uid("s");
      const u = uid("u");
      const a = await ingest(s, u, [msg(uid("m"), "first"), msg(uid("m"), "second")]);
      expect(a.messages.map((m) => [m.seq, m.created])).toEqual([
        [1, true],
        [2, true],
      ]);
      expect(a.jobs).toHaveLength(1);
      expect(a.jobs[0]).toMatchObject({ type: "embed", status: "pending", attempts: 0, tenantId });
      expect((a.jobs[0]!.payload as { messageIds: string[] }).messageIds).toEqual(a.messages.map((m) => m.id));
      const b = await ingest(s, u, [msg(uid("m"), "third")]);
      expect(b.messages[0]!.seq).toBe(3);
      expect(b.session.lastSeq).toBe(3);
      expect((await archive.getSession(tenantId, s))?.lastSeq).toBe(3);
    });

    maybe("treats a repeated id as a no-op and a changed one as a conflict")("treats a repeated id as a no-op and a changed one as a conflict", async () => {
      const s = uid("s");
      const u = uid("u");
      const id = uid("m");
      await ingest(s, u, [msg(id, "hello there")]);
      const again = await ingest(s, u, [msg(id, "hello there"), msg(id, "hello there")]);
      expect(again.messages).toEqual([
        { id, seq: 1, created: false },
        { id, seq: 1, created: false },
      ]);
      expect(again.jobs).toEqual([]);
      const fresh = uid("m");
      await expect(ingest(s, u, [msg(fresh, "new one"), msg(id, "changed text")])).rejects.toMatchObject({ code: "MESSAGE_ID_CONFLICT" });
      // Nothing of the rejected call is stored: not the fresh message, not its job.
      expect(await archive.getMessages(tenantId, [fresh])).toEqual([]);
      expect((await archive.getSession(tenantId, s))?.lastSeq).toBe(1);
      await expect(ingest(uid("s"), u, [msg(id, "hello there")])).rejects.toMatchObject({ code: "MESSAGE_ID_CONFLICT" });
      const dup = uid("m");
      await expect(ingest(s, u, [msg(dup, "one"), msg(dup, "two")])).rejects.toMatchObject({ code: "MESSAGE_ID_CONFLICT" });
    });

    maybe("refuses a session owned by another user")("refuses a session owned by another user", async () => {
      const s = uid("s");
      await ingest(s, uid("u"), [msg(uid("m"), "mine")]);
      await expect(ingest(s, uid("u"), [msg(uid("m"), "not yours")])).rejects.toMatchObject({ code: "SESSION_USER_MISMATCH" });
    });

    // Concurrent writers: chat frontends send one message a request, many at once, and retry
    // a message whose answer they missed. Any archive must answer them as it would one after
    // another, in some order: PGlite's in the order they were called (it commits those that
    // wait together, group-commit.ts; archive.pglite.test.ts), a Postgres server's as its
    // transactions commit.
    maybe("answers concurrent ingests as it would one after another")("answers concurrent ingests as it would one after another", async () => {
      const other = await newTenant();
      const [u1, u2] = [uid("u"), uid("u")];
      const [s1, s2, s3] = [uid("s"), uid("s"), uid("s")];
      const shared = uid("m");
      const calls: [string, string, NewMessage[], string?][] = [
        [s1, u1, [msg(uid("m"), "one")]],
        [s1, u1, [msg(shared, "two"), msg(uid("m"), "three")]],
        [s2, u2, [msg(uid("m"), "four")]],
        [s1, u1, [msg(shared, "two")]], // the same message again, as a retry sends it
        [s3, u1, [msg(uid("m"), "five")], other],
        [s2, u2, [msg(uid("m"), "six")]],
        [s1, u1, [msg(uid("m"), "seven")]],
      ];
      const before = archive.readContext ? (await archive.readContext(tenantId, uid("s"), { userId: u1, memoryLimit: 0 })).userVersion : null;
      const results = await Promise.all(calls.map(([s, u, ms, t]) => ingest(s, u, ms, t)));
      const stored = new Map<string, number>();
      for (const [t, s] of [[tenantId, s1], [tenantId, s2], [other, s3]] as const) {
        for (const m of await archive.listMessages(t, s, { limit: 10 })) stored.set(m.id, m.seq);
      }
      expect((await archive.listMessages(tenantId, s1, { limit: 10 })).map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      expect((await archive.listMessages(tenantId, s1, { limit: 10 })).map((m) => m.content).sort()).toEqual(["one", "seven", "three", "two"]);
      expect((await archive.listMessages(tenantId, s2, { limit: 10 })).map((m) => m.seq)).toEqual([1, 2]);
      expect((await archive.listMessages(other, s3, { limit: 10 })).map((m) => [m.seq, m.content, m.userId])).toEqual([[1, "five", u1]]);
      // The message sent twice is stored once: one call created it, the other answers its seq.
      expect(results[1]!.messages[0]!.created !== results[3]!.messages[0]!.created).toBe(true);
      results.forEach((r, i) => {
        // Each call's messages under the seqs they are stored under, its own consecutive.
        expect(r.messages.map((m) => m.seq)).toEqual(r.messages.map((m) => stored.get(m.id)));
        const created = r.messages.filter((m) => m.created).map((m) => m.seq);
        expect(created).toEqual(created.map((_, k) => created[0]! + k));
        // Its own messages, and outbox rows of its tenant.
        expect(r.inserted.map((m) => m.id)).toEqual(r.messages.filter((m) => m.created).map((m) => m.id));
        expect(r.jobs.every((j) => j.tenantId === (calls[i]![3] ?? tenantId))).toBe(true);
        expect(r.session.lastSeq).toBeGreaterThanOrEqual(Math.max(...r.messages.map((m) => m.seq)));
      });
      // Every stored message in the outbox rows handed out, once (one call may carry another's).
      const outboxed = results.flatMap((r) => r.jobs.flatMap((j) => (j.payload as { messageIds: string[] }).messageIds));
      expect(outboxed.sort()).toEqual(results.flatMap((r) => r.inserted.map((m) => m.id)).sort());
      if (before !== null) {
        const after = (await archive.readContext!(tenantId, uid("s"), { userId: u1, memoryLimit: 0 })).userVersion!;
        expect(after.messagesVersion).toBeGreaterThan(before?.messagesVersion ?? -1);
      }
    });

    maybe("refuses a concurrent ingest alone, storing the others")("refuses a concurrent ingest alone, storing the others", async () => {
      const u = uid("u");
      const [s, theirs] = [uid("s"), uid("s")];
      const kept = uid("m");
      const gone = uid("m");
      await ingest(s, u, [msg(kept, "kept"), msg(gone, "to forget")]);
      await ingest(theirs, uid("u"), [msg(uid("m"), "not yours")]);
      await archive.forget({ tenantId, scope: "message", id: gone });
      const fresh = Array.from({ length: 6 }, () => uid("m"));
      const settled = await Promise.allSettled([
        ingest(s, u, [msg(fresh[0]!, "a")]),
        ingest(s, u, [msg(fresh[1]!, "b"), msg(kept, "kept, changed")]), // MESSAGE_ID_CONFLICT
        ingest(s, u, [msg(fresh[2]!, "c")]),
        ingest(theirs, u, [msg(fresh[3]!, "d")]), // SESSION_USER_MISMATCH
        ingest(s, u, [msg(fresh[4]!, "e"), msg(gone, "to forget")]), // MESSAGE_FORGOTTEN
        ingest(s, u, [msg(fresh[5]!, "f")]),
      ]);
      expect(settled.map((r) => (r.status === "fulfilled" ? "stored" : (r.reason as StrataError).code))).toEqual([
        "stored",
        "MESSAGE_ID_CONFLICT",
        "stored",
        "SESSION_USER_MISMATCH",
        "MESSAGE_FORGOTTEN",
        "stored",
      ]);
      // Nothing of a refused call is stored.
      expect((await archive.getMessages(tenantId, fresh)).map((m) => m.content).sort()).toEqual(["a", "c", "f"]);
      expect((await archive.listMessages(tenantId, s, { limit: 10 })).map((m) => m.seq)).toEqual([1, 3, 4, 5]); // 2 was forgotten
      expect((await archive.getSession(tenantId, theirs))?.lastSeq).toBe(1);
    });

    maybe("keeps message ids per tenant")("keeps message ids per tenant", async () => {
      const other = await newTenant();
      const id = uid("m");
      await ingest(uid("s"), "u", [msg(id, "tenant one")]);
      await ingest(uid("s"), "u", [msg(id, "tenant two")], other);
      expect((await archive.getMessages(tenantId, [id]))[0]?.content).toBe("tenant one");
      expect((await archive.getMessages(other, [id]))[0]?.content).toBe("tenant two");
    });

    maybe("pages history by sequence number")("pages history by sequence number", async () => {
      const s = uid("s");
      const ms = Array.from({ length: 10 }, (_, i) => msg(uid("m"), `message ${i + 1}`, { metadata: { i }, name: i % 2 ? "Bo" : null, role: i % 2 ? "assistant" : "user" }));
      await ingest(s, uid("u"), ms);
      const latest = await archive.listMessages(tenantId, s, { limit: 3 });
      expect(latest.map((m) => m.seq)).toEqual([8, 9, 10]);
      expect(latest[0]).toMatchObject({ content: "message 8", name: "Bo", role: "assistant", metadata: { i: 7 }, sessionId: s });
      expect(latest[1]).toMatchObject({ content: "message 9", name: null, role: "user", metadata: { i: 8 } });
      expect((await archive.listMessages(tenantId, s, { limit: 3, before: 8 })).map((m) => m.seq)).toEqual([5, 6, 7]);
      expect((await archive.listMessages(tenantId, s, { limit: 3, after: 2 })).map((m) => m.seq)).toEqual([3, 4, 5]);
      expect((await archive.listMessages(tenantId, s, { limit: 5, after: 4, before: 7 })).map((m) => m.seq)).toEqual([5, 6]);
      expect(await archive.listMessages(tenantId, uid("none"), { limit: 5 })).toEqual([]);
    });

    maybe("searches one user's messages by keyword")("searches one user's messages by keyword", async () => {
      const u = uid("u");
      const s1 = uid("s");
      const s2 = uid("s");
      const hike = uid("m");
      const camp = uid("m");
      await ingest(s1, u, [msg(hike, "We went hiking in the mountains near Lake Tahoe"), msg(uid("m"), "The weather is nice today")]);
      await ingest(s2, u, [msg(camp, "Camping trip to the mountains with the kids, hiking every day")]);
      await ingest(uid("s"), uid("other"), [msg(uid("m"), "I love hiking in the mountains")]);
      const hits = await archive.keywordSearch({ tenantId, userId: u, query: "Where did they go hiking in the mountains?", limit: 10 });
      expect(hits.map((h) => h.id).sort()).toEqual([hike, camp].sort());
      expect(hits[0]!.score).toBeGreaterThan(0);
      expect(hits[0]!.score).toBeGreaterThanOrEqual(hits[1]!.score);
      const inSession = await archive.keywordSearch({ tenantId, userId: u, query: "hiking", limit: 10, sessionId: s2 });
      expect(inSession.map((h) => h.id)).toEqual([camp]);
      expect(await archive.keywordSearch({ tenantId, userId: u, query: "the and of ?!", limit: 10 })).toEqual([]);
      expect(await archive.keywordSearch({ tenantId, userId: u, query: "'; drop table messages; --", limit: 10 })).toEqual([]);
    });

    maybe("leases, completes, retries and dead-letters jobs")("leases, completes, retries and dead-letters jobs", async () => {
      const t = await newTenant();
      await leaseOtherJobs();
      const r = await archive.ingest({
        tenantId: t,
        sessionId: uid("s"),
        userId: "u",
        messages: [msg(uid("m"), "a"), msg(uid("m"), "b")],
        jobsFor: (ms) => ms.map((m) => ({ type: "extract", payload: { messageIds: [m.id] } })),
      });
      const [j1, j2] = r.jobs.map((j) => j.id);
      expect(await archive.queueStats(t)).toMatchObject({ pending: 2, inFlight: 0, failed: 0 });
      await archive.markDispatched([j1!]);
      expect((await archive.getJobs([j1!]))[0]?.status).toBe("dispatched");

      const claimed = (await archive.claimJobs({ limit: 100, leaseMs: 200 })).filter((j) => j.tenantId === t);
      expect(claimed.map((j) => j.id).sort()).toEqual([j1, j2].sort());
      expect(claimed.every((j) => j.status === "running" && j.attempts === 1)).toBe(true);
      expect(await archive.queueStats(t)).toMatchObject({ pending: 2, inFlight: 2 });
      // Leased: nobody else gets them until the lease runs out.
      expect((await archive.claimJobs({ limit: 100, leaseMs: 200 })).filter((j) => j.tenantId === t)).toEqual([]);
      await archive.markDispatched([j1!]); // must not pull a running job back
      expect((await archive.getJobs([j1!]))[0]?.status).toBe("running");

      await archive.completeJobs([j1!]);
      await archive.completeJobs([j1!]);
      await new Promise((res) => setTimeout(res, 250));
      const again = (await archive.claimJobs({ limit: 100, leaseMs: 60_000 })).filter((j) => j.tenantId === t);
      expect(again.map((j) => [j.id, j.attempts])).toEqual([[j2, 2]]);

      await archive.failJob(j2!, "boom", new Date(Date.now() + 60_000));
      expect((await archive.getJobs([j2!]))[0]).toMatchObject({ status: "pending", lastError: "boom" });
      expect((await archive.claimJobs({ limit: 100, leaseMs: 1000 })).filter((j) => j.tenantId === t)).toEqual([]); // backoff
      await archive.failJob(j2!, "boom again", null);
      const stats = await archive.queueStats(t);
      expect(stats).toMatchObject({ pending: 0, inFlight: 0, failed: 1, oldestPendingAgeMs: null });
      expect((await archive.getJobs([j2!]))[0]).toMatchObject({ status: "failed", lastError: "boom again" });
      // Re-driving puts it back to pending with fresh attempts; its last error stays for the record.
      const retried = (await archive.retryFailedJobs(t)).map((j) => [j.id, j.status, j.attempts, j.lastError]);
      expect(retried).toEqual([[j2, "pending", 0, "boom again"]]);
      expect(await archive.queueStats(t)).toMatchObject({ pending: 1, failed: 0 });
      expect(await archive.retryFailedJobs(t)).toEqual([]);
    });

    maybe("starts, releases and relays jobs owned by an external queue")("starts, releases and relays jobs owned by an external queue", async () => {
      const t = await newTenant();
      await leaseOtherJobs();
      const r = await archive.ingest({
        tenantId: t,
        sessionId: uid("s"),
        userId: "u",
        messages: [msg(uid("m"), "a"), msg(uid("m"), "b")],
        jobsFor: (ms) => ms.map((m) => ({ type: "embed", payload: { messageIds: [m.id] } })),
      });
      const [j1, j2] = r.jobs.map((j) => j.id) as [string, string];
      // Fresh jobs are not the relay's yet; once older than the bound they are, until dispatched.
      expect((await archive.undispatchedJobs(60_000, 100)).filter((j) => j.tenantId === t)).toEqual([]);
      await new Promise((res) => setTimeout(res, 30));
      expect((await archive.undispatchedJobs(10, 100)).filter((j) => j.tenantId === t).map((j) => j.id).sort()).toEqual([j1, j2].sort());
      await archive.markDispatched([j1, j2]);
      expect((await archive.undispatchedJobs(10, 100)).filter((j) => j.tenantId === t)).toEqual([]);

      const started = await archive.startJobs([j1, uid("unknown")], 60_000);
      expect(started.map((j) => [j.id, j.status, j.attempts])).toEqual([[j1, "running", 1]]);
      expect(await archive.queueStats(t)).toMatchObject({ pending: 2, inFlight: 1 });
      await archive.releaseJob(j1, "timeout talking to the embedder");
      expect((await archive.getJobs([j1]))[0]).toMatchObject({ status: "dispatched", attempts: 1, lastError: "timeout talking to the embedder" });
      expect((await archive.startJobs([j1], 60_000))[0]?.attempts).toBe(2);
      await archive.completeJobs([j1]);
      expect(await archive.startJobs([j1], 60_000)).toEqual([]); // done: a redelivery must not run it again
      expect(await archive.queueStats(t)).toMatchObject({ pending: 1, inFlight: 0 });
    });

    maybe("reports the oldest pending job's age per tenant")("reports the oldest pending job's age per tenant", async () => {
      const t = await newTenant();
      expect(await archive.queueStats(t)).toEqual({ pending: 0, inFlight: 0, failed: 0, oldestPendingAgeMs: null });
      await archive.ingest({ tenantId: t, sessionId: uid("s"), userId: "u", messages: [msg(uid("m"), "x")], jobsFor: embedJobs });
      await new Promise((res) => setTimeout(res, 20));
      const stats = await archive.queueStats(t);
      expect(stats.pending).toBe(1);
      expect(stats.oldestPendingAgeMs).toBeGreaterThanOrEqual(10);
    });

    maybe("scans messages in order and keeps resumable rebuild checkpoints")("scans messages in order and keeps resumable rebuild checkpoints", async () => {
      const t = await newTenant();
      const ids = ["b", "a", "c"].map((x) => `${uid("m")}-${x}`);
      await archive.ingest({ tenantId: t, sessionId: uid("s"), userId: "u", messages: ids.map((id) => msg(id, id)), jobsFor: () => [] });
      const seen: string[] = [];
      let after: { tenantId: string; id: string } | null = null;
      for (;;) {
        const page: { tenantId: string; id: string }[] = await archive.scanMessages(after, 2);
        if (!page.length) break;
        for (const m of page) if (m.tenantId === t) seen.push(m.id);
        after = { tenantId: page[page.length - 1]!.tenantId, id: page[page.length - 1]!.id };
      }
      expect(seen).toEqual([...ids].sort());
      expect(await archive.countMessages()).toBeGreaterThanOrEqual(3);

      const model = uid("model");
      const run = await archive.openReindexRun("vectors", model);
      expect(run).toMatchObject({ cursor: null, processed: 0, resumed: false });
      await archive.saveReindexProgress(run.id, { tenantId: t, id: ids[0]! }, 1, 3);
      const resumed = await archive.openReindexRun("vectors", model);
      expect(resumed).toEqual({ id: run.id, cursor: { tenantId: t, id: ids[0] }, processed: 1, resumed: true });
      await archive.finishReindexRun(run.id);
      const next = await archive.openReindexRun("vectors", model);
      expect(next.id).not.toBe(run.id);
      expect(next.cursor).toBeNull();
    });

    maybe("stores typed memories idempotently and never for a forgotten message")("stores typed memories idempotently and never for a forgotten message", async () => {
      const u = uid("u");
      const s = uid("s");
      const [a, b] = [uid("m"), uid("m")];
      await ingest(s, u, [msg(a, "we decided"), msg(b, "i need to")]);
      const mem = (id: string, source: string, kind: "decision" | "task", priority: number) => ({
        tenantId, id, userId: u, kind, content: `${kind} from ${source}`, priority, tokens: 3, sourceMessageId: source,
      });
      await archive.saveMemories([mem(`d:${a}`, a, "decision", 7), mem(`t:${b}`, b, "task", 6)]);
      await archive.saveMemories([mem(`d:${a}`, a, "decision", 7)]);
      const list = await archive.listMemories(tenantId, u, { limit: 10 });
      expect(list.map((m) => [m.id, m.kind, m.priority, m.sourceMessageId])).toEqual([
        [`d:${a}`, "decision", 7, a],
        [`t:${b}`, "task", 6, b],
      ]);
      expect((await archive.listMemories(tenantId, u, { kinds: ["task"], limit: 10 })).map((m) => m.id)).toEqual([`t:${b}`]);
      expect(await archive.listMemories(tenantId, uid("nobody"), { limit: 10 })).toEqual([]);
      await archive.deleteMemoriesFrom(tenantId, [b]);
      expect((await archive.listMemories(tenantId, u, { limit: 10 })).map((m) => m.id)).toEqual([`d:${a}`]);
      // Forgetting removes a message's memories, and a late write of them is refused.
      const { receipt } = await archive.forget({ tenantId, scope: "message", id: a });
      expect(receipt).toMatchObject({ scope: "message", targetId: a, messages: 1, tiers: { archive: "done", vectors: "pending" } });
      expect(await archive.listMemories(tenantId, u, { limit: 10 })).toEqual([]);
      await archive.saveMemories([mem(`d2:${a}`, a, "decision", 7)]);
      expect(await archive.listMemories(tenantId, u, { limit: 10 })).toEqual([]);
      expect([...(await archive.tombstoned(tenantId, [a, b]))]).toEqual([a]);
      const done = await archive.markForgotten(receipt.id, ["hot", "vectors", "graph"]);
      expect(done?.completedAt).toEqual(expect.any(String));
      expect((await archive.getForgetReceipt(tenantId, receipt.id))?.tiers).toEqual({ archive: "done", hot: "done", vectors: "done", graph: "done" });
    });

    maybe("stores rolling summaries idempotently and never on top of a forgotten one")("stores rolling summaries idempotently and never on top of a forgotten one", async () => {
      const u = uid("u");
      const s = uid("s");
      const ids = Array.from({ length: 6 }, () => uid("m"));
      await ingest(s, u, ids.map((id, i) => msg(id, `message number ${i}`)));
      const sum = (upToSeq: number, content: string) => ({ tenantId, sessionId: s, userId: u, upToSeq, content, tokens: 3 });
      expect(await archive.saveSummary(sum(2, "first"), null)).toBe(true);
      expect(await archive.saveSummary(sum(2, "first again"), null)).toBe(true); // a repeat keeps the first
      expect(await archive.latestSummary(tenantId, s)).toMatchObject({ content: "first", upToSeq: 2, tokens: 3, userId: u });
      expect(await archive.saveSummary(sum(4, "second"), 2)).toBe(true);
      expect(await archive.latestSummary(tenantId, s)).toMatchObject({ content: "second", upToSeq: 4 });
      // Rolled from a summary that is not there: refused.
      expect(await archive.saveSummary(sum(5, "from nowhere"), 3)).toBe(false);
      // Not for an unknown session or another user's session.
      expect(await archive.saveSummary({ ...sum(1, "x"), sessionId: uid("nosession") }, null)).toBe(false);
      expect(await archive.saveSummary({ ...sum(6, "x"), userId: uid("other") }, null)).toBe(false);
      expect((await archive.latestSummary(tenantId, s))?.upToSeq).toBe(4);

      // Forgetting one message drops the session's summaries: they may quote it.
      await archive.forget({ tenantId, scope: "message", id: ids[1]! });
      expect(await archive.latestSummary(tenantId, s)).toBeNull();
      expect(await archive.saveSummary(sum(5, "rolled from the forgotten one"), 4)).toBe(false);
      expect(await archive.latestSummary(tenantId, s)).toBeNull();
      expect(await archive.saveSummary(sum(5, "rebuilt"), null)).toBe(true);
      await archive.deleteSummaries(tenantId, s);
      expect(await archive.latestSummary(tenantId, s)).toBeNull();
      // A session forget takes its summaries with it.
      await archive.saveSummary(sum(5, "again"), null);
      await archive.forget({ tenantId, scope: "session", id: s });
      expect(await archive.latestSummary(tenantId, s)).toBeNull();
    });

    maybe("reads a context's session, summary, memories and user version in one call")("reads a context's session, summary, memories and user version in one call", async () => {
      if (!archive.readContext) return; // optional: an archive without it is read call by call
      const read = (s: string, userId?: string, memoryLimit = 10) => archive.readContext!(tenantId, s, { userId, memoryLimit });
      const u = uid("u");
      const s = uid("s");
      const ids = Array.from({ length: 4 }, () => uid("m"));
      // Neither the session nor the user exists yet.
      expect(await read(s, u)).toEqual({ session: null, summary: null, memories: [], userVersion: null, graphVersion: { version: 0, reset: 0 } });
      expect(await read(s)).toEqual({ session: null, summary: null, memories: [], userVersion: null, graphVersion: { version: 0, reset: 0 } });

      await ingest(s, u, ids.slice(0, 2).map((id, i) => msg(id, `message ${i}`)));
      const first = await read(s, u);
      expect(first.session).toEqual(await archive.getSession(tenantId, s));
      expect(first.summary).toBeNull();
      expect(first.memories).toEqual([]);
      expect(first.userVersion).toEqual({ messagesVersion: expect.any(Number), forgotVersion: expect.any(Number), epoch: expect.any(String) });

      const mem = (id: string, priority: number, expiresAt: string | null = null) => ({
        tenantId, id, userId: u, kind: "decision" as const, content: `decision ${id}`, priority, tokens: 2, sourceMessageId: ids[0]!, expiresAt,
      });
      await archive.saveMemories([mem(uid("d"), 3), mem(uid("d"), 9), mem(uid("d"), 5), mem(uid("d"), 8, new Date(Date.now() - 60_000).toISOString())]);
      await archive.saveSummary({ tenantId, sessionId: s, userId: u, upToSeq: 1, content: "so far", tokens: 2 }, null);
      await archive.saveSummary({ tenantId, sessionId: s, userId: u, upToSeq: 2, content: "later", tokens: 1 }, 1);
      await ingest(s, u, ids.slice(2).map((id, i) => msg(id, `message ${i + 2}`)));

      // The same answers as the calls one by one; the memories' order and limit as listMemories'.
      const now = await read(s, u, 2);
      expect(now.session).toEqual(await archive.getSession(tenantId, s));
      expect(now.session?.lastSeq).toBe(4);
      expect(now.summary).toEqual(await archive.latestSummary(tenantId, s));
      expect(now.summary).toMatchObject({ content: "later", upToSeq: 2 });
      expect(now.memories).toEqual(await archive.listMemories(tenantId, u, { limit: 2 }));
      expect(now.memories.map((m) => m.priority)).toEqual([9, 5]);
      expect((await read(s, u, 10)).memories).toEqual(await archive.listMemories(tenantId, u, { limit: 10 }));
      // An ingest moves the user's version on; the user's row (its epoch) stays.
      expect(now.userVersion!.messagesVersion).toBeGreaterThan(first.userVersion!.messagesVersion);
      expect(now.userVersion!.epoch).toBe(first.userVersion!.epoch);

      // The session says whose memories and version are read: not the user a caller names.
      const other = await read(s, uid("other"));
      expect(other.session?.userId).toBe(u);
      expect(other.memories).toEqual(await archive.listMemories(tenantId, u, { limit: 10 }));
      expect(other.userVersion).toEqual((await read(s, u)).userVersion);
      // No session: the named user's memories and version.
      const elsewhere = await read(uid("s"), u, 10);
      expect(elsewhere.session).toBeNull();
      expect(elsewhere.summary).toBeNull();
      expect(elsewhere.memories).toEqual(await archive.listMemories(tenantId, u, { limit: 10 }));
      expect(elsewhere.userVersion).toEqual(now.userVersion);

      // Forgetting a message moves the forget version up to the messages version.
      await archive.forget({ tenantId, scope: "message", id: ids[3]! });
      const after = await read(s, u);
      expect(after.userVersion!.forgotVersion).toBeGreaterThan(now.userVersion!.forgotVersion);
      expect(after.userVersion!.forgotVersion).toBe(after.userVersion!.messagesVersion);
      // Forgetting the user removes the row: no version, no memories, no session.
      await archive.forget({ tenantId, scope: "user", id: u });
      expect(await read(s, u)).toEqual({ session: null, summary: null, memories: [], userVersion: null, graphVersion: { version: 0, reset: 0 } });
    });

    maybe("reads a user's versions in one call, as a context call reads them")("reads a user's versions in one call, as a context call reads them", async () => {
      if (!archive.readVersions) return; // optional, as readContext is
      const versions = (userId: string) => archive.readVersions!(tenantId, userId);
      const asContext = async (userId: string) => {
        const { userVersion, graphVersion } = await archive.readContext!(tenantId, uid("s"), { userId, memoryLimit: 0 });
        return { userVersion, graphVersion };
      };
      const u = uid("u");
      const s = uid("s");
      // No such user: no version, the graph at 0.
      expect(await versions(u)).toEqual({ userVersion: null, graphVersion: { version: 0, reset: 0 } });
      const ids = [uid("m"), uid("m")];
      await ingest(s, u, [msg(ids[0]!, "message 0")]);
      const first = await versions(u);
      expect(first.userVersion).toEqual({ messagesVersion: expect.any(Number), forgotVersion: expect.any(Number), epoch: expect.any(String) });
      expect(first).toEqual(await asContext(u));
      // An ingest moves it on, a forget moves the forget version up to it, a forgotten user has none.
      await ingest(s, u, [msg(ids[1]!, "message 1")]);
      const second = await versions(u);
      expect(second.userVersion!.messagesVersion).toBeGreaterThan(first.userVersion!.messagesVersion);
      expect(second).toEqual(await asContext(u));
      await archive.forget({ tenantId, scope: "message", id: ids[1]! });
      const forgot = await versions(u);
      expect(forgot.userVersion!.forgotVersion).toBe(forgot.userVersion!.messagesVersion);
      expect(forgot).toEqual(await asContext(u));
      // Another user's versions are theirs.
      expect((await versions(uid("u"))).userVersion).toBeNull();
      await archive.forget({ tenantId, scope: "user", id: u });
      expect(await versions(u)).toEqual({ userVersion: null, graphVersion: { version: 0, reset: 0 } });
    });

    maybe("finds sessions due for a summary")("finds sessions due for a summary", async () => {
      const t = await newTenant();
      const [long, short] = [uid("s"), uid("s")];
      const put = (s: string, n: number) =>
        archive.ingest({ tenantId: t, sessionId: s, userId: "u", messages: Array.from({ length: n }, (_, i) => msg(uid("m"), `m${i}`)), jobsFor: () => [] });
      await put(long, 12);
      await put(short, 6);
      const due = async (minNew: number) =>
        (await archive.sessionsDueForSummary({ recentWindow: 4, minNew, limit: 100_000 })).filter((d) => d.tenantId === t).map((d) => d.sessionId);
      const count = (minNew: number) => archive.countSessionsDueForSummary(t, { recentWindow: 4, minNew });
      // long: 12 − 4 = 8 messages out of the window; short: 2.
      expect(await due(5)).toEqual([long]);
      expect(await count(5)).toBe(1);
      expect((await due(2)).sort()).toEqual([long, short].sort());
      expect(await count(2)).toBe(2);
      expect(await archive.countSessionsDueForSummary(await newTenant(), { recentWindow: 4, minNew: 2 })).toBe(0);
      await archive.saveSummary({ tenantId: t, sessionId: long, userId: "u", upToSeq: 8, content: "c", tokens: 1 }, null);
      expect(await due(5)).toEqual([]);
      await put(long, 5); // 17 − 4 − 8 = 5 new
      expect(await due(5)).toEqual([long]);
      // A summarize job waiting for the session holds it back: no second job is queued.
      const [job] = await archive.enqueueJobs([{ tenantId: t, type: "summarize", payload: { sessionId: long } }]);
      expect(job).toMatchObject({ tenantId: t, type: "summarize", payload: { sessionId: long }, status: "pending", attempts: 0 });
      expect(await due(5)).toEqual([]);
      expect(await count(5)).toBe(0);
      await archive.markDispatched([job!.id]);
      expect(await due(5)).toEqual([]);
      expect(await count(5)).toBe(0);
      await archive.completeJobs([job!.id]);
      expect(await due(5)).toEqual([long]);
      expect(await count(5)).toBe(1);
      // Summarized again, then its summaries deleted: due once more, from the start.
      await archive.saveSummary({ tenantId: t, sessionId: long, userId: "u", upToSeq: 13, content: "c2", tokens: 1 }, 8);
      expect(await due(5)).toEqual([]);
      await archive.deleteSummaries(t, long);
      expect(await due(5)).toEqual([long]);
      // markSummarized raises what the search goes by, and never lowers it.
      await archive.markSummarized(t, long, 13);
      expect(await due(5)).toEqual([]);
      await archive.markSummarized(t, long, 0);
      expect(await due(5)).toEqual([]);
      await archive.deleteSummaries(t, long);
      expect(await due(5)).toEqual([long]);
      // A forgotten message takes its session's summaries with it: due again too.
      await archive.saveSummary({ tenantId: t, sessionId: long, userId: "u", upToSeq: 13, content: "c3", tokens: 1 }, null);
      await archive.saveSummary({ tenantId: t, sessionId: short, userId: "u", upToSeq: 2, content: "c4", tokens: 1 }, null);
      expect(await due(2)).toEqual([]);
      const [first] = await archive.listMessages(t, long, { limit: 1 });
      await archive.forget({ tenantId: t, scope: "message", id: first!.id });
      expect(await due(5)).toEqual([long]);
      expect(await count(2)).toBe(1);
      expect(await archive.enqueueJobs([])).toEqual([]);
    });

    maybe("sweeps memories past their expiry")("sweeps memories past their expiry", async () => {
      const u = uid("u");
      const s = uid("s");
      const src = uid("m");
      await ingest(s, u, [msg(src, "remind me to call Dana")]);
      const mem = (id: string, expiresAt: string | null) => ({
        tenantId, id, userId: u, kind: "task" as const, content: id, priority: 5, tokens: 1, sourceMessageId: src, expiresAt,
      });
      const past = new Date(Date.now() - 60_000).toISOString();
      const future = new Date(Date.now() + 3_600_000).toISOString();
      const [old1, old2, later, never] = [uid("old"), uid("old"), uid("later"), uid("never")];
      await archive.saveMemories([mem(old1, past), mem(old2, past), mem(later, future), mem(never, null)]);
      expect((await archive.listMemories(tenantId, u, { limit: 10 })).map((m) => m.id).sort()).toEqual([later, never].sort());
      const swept: { tenantId: string; id: string }[] = [];
      for (;;) {
        const batch = await archive.sweepExpired(1);
        expect(batch.length).toBeLessThanOrEqual(1);
        if (!batch.length) break;
        swept.push(...batch);
      }
      expect(swept.filter((x) => x.tenantId === tenantId).map((x) => x.id).sort()).toEqual([old1, old2].sort());
      // What the sweep left is what listMemories shows; the future one keeps its expiry.
      const left = await archive.listMemories(tenantId, u, { limit: 10 });
      expect(left.map((m) => m.id).sort()).toEqual([later, never].sort());
      expect(left.find((m) => m.id === later)?.expiresAt).toBe(future);
    });

    maybe("never leases more than asked, and releases running jobs on request")("never leases more than asked, and releases running jobs on request", async () => {
      const t = await newTenant();
      await leaseOtherJobs();
      await archive.ingest({
        tenantId: t,
        sessionId: uid("s"),
        userId: "u",
        messages: Array.from({ length: 5 }, (_, i) => msg(uid("m"), `m${i}`)),
        jobsFor: (ms) => ms.map((m) => ({ type: "embed", payload: { messageIds: [m.id] } })),
      });
      const mine = async (limit: number) => (await archive.claimJobs({ limit, leaseMs: 60_000 })).filter((j) => j.tenantId === t);
      const first = await archive.claimJobs({ limit: 2, leaseMs: 60_000 });
      expect(first.length).toBeLessThanOrEqual(2);
      await mine(100); // lease the rest of this tenant's jobs
      expect((await archive.queueStats(t)).inFlight).toBe(5);
      expect(await archive.releaseRunningJobs()).toBeGreaterThanOrEqual(5);
      expect(await archive.queueStats(t)).toMatchObject({ pending: 5, inFlight: 0 });
      expect((await mine(100)).every((j) => j.attempts === 2)).toBe(true);
      await archive.releaseRunningJobs();
    });

    maybe("answers ping")("answers ping", async () => {
      await expect(archive.ping()).resolves.toBeUndefined();
      expect(archive.adapter).toBeTruthy();
    });
  });
}
