import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import type { Archive } from "../../core/ports.ts";
import type { Memory } from "../../core/types.ts";
import type { SqlClient } from "../sql/client.ts";
import { createSqlArchive } from "../sql/archive.ts";
import { withReadCache } from "./read-cache.ts";

let sql: SqlClient;
let raw: Archive;
beforeAll(async () => {
  sql = await sharedPglite();
  raw = createSqlArchive({ sql });
});
afterAll(async () => {
  await closeSharedPglite();
});

/** The real archive, counting the reads that reach it and able to hold them until released. */
function counted() {
  const reads = { summary: 0, memories: 0, session: 0 };
  let gate: Promise<void> | null = null;
  const archive = Object.assign(Object.create(raw) as Archive, {
    async latestSummary(tenantId: string, sessionId: string) {
      reads.summary++;
      const out = await raw.latestSummary(tenantId, sessionId);
      if (gate) await gate;
      return out;
    },
    async getSession(tenantId: string, sessionId: string) {
      reads.session++;
      const out = await raw.getSession(tenantId, sessionId);
      if (gate) await gate;
      return out;
    },
    async listMemories(...args: Parameters<Archive["listMemories"]>) {
      reads.memories++;
      const out = await raw.listMemories(...args);
      if (gate) await gate;
      return out;
    },
  });
  const hold = () => {
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    return () => {
      gate = null;
      release();
    };
  };
  return { archive, reads, hold };
}

async function session(archive: Archive, contents: string[]) {
  const tenantId = uid("t");
  await raw.ensureTenant({ id: tenantId, name: tenantId });
  const sessionId = uid("s");
  const userId = uid("u");
  const { inserted } = await archive.ingest({
    tenantId,
    sessionId,
    userId,
    messages: contents.map((content) => ({ id: uid("m"), role: "user", name: "Ann", content, createdAt: new Date().toISOString(), metadata: {}, tokens: 3 })),
    jobsFor: () => [],
  });
  return { tenantId, sessionId, userId, ids: inserted.map((m) => m.id) };
}

const memory = (s: { tenantId: string; userId: string }, id: string, sourceMessageId: string | null, expiresAt: string | null = null) =>
  ({ tenantId: s.tenantId, id, userId: s.userId, kind: "task", content: `task ${id}`, priority: 5, tokens: 3, sourceMessageId, expiresAt }) as Omit<Memory, "createdAt">;

describe("embedded read cache", () => {
  it("answers a repeated summary or memory read from memory, with what the archive answered", async () => {
    const { archive, reads } = counted();
    const cache = withReadCache(archive);
    const s = await session(cache, ["plan the move"]);
    await cache.saveSummary({ tenantId: s.tenantId, sessionId: s.sessionId, userId: s.userId, content: "moving", upToSeq: 1, tokens: 1 }, null);
    await cache.saveMemories([memory(s, uid("mem"), s.ids[0]!)]);

    const summary = await cache.latestSummary(s.tenantId, s.sessionId);
    const list = await cache.listMemories(s.tenantId, s.userId, { limit: 10 });
    expect(summary).toEqual(await raw.latestSummary(s.tenantId, s.sessionId));
    expect(list).toEqual(await raw.listMemories(s.tenantId, s.userId, { limit: 10 }));
    expect(await cache.latestSummary(s.tenantId, s.sessionId)).toEqual(summary);
    expect(await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).toEqual(list);
    expect(reads).toEqual({ summary: 1, memories: 1, session: 0 });
    // Another limit or kind filter is another read.
    expect(await cache.listMemories(s.tenantId, s.userId, { limit: 10, kinds: ["decision"] })).toEqual([]);
    expect(reads.memories).toBe(2);
  });

  it("reads again after every write that can change a summary or a memory", async () => {
    const { archive, reads } = counted();
    const cache = withReadCache(archive);
    const s = await session(cache, ["one", "two", "three"]);
    const summary = (upToSeq: number, content: string) => ({ tenantId: s.tenantId, sessionId: s.sessionId, userId: s.userId, content, upToSeq, tokens: 1 });
    const memoryIds = async () => (await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).map((m) => m.id).sort();

    expect(await cache.latestSummary(s.tenantId, s.sessionId)).toBeNull();
    await cache.saveSummary(summary(2, "first two"), null);
    expect((await cache.latestSummary(s.tenantId, s.sessionId))?.content).toBe("first two");
    await cache.deleteSummaries(s.tenantId, s.sessionId);
    expect(await cache.latestSummary(s.tenantId, s.sessionId)).toBeNull();

    const [a, b, c] = [uid("mem"), uid("mem"), uid("mem")];
    expect(await memoryIds()).toEqual([]);
    await cache.saveMemories([memory(s, a, s.ids[0]!), memory(s, b, s.ids[1]!), memory(s, c, s.ids[2]!)]);
    expect(await memoryIds()).toEqual([a, b, c].sort());
    await cache.deleteMemoriesFrom(s.tenantId, [s.ids[0]!]);
    expect(await memoryIds()).toEqual([b, c].sort());

    // A forget removes the message's memory and the session's summaries.
    await cache.saveSummary(summary(3, "all three"), null);
    expect((await cache.latestSummary(s.tenantId, s.sessionId))?.content).toBe("all three");
    await cache.forget({ tenantId: s.tenantId, scope: "message", id: s.ids[1]! });
    expect(await memoryIds()).toEqual([c]);
    expect(await cache.latestSummary(s.tenantId, s.sessionId)).toEqual(await raw.latestSummary(s.tenantId, s.sessionId));
    await cache.forget({ tenantId: s.tenantId, scope: "user", id: s.userId });
    expect(await memoryIds()).toEqual([]);
    expect(await cache.latestSummary(s.tenantId, s.sessionId)).toBeNull();
    expect(reads.summary).toBeGreaterThanOrEqual(6);
  });

  it("never hands out a memory past its expiry, and reads again after a sweep", async () => {
    const cache = withReadCache(raw);
    const s = await session(cache, ["renew the passport"]);
    const soon = uid("mem");
    const kept = uid("mem");
    // Long enough that the first read comes before the expiry on a loaded machine.
    const expiresAt = Date.now() + 1500;
    await cache.saveMemories([memory(s, soon, s.ids[0]!, new Date(expiresAt).toISOString()), memory(s, kept, null)]);
    expect((await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).map((m) => m.id).sort()).toEqual([soon, kept].sort());
    await new Promise((r) => setTimeout(r, expiresAt + 50 - Date.now()));
    expect((await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).map((m) => m.id)).toEqual([kept]);
    await cache.sweepExpired(1000);
    expect((await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).map((m) => m.id)).toEqual([kept]);
  });

  it("does not keep what a read saw when a write landed while it ran", async () => {
    const { archive, reads, hold } = counted();
    const cache = withReadCache(archive);
    const s = await session(cache, ["book the flight"]);
    const release = hold();
    // The read gets the archive's answer (no memory yet), then waits; a memory is saved meanwhile.
    const stale = cache.listMemories(s.tenantId, s.userId, { limit: 10 });
    while (reads.memories === 0) await new Promise((r) => setTimeout(r, 1));
    const id = uid("mem");
    await cache.saveMemories([memory(s, id, s.ids[0]!)]);
    release();
    expect(await stale).toEqual([]);
    // What that read saw was not kept: the next read sees the memory.
    expect((await cache.listMemories(s.tenantId, s.userId, { limit: 10 })).map((m) => m.id)).toEqual([id]);
  });

  it("keeps at most maxEntries answers, dropping the oldest", async () => {
    const { archive, reads } = counted();
    const cache = withReadCache(archive, { maxEntries: 2 });
    const sessions = [await session(cache, ["a"]), await session(cache, ["b"]), await session(cache, ["c"])];
    for (const s of sessions) await cache.latestSummary(s.tenantId, s.sessionId);
    expect(reads.summary).toBe(3);
    // The last two are held; the first was dropped and is read again.
    await cache.latestSummary(sessions[2]!.tenantId, sessions[2]!.sessionId);
    await cache.latestSummary(sessions[1]!.tenantId, sessions[1]!.sessionId);
    expect(reads.summary).toBe(3);
    await cache.latestSummary(sessions[0]!.tenantId, sessions[0]!.sessionId);
    expect(reads.summary).toBe(4);
  });

  it("answers a repeated session read from memory, keeps the session an ingest left, and reads again after a forget", async () => {
    const { archive, reads } = counted();
    const cache = withReadCache(archive);
    const s = await session(raw, ["one", "two"]);
    const first = await cache.getSession(s.tenantId, s.sessionId);
    expect(first).toEqual(await raw.getSession(s.tenantId, s.sessionId));
    expect(first?.lastSeq).toBe(2);
    expect(await cache.getSession(s.tenantId, s.sessionId)).toEqual(first);
    expect(reads.session).toBe(1);
    // A caller changing what it got does not change what the cache holds.
    first!.lastSeq = 99;
    expect((await cache.getSession(s.tenantId, s.sessionId))?.lastSeq).toBe(2);

    await cache.ingest({
      tenantId: s.tenantId,
      sessionId: s.sessionId,
      userId: s.userId,
      messages: [{ id: uid("m"), role: "user", name: "Ann", content: "three", createdAt: new Date().toISOString(), metadata: {}, tokens: 1 }],
      jobsFor: () => [],
    });
    // The ingest's own answer stands for the session: the same row the archive holds, without a read.
    expect(await cache.getSession(s.tenantId, s.sessionId)).toEqual(await raw.getSession(s.tenantId, s.sessionId));
    expect((await cache.getSession(s.tenantId, s.sessionId))?.lastSeq).toBe(3);
    expect(reads.session).toBe(1);

    // A session not there yet is cached as absent until an ingest creates it.
    const other = uid("s");
    expect(await cache.getSession(s.tenantId, other)).toBeNull();
    expect(await cache.getSession(s.tenantId, other)).toBeNull();
    expect(reads.session).toBe(2);
    await cache.ingest({
      tenantId: s.tenantId,
      sessionId: other,
      userId: s.userId,
      messages: [{ id: uid("m"), role: "user", name: "Ann", content: "new", createdAt: new Date().toISOString(), metadata: {}, tokens: 1 }],
      jobsFor: () => [],
    });
    expect(await cache.getSession(s.tenantId, other)).toEqual(await raw.getSession(s.tenantId, other));
    expect(reads.session).toBe(2);

    await cache.forget({ tenantId: s.tenantId, scope: "session", id: s.sessionId });
    expect(await cache.getSession(s.tenantId, s.sessionId)).toEqual(await raw.getSession(s.tenantId, s.sessionId));
    expect(await cache.getSession(s.tenantId, s.sessionId)).toBeNull();
  });

  it("does not keep a session read that an ingest overlapped", async () => {
    const { archive, reads, hold } = counted();
    const cache = withReadCache(archive);
    const s = await session(raw, ["one"]);
    const release = hold();
    const stale = cache.getSession(s.tenantId, s.sessionId);
    while (reads.session === 0) await new Promise((r) => setTimeout(r, 1));
    await cache.ingest({
      tenantId: s.tenantId,
      sessionId: s.sessionId,
      userId: s.userId,
      messages: [{ id: uid("m"), role: "user", name: "Ann", content: "two", createdAt: new Date().toISOString(), metadata: {}, tokens: 1 }],
      jobsFor: () => [],
    });
    release();
    expect((await stale)?.lastSeq).toBe(1);
    expect((await cache.getSession(s.tenantId, s.sessionId))?.lastSeq).toBe(2);
  });

  it("keeps no ingest's session while another ingest or a write overlaps it", async () => {
    const cache = withReadCache(raw);
    const s = await session(cache, ["one"]);
    const turn = (content: string) => ({
      tenantId: s.tenantId,
      sessionId: s.sessionId,
      userId: s.userId,
      messages: [{ id: uid("m"), role: "user" as const, name: "Ann", content, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 }],
      jobsFor: () => [],
    });
    // Two at once: whichever ends first must not leave its session behind for the other's.
    const answers = await Promise.all([cache.ingest(turn("two")), cache.ingest(turn("three"))]);
    expect(answers.map((a) => a.session.lastSeq).sort()).toEqual([2, 3]);
    expect(await cache.getSession(s.tenantId, s.sessionId)).toEqual(await raw.getSession(s.tenantId, s.sessionId));
    expect((await cache.getSession(s.tenantId, s.sessionId))?.lastSeq).toBe(3);
    // An ingest beside a forget of the session keeps nothing: the session is gone after both.
    await Promise.all([cache.ingest(turn("four")), cache.forget({ tenantId: s.tenantId, scope: "session", id: s.sessionId })]);
    expect(await cache.getSession(s.tenantId, s.sessionId)).toEqual(await raw.getSession(s.tenantId, s.sessionId));
  });
});
