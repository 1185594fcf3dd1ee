// The BM25 keyword index in the managed wiring: two instances (as two Lambdas would be), each
// with its own Neon client, archive and in-process index, over one Postgres through the Neon
// stand-in. What one instance writes or forgets, the other's index reflects on its next
// search, by the per-user version of migration 4: new rows as a delta into the corpus it
// holds, a forget or a user forgotten and re-created as a whole reload.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNeonSqlClient } from "../../lib/adapters/neon/client.ts";
import { createLocalKeywordIndex, withKeywordIndex } from "../../lib/adapters/local/keyword-index.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { terms } from "../../lib/core/text.ts";
import type { KeywordIndex } from "../../lib/core/keyword-index.ts";
import type { Archive } from "../../lib/core/ports.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";

const db = neonDatabase();
const T = "default";

interface Instance {
  sql: SqlClient;
  archive: Archive;
  index: KeywordIndex;
}

let a: Instance;
let b: Instance;

async function instance(): Promise<Instance> {
  const sql = createNeonSqlClient((await db.get()).config());
  const raw = createSqlArchive({ sql, ownsClient: true });
  await raw.migrate();
  const index = createLocalKeywordIndex({ sql, shared: true });
  return { sql, archive: withKeywordIndex(raw, index), index };
}

beforeAll(async () => {
  a = await instance();
  b = await instance();
  await a.archive.ensureTenant({ id: T, name: "Default tenant" });
});

afterAll(async () => {
  await Promise.all([a?.index.close(), b?.index.close()]);
  await Promise.all([a?.archive.close(), b?.archive.close()]);
  await db.close();
});

const say = (id: string, content: string) => ({ id, role: "user" as const, content, name: "Ann", createdAt: new Date().toISOString(), metadata: {}, tokens: 5 });

function ingest(on: Instance, userId: string, sessionId: string, messages: ReturnType<typeof say>[]) {
  return on.archive.ingest({ tenantId: T, sessionId, userId, messages, jobsFor: () => [] });
}

async function found(on: Instance, userId: string, query: string): Promise<string[]> {
  const corpus = await on.index.corpus(T, userId);
  return corpus.search(terms(query), { limit: 10 }).map((h) => h.id);
}

describe("keyword index shared by instances over one archive", () => {
  it("sees what another instance stored, loading only the new rows into the corpus it holds", async () => {
    const user = uid("u");
    const s = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "The violin lessons start on Monday")]);
    expect(await found(b, user, "violin")).toEqual([`${s}/1`]);
    const held = await b.index.corpus(T, user);

    await ingest(a, user, s, [say(`${s}/2`, "My cello teacher is called Rosa")]);
    expect(await found(b, user, "cello")).toEqual([`${s}/2`]);
    // The delta went into the same corpus: it was not reloaded whole.
    expect(await b.index.corpus(T, user)).toBe(held);
    expect(held.size).toBe(2);
    // And the writer's own index has both, from its writes.
    expect((await a.index.corpus(T, user)).size).toBe(2);
  });

  it("drops what another instance forgot", async () => {
    const user = uid("u");
    const s = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "The spare key is under the blue flowerpot"), say(`${s}/2`, "The blue car needs new tyres")]);
    expect((await found(b, user, "blue")).sort()).toEqual([`${s}/1`, `${s}/2`]);
    await a.archive.forget({ tenantId: T, scope: "message", id: `${s}/1` });
    expect(await found(b, user, "blue")).toEqual([`${s}/2`]);

    // A forgotten session goes too.
    const s2 = uid("s");
    await ingest(b, user, s2, [say(`${s2}/1`, "The blue whale is the largest animal")]);
    expect((await found(a, user, "blue")).sort()).toEqual([`${s}/2`, `${s2}/1`].sort());
    await b.archive.forget({ tenantId: T, scope: "session", id: s2 });
    expect(await found(a, user, "blue")).toEqual([`${s}/2`]);
  });

  it("hands out for hydration only what the archive holds as of its last version check", async () => {
    const user = uid("u");
    const s = uid("s");
    const s2 = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "The ferry leaves at noon"), say(`${s}/2`, "The ferry is late")]);
    await ingest(a, user, s2, [say(`${s2}/1`, "Ferry tickets are in the drawer")]);
    const ids = [`${s}/1`, `${s}/2`, `${s2}/1`, `${s}/3`];
    await b.index.corpus(T, user);
    expect([...b.index.messages(T, user, ids).keys()].sort()).toEqual(ids.slice(0, 3).sort());
    expect(b.index.messages(T, user, [`${s}/1`]).get(`${s}/1`)).toEqual((await a.archive.getMessages(T, [`${s}/1`]))[0]);

    // Another instance stores one, forgets one and forgets a session: after b's next check, b holds exactly the survivors.
    await ingest(a, user, s, [say(`${s}/3`, "Ferry cancelled")]);
    await a.archive.forget({ tenantId: T, scope: "message", id: `${s}/1` });
    await a.archive.forget({ tenantId: T, scope: "session", id: s2 });
    await b.index.corpus(T, user);
    expect([...b.index.messages(T, user, ids).keys()].sort()).toEqual([`${s}/2`, `${s}/3`]);

    await a.archive.forget({ tenantId: T, scope: "user", id: user });
    await b.index.corpus(T, user);
    expect(b.index.messages(T, user, ids).size).toBe(0);
  });

  it("starts afresh when another instance forgot the user and the user came back", async () => {
    const user = uid("u");
    await ingest(a, user, uid("s"), [say(uid("m"), "Old secret about the garden shed")]);
    expect(await found(b, user, "garden shed")).toHaveLength(1);
    await a.archive.forget({ tenantId: T, scope: "user", id: user });
    expect(await found(b, user, "garden shed")).toEqual([]);
    const back = uid("m");
    await ingest(a, user, uid("s"), [say(back, "New note about the garden")]);
    expect(await found(b, user, "garden shed")).toEqual([back]);
    expect((await b.index.corpus(T, user)).size).toBe(1);
  });

  it("holds every turn when both instances write one user at once", async () => {
    const user = uid("u");
    await ingest(a, user, uid("s"), [say(uid("m"), "warm up")]);
    await Promise.all([b.index.corpus(T, user), a.index.corpus(T, user)]);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      const on = i % 2 ? a : b;
      writes.push(ingest(on, user, uid("s"), [say(uid("m"), `parallel turn ${i} about kites`), say(uid("m"), `and a second line ${i}`)]));
      writes.push(on.index.corpus(T, user));
    }
    await Promise.all(writes);
    const [row] = await a.sql.query<{ n: number }>("select count(*)::int as n from messages where tenant_id = $1 and user_id = $2", [T, user]);
    expect((await a.index.corpus(T, user)).size).toBe(row!.n);
    expect((await b.index.corpus(T, user)).size).toBe(row!.n);
    expect(await found(b, user, "kites")).toHaveLength(8);
  });
});

describe("keyword index checked against a version the caller read (Archive.readContext)", () => {
  // A third instance whose index reads through a client that records its statements, to see
  // which round trips a check makes (the statements run on the real Neon client).
  let c: Instance & { statements: string[] };
  beforeAll(async () => {
    const sql = createNeonSqlClient((await db.get()).config());
    const statements: string[] = [];
    const recorded: SqlClient = Object.assign(Object.create(sql) as SqlClient, {
      query: (text: string, params?: unknown[]) => {
        statements.push(text);
        return sql.query(text, params);
      },
    });
    const raw = createSqlArchive({ sql, ownsClient: true });
    const index = createLocalKeywordIndex({ sql: recorded, shared: true });
    c = { sql, archive: withKeywordIndex(raw, index), index, statements };
  });
  afterAll(async () => {
    await c?.index.close();
    await c?.archive.close();
  });

  const version = async (userId: string) => (await c.archive.readContext!(T, uid("s"), { userId, memoryLimit: 1 })).userVersion;
  const foundAsOf = async (userId: string, query: string) => {
    const corpus = await c.index.corpus(T, userId, await version(userId));
    return corpus.search(terms(query), { limit: 10 }).map((h) => h.id);
  };

  it("reads nothing more when the corpus it holds is at that version, and only the new rows when behind", async () => {
    const user = uid("u");
    const s = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "The lighthouse keeper rows to town on Fridays")]);
    expect(await foundAsOf(user, "lighthouse")).toEqual([`${s}/1`]);
    const held = await c.index.corpus(T, user);

    c.statements.length = 0;
    expect(await foundAsOf(user, "lighthouse")).toEqual([`${s}/1`]);
    expect(c.statements).toEqual([]);
    // Without a version the index reads the user's version itself.
    await c.index.corpus(T, user);
    expect(c.statements).toHaveLength(1);
    expect(c.statements[0]).toMatch(/from users/);

    // Another instance stores a turn: the version read after it brings it in, as a delta.
    await ingest(b, user, s, [say(`${s}/2`, "The lighthouse lamp was replaced in May")]);
    c.statements.length = 0;
    expect((await foundAsOf(user, "lighthouse")).sort()).toEqual([`${s}/1`, `${s}/2`]);
    expect(c.statements).toHaveLength(1);
    expect(c.statements[0]).toMatch(/user_version > \$3/);
    expect(await c.index.corpus(T, user)).toBe(held);
    expect(held.size).toBe(2);
  });

  it("answers from a corpus newer than the version given, and never from one older", async () => {
    const user = uid("u");
    const s = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "Buy oat milk")]);
    const old = await version(user);
    await ingest(a, user, s, [say(`${s}/2`, "Buy oat flakes too")]);
    // The index catches up past `old`; asked as of `old` it keeps what it holds.
    expect((await found(c, user, "oat")).sort()).toEqual([`${s}/1`, `${s}/2`]);
    c.statements.length = 0;
    expect((await c.index.corpus(T, user, old)).size).toBe(2);
    expect(c.statements).toEqual([]);
  });

  it("drops what another instance forgot, and a forgotten user, by the version given", async () => {
    const user = uid("u");
    const s = uid("s");
    await ingest(a, user, s, [say(`${s}/1`, "The safe code is 4411"), say(`${s}/2`, "The safe is behind the painting")]);
    expect((await foundAsOf(user, "safe")).sort()).toEqual([`${s}/1`, `${s}/2`]);
    await b.archive.forget({ tenantId: T, scope: "message", id: `${s}/1` });
    expect(await foundAsOf(user, "safe")).toEqual([`${s}/2`]);
    expect([...c.index.messages(T, user, [`${s}/1`, `${s}/2`]).keys()]).toEqual([`${s}/2`]);

    await b.archive.forget({ tenantId: T, scope: "user", id: user });
    expect(await version(user)).toBeNull();
    expect(await foundAsOf(user, "safe")).toEqual([]);
    expect(c.index.messages(T, user, [`${s}/2`]).size).toBe(0);
    // The user comes back: a new row, a new epoch, a corpus of the new turns alone.
    await ingest(b, user, s, [say(`${s}/3`, "A new safe arrives on Monday")]);
    expect(await foundAsOf(user, "safe")).toEqual([`${s}/3`]);
  });
});
