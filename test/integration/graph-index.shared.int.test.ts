// The entity graph's in-process read index in the managed wiring: two instances (as an API
// Lambda and a worker Lambda would be), each with its own Neon client, SQL graph store and
// shared index, over one Postgres through the Neon stand-in. What one instance merges,
// deletes or forgets, the other's index answers on its next read, by the per-user graph
// version of migration 6: merges as a delta into the graph it holds, deletes as a whole
// reload. Answers are compared with the SQL store's on the same tables. Rows written before
// migration 6 (no stamp, no version row) are read too.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withGraphIndex, type IndexedGraphStore } from "../../lib/adapters/local/graph-index.ts";
import { createNeonSqlClient } from "../../lib/adapters/neon/client.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { createSqlGraphStore } from "../../lib/adapters/sql/graph-store.ts";
import { MIGRATIONS, migrate } from "../../lib/adapters/sql/migrations.ts";
import type { GraphMerge, GraphStore } from "../../lib/core/ports.ts";
import type { EntityType } from "../../lib/core/types.ts";
import { countingGraphStatements } from "../fixtures/graph-statements.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";

const db = neonDatabase();
const T = "default";

interface Instance {
  sql: SqlClient;
  graph: IndexedGraphStore;
  /** Statements the index sent, by kind: the version check, a catch-up, a whole load. */
  counts: { head: number; delta: number; whole: number };
}

let a: Instance;
let b: Instance;
/** The SQL store on a third client: what the tables answer. */
let reference: GraphStore;
let referenceSql: SqlClient;
const OLD_USER = "written-before-migration-6";

async function open(): Promise<Instance> {
  const inner = createNeonSqlClient((await db.get()).config());
  await createSqlArchive({ sql: inner }).migrate();
  const { client: sql, counts } = countingGraphStatements(inner);
  return { sql, counts, graph: withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true }) };
}

beforeAll(async () => {
  // An archive at migration 5 with graph rows in it, as a deployment before this change left it.
  referenceSql = createNeonSqlClient((await db.get()).config());
  expect(await migrate(referenceSql, MIGRATIONS.filter((m) => m.version <= 5))).toEqual([1, 2, 3, 4, 5]);
  await referenceSql.exec(`
    insert into entities (tenant_id, user_id, id, name, type, words, mentions) values
      ('${T}', '${OLD_USER}', 'person:ann', 'Ann', 'person', '{ann}', 2),
      ('${T}', '${OLD_USER}', 'place:oslo', 'Oslo', 'place', '{oslo}', 1);
    insert into mentions (tenant_id, user_id, entity_id, message_id, session_id) values
      ('${T}', '${OLD_USER}', 'person:ann', 'old-1', 's'), ('${T}', '${OLD_USER}', 'person:ann', 'old-2', 's'),
      ('${T}', '${OLD_USER}', 'place:oslo', 'old-2', 's');
    insert into relations (tenant_id, user_id, from_id, type, to_id, weight) values ('${T}', '${OLD_USER}', 'person:ann', 'visited', 'place:oslo', 1);
    insert into relation_evidence (tenant_id, user_id, from_id, type, to_id, message_id) values ('${T}', '${OLD_USER}', 'person:ann', 'visited', 'place:oslo', 'old-2');`);
  a = await open();
  b = await open();
  reference = createSqlGraphStore({ sql: referenceSql });
});

afterAll(async () => {
  await Promise.all([a?.graph.close(), b?.graph.close()]);
  await Promise.all([a?.sql.close(), b?.sql.close(), referenceSql?.close()]);
  await db.close();
});

const NAMES: [string, EntityType][] = [["Ann", "person"], ["Bilal", "person"], ["Lisbon", "place"], ["Kyoto", "place"], ["Acme", "organization"], ["Postgres", "topic"]];

function merges(userId: string, from: number, n: number): GraphMerge[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const x = NAMES[i % NAMES.length]!;
    const y = NAMES[(i * 7 + 3) % NAMES.length]!;
    return {
      tenantId: T,
      userId,
      sessionId: "s",
      messageId: `m${String(i).padStart(4, "0")}`,
      extraction: { entities: [{ name: x[0], type: x[1] }, { name: y[0], type: y[1] }], relations: x[0] === y[0] ? [] : [{ from: x[0], type: i % 2 ? "knows" : "visited", to: y[0] }] },
    };
  });
}

const TERMS = ["ann", "bilal", "lisbon", "kyoto", "acme", "postgres", "oslo"];

async function expectSame(on: Instance, userId: string): Promise<number> {
  let found = 0;
  for (const terms of [[], TERMS, ["ann"], ["kyoto", "acme"]]) {
    const q = { tenantId: T, userId, terms, limit: 100 };
    const facts = await reference.facts(q);
    expect(await on.graph.facts(q)).toEqual(facts);
    found += facts.length;
    if (terms.length) {
      const ranked = await reference.messagesMentioning(q);
      expect(await on.graph.messagesMentioning(q)).toEqual(ranked);
      found += ranked.length;
    }
  }
  return found;
}

describe("graph index shared by instances over one archive", () => {
  it("reads rows written before migration 6, and catches up on merges made after it", async () => {
    expect(await b.graph.facts({ tenantId: T, userId: OLD_USER, terms: ["oslo"], limit: 10 })).toEqual([
      { subject: "Ann", predicate: "visited", object: "Oslo", weight: 1, messageIds: ["old-2"] },
    ]);
    await b.graph.loads();
    expect(await b.graph.facts({ tenantId: T, userId: OLD_USER, terms: ["oslo"], limit: 10 })).toEqual([
      { subject: "Ann", predicate: "visited", object: "Oslo", weight: 1, messageIds: ["old-2"] },
    ]);
    await a.graph.merge([{ tenantId: T, userId: OLD_USER, sessionId: "s", messageId: "new-1", extraction: { entities: [{ name: "ann", type: "person" }, { name: "Oslo", type: "place" }], relations: [{ from: "Ann", type: "visited", to: "Oslo" }] } }]);
    const delta = b.counts.delta;
    expect(await b.graph.facts({ tenantId: T, userId: OLD_USER, terms: ["oslo"], limit: 10 })).toEqual([
      { subject: "Ann", predicate: "visited", object: "Oslo", weight: 2, messageIds: ["old-2", "new-1"] },
    ]);
    expect(b.counts.delta).toBe(delta + 1);
    expect(await expectSame(b, OLD_USER)).toBeGreaterThan(0);
    await b.graph.deleteByMessages(T, ["old-2"]);
    expect(await expectSame(a, OLD_USER)).toBeGreaterThan(0);
    expect(await a.graph.facts({ tenantId: T, userId: OLD_USER, terms: ["oslo"], limit: 10 })).toEqual([
      { subject: "Ann", predicate: "visited", object: "Oslo", weight: 1, messageIds: ["new-1"] },
    ]);
  });

  it("sees what the other merged, as a delta into the graph it holds", async () => {
    const user = uid("u");
    await a.graph.merge(merges(user, 0, 20));
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    await b.graph.loads();
    const { whole, delta } = b.counts;
    await a.graph.merge(merges(user, 20, 20));
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    expect(b.counts.whole).toBe(whole);
    expect(b.counts.delta).toBe(delta + 1);
    // Nothing written since: the reads are version checks alone.
    const head = b.counts.head;
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    expect(b.counts).toMatchObject({ whole, delta: delta + 1 });
    expect(b.counts.head).toBeGreaterThan(head);
  });

  it("with the graph version the context's archive statement read (asOf), makes no version select of its own, and sees the other's writes through it", async () => {
    const user = uid("u");
    const archive = createSqlArchive({ sql: b.sql });
    const asOf = async () => (await archive.readContext!(T, uid("s"), { userId: user, memoryLimit: 10 })).graphVersion!;
    const same = async (v: { version: number; reset: number }) => {
      for (const terms of [[], TERMS, ["kyoto", "acme"]]) {
        const q = { tenantId: T, userId: user, terms, limit: 100 };
        expect(await b.graph.facts({ ...q, asOf: v })).toEqual(await reference.facts(q));
        if (terms.length) expect(await b.graph.messagesMentioning({ ...q, asOf: v })).toEqual(await reference.messagesMentioning(q));
      }
    };
    await a.graph.merge(merges(user, 0, 20));
    await same(await asOf());
    await b.graph.loads();
    const start = { ...b.counts };
    // Held and current: no statement of the index's own.
    await same(await asOf());
    expect(b.counts).toEqual(start);
    // The other's merge, seen through the version read after it: one catch-up, no version select.
    await a.graph.merge(merges(user, 20, 20));
    await same(await asOf());
    expect(b.counts).toEqual({ ...start, delta: start.delta + 1 });
    // The other's delete by messages: the user is loaded whole again, still no version select.
    await a.graph.deleteByMessages(T, merges(user, 0, 12).map((m) => m.messageId));
    const v = await asOf();
    expect(v.reset).toBe(v.version);
    await same(v);
    await b.graph.loads();
    await same(v);
    expect(b.counts).toEqual({ ...start, delta: start.delta + 1, whole: start.whole + 1 });
    expect((await b.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100, asOf: v })).map((r) => r.id)).not.toContain("m0003");
    // The other forgets the user: seen through the version too.
    await a.graph.deleteByUser(T, user);
    const gone = await asOf();
    expect(await b.graph.facts({ tenantId: T, userId: user, terms: [], limit: 100, asOf: gone })).toEqual([]);
    expect(await b.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100, asOf: gone })).toEqual([]);
    expect(b.counts.head).toBe(start.head);
  });

  it("drops what the other deleted by message, and a user the other deleted, and sees the user come back", async () => {
    const user = uid("u");
    await a.graph.merge(merges(user, 0, 30));
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    await a.graph.deleteByMessages(T, merges(user, 0, 12).map((m) => m.messageId));
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    expect((await b.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100 })).map((r) => r.id)).not.toContain("m0003");

    await b.graph.deleteByUser(T, user);
    expect(await a.graph.facts({ tenantId: T, userId: user, terms: [], limit: 100 })).toEqual([]);
    expect(await a.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100 })).toEqual([]);
    await b.graph.merge(merges(user, 100, 5));
    expect(await expectSame(a, user)).toBeGreaterThan(0);
    expect((await a.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100 })).every((r) => r.id >= "m0100")).toBe(true);
  });

  it("a read racing the other's write answers the graph before or after it; a read begun after its answer sees it", async () => {
    const user = uid("u");
    await a.graph.merge(merges(user, 0, 10));
    const q = { tenantId: T, userId: user, terms: TERMS, limit: 100 };
    await b.graph.facts(q);
    for (let round = 0; round < 12; round++) {
      // Half the rounds with the user held (caught up or reloaded), half loading meanwhile.
      if (round % 2) await b.graph.loads();
      const before = { facts: await reference.facts(q), ranked: await reference.messagesMentioning(q) };
      const write = round % 4 === 3 ? a.graph.deleteByMessages(T, [`m${String(round * 3).padStart(4, "0")}`]) : a.graph.merge(merges(user, 10 + round * 5, 5));
      const [facts, ranked] = await Promise.all([b.graph.facts(q), b.graph.messagesMentioning(q), write]);
      const after = { facts: await reference.facts(q), ranked: await reference.messagesMentioning(q) };
      expect([before.facts, after.facts]).toContainEqual(facts);
      expect([before.ranked, after.ranked]).toContainEqual(ranked);
      expect(await b.graph.facts(q)).toEqual(after.facts);
      expect(await b.graph.messagesMentioning(q)).toEqual(after.ranked);
    }
  });

  it("holds every write when both instances merge one user at once while both read", async () => {
    const user = uid("u");
    await a.graph.merge(merges(user, 0, 5));
    await Promise.all([a.graph.facts({ tenantId: T, userId: user, terms: [], limit: 5 }), b.graph.facts({ tenantId: T, userId: user, terms: [], limit: 5 })]);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      const [on, other] = i % 2 ? [a, b] : [b, a];
      work.push(on.graph.merge(merges(user, 5 + i * 7, 7)));
      work.push(other.graph.messagesMentioning({ tenantId: T, userId: user, terms: TERMS, limit: 100 }), on.graph.facts({ tenantId: T, userId: user, terms: [], limit: 100 }));
    }
    await Promise.all(work);
    expect(await expectSame(a, user)).toBeGreaterThan(0);
    expect(await expectSame(b, user)).toBeGreaterThan(0);
    const [row] = await referenceSql.query<{ n: number }>("select count(*)::int as n from mentions where tenant_id = $1 and user_id = $2", [T, user]);
    expect(row!.n).toBeGreaterThan(100);
  });

  it("a merge and a delete by messages of one user, at once from both instances, both commit", async () => {
    const user = uid("u");
    await a.graph.merge(merges(user, 0, 40));
    // The delete takes the user's version row before any graph row, as the merge does: they
    // queue behind each other instead of deadlocking.
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        a.graph.merge(merges(user, 40 + round * 10, 10)),
        b.graph.deleteByMessages(T, merges(user, round * 8, 8).map((m) => m.messageId)),
        a.graph.merge(merges(user, round * 8, 4)),
      ]);
    }
    expect(await expectSame(a, user)).toBeGreaterThan(0);
    expect(await expectSame(b, user)).toBeGreaterThan(0);
  });
});
