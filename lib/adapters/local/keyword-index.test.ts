import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import { stampingTurns, turnsUntil } from "../../../test/fixtures/turns.ts";
import type { Archive } from "../../core/ports.ts";
import type { SqlClient } from "../sql/client.ts";
import { createSqlArchive } from "../sql/archive.ts";
import { createLocalKeywordIndex, withKeywordIndex } from "./keyword-index.ts";

let sql: SqlClient;
let raw: Archive;
beforeAll(async () => {
  sql = await sharedPglite();
  raw = createSqlArchive({ sql });
});
afterAll(async () => {
  await closeSharedPglite();
});

async function tenant(): Promise<string> {
  const id = uid("t");
  await raw.ensureTenant({ id, name: id });
  return id;
}

function ingest(archive: Archive, tenantId: string, userId: string, sessionId: string, contents: string[]) {
  return archive.ingest({
    tenantId,
    sessionId,
    userId,
    messages: contents.map((content) => ({ id: uid("m"), role: "user", name: "Ann", content, createdAt: new Date().toISOString(), metadata: {}, tokens: 3 })),
    jobsFor: () => [],
  });
}

const search = async (index: ReturnType<typeof createLocalKeywordIndex>, tenantId: string, userId: string, word: string) =>
  (await index.corpus(tenantId, userId)).search([word], { limit: 10 }).length;

describe("local keyword index", () => {
  it("loads a user's turns from the archive on first use, and only that user's", async () => {
    const t = await tenant();
    await ingest(raw, t, "ann", uid("s"), ["my violin teacher", "pizza tonight"]);
    await ingest(raw, t, "bob", uid("s"), ["violin too"]);
    const index = createLocalKeywordIndex({ sql });
    const corpus = await index.corpus(t, "ann");
    expect(corpus.size).toBe(2);
    expect(await search(index, t, "ann", "violin")).toBe(1);
    expect(await search(index, t, "bob", "violin")).toBe(1);
  });

  it("sees what a wrapped archive ingests after the load, and forgets what it forgets", async () => {
    const t = await tenant();
    const index = createLocalKeywordIndex({ sql });
    const archive = withKeywordIndex(raw, index);
    const s1 = uid("s");
    const s2 = uid("s");
    const first = await ingest(archive, t, "ann", s1, ["the garden shed"]);
    expect(await search(index, t, "ann", "garden")).toBe(1);
    await ingest(archive, t, "ann", s1, ["a garden party"]);
    await ingest(archive, t, "ann", s2, ["garden gnomes"]);
    expect(await search(index, t, "ann", "garden")).toBe(3);

    await archive.forget({ tenantId: t, scope: "message", id: first.messages[0]!.id });
    expect(await search(index, t, "ann", "garden")).toBe(2);
    await archive.forget({ tenantId: t, scope: "session", id: s2 });
    expect(await search(index, t, "ann", "garden")).toBe(1);
    await archive.forget({ tenantId: t, scope: "user", id: "ann" });
    expect(await search(index, t, "ann", "garden")).toBe(0);
  });

  it("replays a write that lands while the user's turns are loading", async () => {
    const t = await tenant();
    const index = createLocalKeywordIndex({ sql });
    const archive = withKeywordIndex(raw, index);
    await ingest(raw, t, "ann", uid("s"), ["kayak trip"]);
    const loading = index.corpus(t, "ann");
    await ingest(archive, t, "ann", uid("s"), ["kayak lessons"]);
    expect((await loading).search(["kayak"], { limit: 10 })).toHaveLength(2);
  });

  it("two users' loads at once send their pages one a turn of the event loop", async () => {
    const t = await tenant();
    for (const user of ["ann", "bob"]) await ingest(raw, t, user, uid("s"), Array.from({ length: 60 }, (_, i) => `canoe trip ${i}`));
    const stamped = stampingTurns(sql, (text) => text.includes("json_agg(json_build_object("));
    const index = createLocalKeywordIndex({ sql: stamped.client, loadPageRows: 7 });
    const [ann, bob] = await Promise.all([index.corpus(t, "ann"), index.corpus(t, "bob")]);
    stamped.stop();
    expect([ann.size, bob.size]).toEqual([60, 60]);
    expect(stamped.turns.length).toBeGreaterThanOrEqual(18);
    expect(new Set(stamped.turns).size).toBe(stamped.turns.length);
  });

  it("builds a loading user's corpus in slices, with turns of the event loop between them, and replays writes that land on those turns", async () => {
    const t = await tenant();
    const s = uid("s");
    const first = await ingest(raw, t, "ann", s, Array.from({ length: 300 }, (_, i) => `kayak trip number ${i}`));
    // A turn after every turn loaded (0 ms slices), in pages of 7 turns.
    const index = createLocalKeywordIndex({ sql, loadSliceMs: 0, loadPageRows: 7 });
    const archive = withKeywordIndex(raw, index);
    const { value: corpus, turns } = await turnsUntil(index.corpus(t, "ann"), async (turn) => {
      // On the load's first turns: a new turn, and one of the loaded ones forgotten.
      if (turn === 1) await ingest(archive, t, "ann", s, ["kayak river day"]);
      if (turn === 2) await archive.forget({ tenantId: t, scope: "message", id: first.messages[0]!.id });
    });
    // The selects answer through promises alone, so the turns are the build's.
    expect(turns).toBeGreaterThan(100);
    expect(corpus.size).toBe(300);
    expect(corpus.search(["river"], { limit: 10 })).toHaveLength(1);
    expect(corpus.search(["kayak"], { limit: 1000 })).toHaveLength(300);
    const fresh = await createLocalKeywordIndex({ sql }).corpus(t, "ann");
    // As a fresh load of the same rows answers (ids and scores: the hits' turns are the corpus' own).
    const ranked = (c: typeof corpus) => c.search(["kayak", "trip", "river"], { limit: 1000 }).map(({ id, score }) => ({ id, score }));
    expect(ranked(corpus)).toEqual(ranked(fresh));
  });

  it("answers the same while and after it warms a loaded user's common words between requests", async () => {
    const t = await tenant();
    const index = createLocalKeywordIndex({ sql });
    const archive = withKeywordIndex(raw, index);
    const lines = Array.from({ length: 400 }, (_, i) => `we talked about the garden and the ${i % 2 ? "roses" : "tomatoes"} again, note ${i}`);
    await ingest(archive, t, "ann", uid("s"), lines);
    const query = { docs: 3, terms: 5, weight: 0.5, limit: 30 };
    const corpus = await index.corpus(t, "ann");
    // A search right after the load, before the warming's first slice has run, and a write
    // that lands around it.
    expect(corpus.searchExpanded(["garden", "rose"], query).hits).toHaveLength(30);
    await ingest(archive, t, "ann", uid("s"), ["the roses in the garden bloomed", "garden roses, garden roses"]);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // The warming is done: a walk finds no common word left to pack (one would end the call
    // with the walk unfinished).
    expect(corpus.packSome(1, 32)).toBe(true);
    const after = corpus.searchExpanded(["garden", "rose"], query);
    expect(after.hits.map((h) => h.turn.id)).toContain(corpus.searchExpanded(["bloom"], query).hits[0]!.id);
    expect(after).toEqual((await createLocalKeywordIndex({ sql }).corpus(t, "ann")).searchExpanded(["garden", "rose"], query));
  });

  it("warms a loaded user through its scheduler, one slice at a time", async () => {
    const t = await tenant();
    const held: (() => void)[] = [];
    const index = createLocalKeywordIndex({ sql, scheduleSlice: (run) => void held.push(run) });
    const archive = withKeywordIndex(raw, index);
    const lines = Array.from({ length: 300 }, (_, i) => `the garden, the ${i % 2 ? "roses" : "tomatoes"} and the shed again, note ${i}`);
    await ingest(archive, t, "ann", uid("s"), lines);
    const corpus = await index.corpus(t, "ann");
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // Nothing ran on its own: the first slice is held.
    expect(held).toHaveLength(1);
    while (held.length > 0) held.shift()!();
    // Warmed: a walk finds no common word left to pack.
    expect(corpus.packSome(1, 32)).toBe(true);
  });

  it("evicts whole users past its budget and reloads them on the next use", async () => {
    const t = await tenant();
    await ingest(raw, t, "ann", uid("s"), ["one", "two", "three"]);
    await ingest(raw, t, "bob", uid("s"), ["four", "five", "six"]);
    const index = createLocalKeywordIndex({ sql, maxTurns: 4 });
    const ann = await index.corpus(t, "ann");
    // Bob, as large as Ann, would push her out: he is loaded for his search and not held (two
    // users used in turn would otherwise swap at every use; evict.ts).
    const bob = await index.corpus(t, "bob");
    expect(bob.size).toBe(3);
    expect(await index.corpus(t, "ann")).toBe(ann);
    expect(await index.corpus(t, "bob")).not.toBe(bob);
    // Used twice with Ann idle between, his loads have cost more than hers would: Bob is held,
    // and Ann, least recently used, goes.
    const held = await index.corpus(t, "bob");
    expect(await index.corpus(t, "bob")).toBe(held);
    const again = await index.corpus(t, "ann");
    expect(again).not.toBe(ann);
    expect(again.size).toBe(3);
  });

  it("holds each message whole, as stored, for loaded and newly ingested turns", async () => {
    const t = await tenant();
    const s = uid("s");
    const before = await ingest(raw, t, "ann", s, ["the old turn"]);
    // A loaded turn with every field set out of the ordinary: no name, nested metadata, text a
    // JSON page must escape.
    const odd = await raw.ingest({
      tenantId: t,
      sessionId: s,
      userId: "ann",
      messages: [{ id: uid("m"), role: "assistant", name: null, content: 'a "quoted"\nline\t\\ café 😀 \u2028', createdAt: "2026-03-04T05:06:07.891Z", metadata: { tool: { args: [1, "x", null], ok: true }, n: 1.5 }, tokens: 9 }],
      jobsFor: () => [],
    });
    const index = createLocalKeywordIndex({ sql });
    const archive = withKeywordIndex(raw, index);
    const unknown = uid("m");
    // Not loaded yet: nothing is held, so search reads the archive.
    expect(index.messages(t, "ann", [before.messages[0]!.id]).size).toBe(0);
    await index.corpus(t, "ann");
    const after = await ingest(archive, t, "ann", s, ["the new turn"]);
    const ids = [before.messages[0]!.id, odd.messages[0]!.id, after.messages[0]!.id];
    const held = index.messages(t, "ann", [...ids, unknown]);
    expect([...held.keys()].sort()).toEqual([...ids].sort());
    // Exactly what the archive answers for the same ids.
    const stored = await raw.getMessages(t, ids);
    for (const m of stored) expect(held.get(m.id)).toEqual(m);
    // Another user's view holds none of them.
    expect(index.messages(t, "bob", ids).size).toBe(0);
  });

  it("never hands out a forgotten message, session or user", async () => {
    const t = await tenant();
    const index = createLocalKeywordIndex({ sql });
    const archive = withKeywordIndex(raw, index);
    const s1 = uid("s");
    const s2 = uid("s");
    const a = await ingest(archive, t, "ann", s1, ["first", "second"]);
    const b = await ingest(archive, t, "ann", s2, ["third"]);
    await index.corpus(t, "ann");
    const all = [...a.messages, ...b.messages].map((m) => m.id);
    expect(index.messages(t, "ann", all).size).toBe(3);

    await archive.forget({ tenantId: t, scope: "message", id: all[0]! });
    expect([...index.messages(t, "ann", all).keys()].sort()).toEqual([all[1]!, all[2]!].sort());
    await archive.forget({ tenantId: t, scope: "session", id: s2 });
    expect([...index.messages(t, "ann", all).keys()]).toEqual([all[1]]);
    await archive.forget({ tenantId: t, scope: "user", id: "ann" });
    expect(index.messages(t, "ann", all).size).toBe(0);
    // Loaded again after the forget, the user's turns are gone from what it reads too.
    await index.corpus(t, "ann");
    expect(index.messages(t, "ann", all).size).toBe(0);
  });

  it("counts held text in its budget, evicting whole users past it", async () => {
    const t = await tenant();
    const ann = await ingest(raw, t, "ann", uid("s"), ["x".repeat(60)]);
    const bob = await ingest(raw, t, "bob", uid("s"), ["y".repeat(60)]);
    const index = createLocalKeywordIndex({ sql, maxChars: 100 });
    const held = await index.corpus(t, "ann");
    const id = ann.messages[0]!.id;
    expect(index.messages(t, "ann", [id]).size).toBe(1);
    // Ann's 60 characters and Bob's 60 exceed 100: Bob is loaded for his first search and not
    // held; at his second, with Ann idle between, his loads have cost more than hers would, so
    // he is held and Ann, used least recently, goes.
    await index.corpus(t, "bob");
    expect(index.messages(t, "ann", [id]).size).toBe(1);
    await index.corpus(t, "bob");
    expect(index.messages(t, "ann", [id]).size).toBe(0);
    // Ann's next search loads her for it, and she is not held; the one after holds her again.
    expect(await index.corpus(t, "ann")).not.toBe(held);
    expect(index.messages(t, "ann", [id]).size).toBe(0);
    await index.corpus(t, "ann");
    expect(index.messages(t, "ann", [id]).size).toBe(1);
    // Bob, used least recently, went.
    expect(index.messages(t, "bob", [bob.messages[0]!.id]).size).toBe(0);
  });

  it("shared: searches waiting behind a version read share the next one, which sees what was stored before any of them", async () => {
    const t = await tenant();
    await ingest(raw, t, "ann", uid("s"), ["kayak trip"]);
    // Counts the version reads, and holds the answer of the first search's row select until released.
    let reads = 0;
    let selects = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const counting: SqlClient = {
      ...sql,
      async query<T>(text: string, params?: unknown[]) {
        if (text.startsWith("select messages_version")) reads++;
        const rows = await sql.query<T>(text, params);
        if (text.startsWith("select tenant_id, id, session_id") && ++selects === 1) await held;
        return rows;
      },
    };
    const index = createLocalKeywordIndex({ sql: counting, shared: true });
    const first = index.corpus(t, "ann");
    while (selects === 0) await new Promise((r) => setTimeout(r, 5));
    // Another process stores a turn after the first search read the version and the rows;
    // then five searches arrive: they must see it.
    await ingest(raw, t, "ann", uid("s"), ["kayak lessons"]);
    const later = [1, 2, 3, 4, 5].map(() => index.corpus(t, "ann"));
    release();
    expect((await first).search(["kayak"], { limit: 10 })).toHaveLength(1);
    for (const corpus of await Promise.all(later)) expect(corpus.search(["kayak"], { limit: 10 })).toHaveLength(2);
    expect(reads).toBe(2);
    // A search after that one began reads the version again.
    await ingest(raw, t, "ann", uid("s"), ["kayak race"]);
    expect((await index.corpus(t, "ann")).search(["kayak"], { limit: 10 })).toHaveLength(3);
    expect(reads).toBe(3);
  });

  it("shared: a whole load builds in slices, with turns of the event loop between them", async () => {
    const t = await tenant();
    await ingest(raw, t, "ann", uid("s"), Array.from({ length: 300 }, (_, i) => `kayak trip number ${i}`));
    // A turn after every turn added (0 ms slices).
    const index = createLocalKeywordIndex({ sql, shared: true, loadSliceMs: 0 });
    const { value: loaded, turns } = await turnsUntil(index.corpus(t, "ann"), async (turn) => {
      // Another process's write while it builds: the next call's version check reads it.
      if (turn === 2) await ingest(raw, t, "ann", uid("s"), ["kayak river day"]);
    });
    expect(turns).toBeGreaterThan(100);
    expect(loaded.search(["kayak"], { limit: 1000 }).length).toBeGreaterThanOrEqual(300);
    const corpus = await index.corpus(t, "ann");
    expect(corpus.search(["kayak"], { limit: 1000 })).toHaveLength(301);
    expect(corpus.search(["river"], { limit: 10 })).toHaveLength(1);
  });

  it("shared: after this process's own write the next call reads no rows, and after another's it reads what it lacks", async () => {
    const t = await tenant();
    let selects = 0;
    const counting: SqlClient = {
      ...sql,
      async query<T>(text: string, params?: unknown[]) {
        if (text.startsWith("select tenant_id, id, session_id")) selects++;
        return sql.query<T>(text, params);
      },
    };
    const index = createLocalKeywordIndex({ sql: counting, shared: true });
    const wrapped = withKeywordIndex(raw, index);
    const write = (archive: Archive, content: string) =>
      archive.ingest({
        tenantId: t,
        sessionId: "s1",
        userId: "ann",
        messages: [{ id: uid("m"), role: "user", name: "Ann", content, createdAt: new Date().toISOString(), metadata: {}, tokens: 3 }],
        jobsFor: (ms) => [{ type: "embed", payload: { messageIds: ms.map((m) => m.id) } }],
      });
    // The version a context call reads with its session (Archive.readContext).
    const version = async () => (await raw.readContext!(t, "s1", { userId: "ann", memoryLimit: 0 })).userVersion;
    await write(raw, "kayak trip");
    expect((await index.corpus(t, "ann", await version())).search(["kayak"], { limit: 10 })).toHaveLength(1);
    expect(selects).toBe(1);

    // This process's write: the index adds it and holds the version it left.
    const own = await write(wrapped, "kayak lessons");
    expect(own.userVersion).toEqual(await version());
    expect((await index.corpus(t, "ann", await version())).search(["kayak"], { limit: 10 })).toHaveLength(2);
    expect(selects).toBe(1);

    // Another process writes, then this one: the held version is two behind, so the next call reads the rows above it.
    await write(raw, "kayak race");
    await write(wrapped, "kayak club");
    expect((await index.corpus(t, "ann", await version())).search(["kayak"], { limit: 10 })).toHaveLength(4);
    expect(selects).toBe(2);
  });
});
