// The in-process graph index answers as the SQL graph store does on the same tables: seeded
// random merges (re-merges, repeats within a batch, same names under two types, unicode and
// stopword names) and deletes, compared after every round on facts and messagesMentioning,
// scores and order included; through the index that did the writes, one that evicts users
// and reloads them while writes land, and one that loads everything afresh; and in shared
// mode, two indexes over the same tables (two processes) each writing and reading the other's writes.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countingGraphStatements } from "../../../test/fixtures/graph-statements.ts";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import { stampingTurns, turnsUntil } from "../../../test/fixtures/turns.ts";
import type { GraphMerge, GraphStore } from "../../core/ports.ts";
import { ENTITY_TYPES, type EntityType, type GraphVersion } from "../../core/types.ts";
import { createSqlArchive } from "../sql/archive.ts";
import type { SqlClient } from "../sql/client.ts";
import { createSqlGraphStore } from "../sql/graph-store.ts";
import { compareText, idOrderKey, rankMentioning, topMentioning, withGraphIndex } from "./graph-index.ts";

let sql: SqlClient;
let reference: GraphStore;
beforeAll(async () => {
  sql = await sharedPglite();
  reference = createSqlGraphStore({ sql });
});
afterAll(async () => {
  await closeSharedPglite();
});

const NAMES = [
  "Caroline", "caroline", "  CAROLINE ", "Melanie", "Sweden", "New York", "York", "new", "Bank of America", "The Who",
  "Zürich", "Sean O'Brien", "LGBTQ support group", "pottery class", "Lisbon", "Ann", "Ann Smith", "Smith", "café",
  "😀 club", "\uE000 mark", "Acme Inc.", "the", "Postgres", "Redis", "Kyoto", "Biscuit", "flushBatch",
];
const PREDICATES = ["attended", "co_mentioned", "likes", "moved from", "knows", "Works At"];
const TERMS = [
  "caroline", "melanie", "sweden", "new", "york", "new york", "bank", "america", "the", "who", "the who", "zürich", "sean",
  "obrien", "lgbtq", "support", "group", "pottery", "class", "lisbon", "ann", "smith", "ann smith", "café", "😀", "club",
  "\uE000", "mark", "acme", "inc", "postgres", "redis", "kyoto", "biscuit", "flushbatch", "atlantis", "", "  ",
];

/** Terms asked about at one limit in every round (see queries). */
const FIXED_TERMS = ["caroline", "new", "york", "smith", "redis", "club", "pottery"];

function scenario(seed: number) {
  const r = mulberry32(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(r() * list.length)]!;
  const tenants = [uid("t"), uid("t")];
  const users = [uid("u"), uid("u"), uid("u")];
  const scopes = tenants.flatMap((tenantId) => users.map((userId) => ({ tenantId, userId })));
  // Ids past U+FFFF and in U+E000..U+FFFF sort differently by code point than by UTF-16 unit.
  const messages = Array.from({ length: 120 }, (_, i) => `m${["", "\uE000", "\u{1F600}"][i % 3]}${String(i).padStart(3, "0")}`);

  function merge(): GraphMerge[] {
    return Array.from({ length: 1 + Math.floor(r() * 25) }, () => {
      const { tenantId, userId } = pick(scopes);
      const names = Array.from({ length: Math.floor(r() * 6) }, () => pick(NAMES));
      // Two types only, so one name is now and then two entities.
      const entities = names.map((name) => ({ name, type: pick(ENTITY_TYPES.slice(0, 2)) as EntityType }));
      const relations = Array.from({ length: Math.floor(r() * 4) }, () => ({ from: pick(NAMES), type: pick(PREDICATES), to: pick(NAMES) }));
      // Message ids repeat across users, as a tenant-wide delete by id must cope with.
      return { tenantId, userId, sessionId: "s", messageId: pick(messages), extraction: { entities, relations } };
    });
  }

  const queries = () =>
    scopes.flatMap((scope) => [
      // The strongest facts for one limit first and last: the next round's first asks what
      // the index kept current through the merges between (strongestRelations); and the same
      // for facts about fixed terms (the strongest relations kept per entity).
      { ...scope, terms: [], limit: 10 },
      { ...scope, terms: FIXED_TERMS, limit: 12 },
      { ...scope, terms: [], limit: 1 + Math.floor(r() * 40) },
      ...Array.from({ length: 6 }, () => ({ ...scope, terms: Array.from({ length: 1 + Math.floor(r() * 20) }, () => pick(TERMS)), limit: 1 + Math.floor(r() * 60) })),
      // Past 64 distinct terms the index looks entities up by each term instead of by pairs.
      { ...scope, terms: [...TERMS, ...Array.from({ length: 40 }, (_, i) => `filler${i}`)], limit: 50 },
      { ...scope, terms: [], limit: 10 },
      { ...scope, terms: FIXED_TERMS, limit: 12 },
    ]);

  return { r, pick, tenants, scopes, messages, merge, queries };
}

/** A merge of one message naming `names` (entities of the first type), with `relations` between them. */
function naming(
  at: Pick<GraphMerge, "tenantId" | "userId" | "sessionId" | "messageId">,
  names: string[],
  relations: GraphMerge["extraction"]["relations"] = [],
): GraphMerge {
  return { ...at, extraction: { entities: names.map((name) => ({ name, type: ENTITY_TYPES[0] as EntityType })), relations } };
}

/** `n` merges for one user, of messages m{from}..: two entities each and a relation between them. */
function mentioning(tenantId: string, userId: string, n: number, from = 0): GraphMerge[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    const [a, b] = [NAMES[i % NAMES.length]!, NAMES[(7 * i + 3) % NAMES.length]!];
    return naming({ tenantId, userId, sessionId: "s", messageId: `m${i}` }, [a, b], [{ from: a, type: "knows", to: b }]);
  });
}

/** The user's mention and evidence rows in the tables: what the index counts against its budget. */
async function rowsOf(tenantId: string, userId: string): Promise<number> {
  const [row] = await sql.query<{ n: number }>(
    `select (select count(*) from mentions where tenant_id = $1 and user_id = $2)
          + (select count(*) from relation_evidence where tenant_id = $1 and user_id = $2) as n`,
    [tenantId, userId],
  );
  return Number(row!.n);
}

/** Compares every query's answers; returns how many answers were not empty. */
async function expectSame(index: GraphStore, qs: { tenantId: string; userId: string; terms: string[]; limit: number }[]): Promise<number> {
  let answered = 0;
  for (const q of qs) {
    const facts = await reference.facts(q);
    const ranked = await reference.messagesMentioning(q);
    expect(await index.facts(q)).toEqual(facts);
    expect(await index.messagesMentioning(q)).toEqual(ranked);
    answered += Number(facts.length > 0) + Number(ranked.length > 0);
  }
  return answered;
}

describe("in-process graph index", () => {
  it("compares text in code point order, as the archive's C collation", async () => {
    const texts = ["b", "B", "a", "_", "é", "z", "\u{1F600}", "\uFFFD", "\uE000", "ab", "a"];
    const rows = await sql.query<{ x: string }>("select x from unnest($1::text[]) x order by x", [texts]);
    expect([...texts].sort(compareText)).toEqual(rows.map((row) => row.x));
  });

  for (const seed of [1, 2, 3]) {
    it(`answers as the SQL store through random merges and deletes (seed ${seed})`, async () => {
      const s = scenario(seed);
      const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql });
      let answered = 0;
      for (let round = 0; round < 12; round++) {
        await writer.merge(s.merge());
        if (s.r() < 0.4) await writer.deleteByMessages(s.pick(s.tenants), Array.from({ length: 1 + Math.floor(s.r() * 15) }, () => s.pick(s.messages)).concat("unknown"));
        if (s.r() < 0.1) {
          const { tenantId, userId } = s.pick(s.scopes);
          await writer.deleteByUser(tenantId, userId);
        }
        const qs = s.queries();
        answered += await expectSame(writer, qs);
        // A fresh index loads every user from the tables as they are now.
        await expectSame(withGraphIndex(createSqlGraphStore({ sql }), { sql }), qs);
      }
      // Most queries found something: the comparisons above compared answers, not empty lists.
      expect(answered).toBeGreaterThan(12 * 14);
      // Deleted to the last message: nothing left to answer with.
      for (const tenantId of s.tenants) await writer.deleteByMessages(tenantId, s.messages);
      for (const q of s.queries()) {
        expect(await writer.facts(q)).toEqual([]);
        expect(await writer.messagesMentioning(q)).toEqual([]);
      }
    });
  }

  it("keeps the strongest relations touching many entities whichever entity's list holds them", async () => {
    // relationsTouching reads each matched entity's strongest relations, in turn; here one
    // entity's are stronger than every other's, and it is matched first, in the middle or last.
    const words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove"];
    for (const strong of [0, 3, 6]) {
      const tenantId = uid("t");
      const userId = uid("u");
      const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql });
      const merges: GraphMerge[] = [];
      let n = 0;
      const relate = (from: string, type: string, to: string) =>
        merges.push({
          tenantId,
          userId,
          sessionId: "s",
          messageId: `m${String(n++).padStart(3, "0")}`,
          extraction: { entities: [from, to].map((name) => ({ name, type: "topic" as EntityType })), relations: [{ from, type, to }] },
        });
      // Four relations of weight 1 for every entity; the strong one's first two gain weight from
      // two and three more messages (weights 3 and 4), and one relation joins two matched entities.
      for (const w of words) for (let k = 0; k < 4; k++) relate(`${w} hub`, "links", `${w} leaf ${k}`);
      for (let again = 0; again < 3; again++) relate(`${words[strong]} hub`, "links", `${words[strong]} leaf 0`);
      for (let again = 0; again < 2; again++) relate(`${words[strong]} hub`, "links", `${words[strong]} leaf 1`);
      relate(`${words[1]} hub`, "knows", `${words[5]} hub`);
      await writer.merge(merges);
      for (const limit of [1, 2, 3, 5, 12]) {
        const q = { tenantId, userId, terms: words.map((w) => `${w} hub`), limit };
        const facts = await writer.facts(q);
        expect(facts).toEqual(await reference.facts(q));
        expect(facts[0]).toMatchObject({ subject: `${words[strong]} hub`, object: `${words[strong]} leaf 0`, weight: 4 });
        if (limit >= 2) expect(facts[1]).toMatchObject({ subject: `${words[strong]} hub`, object: `${words[strong]} leaf 1`, weight: 3 });
        expect(facts).toHaveLength(limit);
      }
    }
  });

  // With 0 ms slices a load's build gives the event loop a turn after every row it adds, so
  // writes land while it builds, not only while it reads.
  for (const [loadSliceMs, loadEntitiesBy] of [[undefined, undefined], [0, "hash"], [0, "blocks"]] as const) {
    it(`stays in step when users are evicted and reloaded while writes land${loadSliceMs === 0 ? `, loads built a row a turn and read 2 mention or evidence rows a page, entities by ${loadEntitiesBy}` : ""}`, async () => {
      const s = scenario(7);
      // Room for about one user: nearly every read of another user reloads it from the tables.
      const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql, maxRows: 40, ...(loadSliceMs === 0 ? { loadSliceMs, loadPageRows: 2, loadEntitiesBy } : {}) });
      let answered = 0;
      for (let round = 0; round < 15; round++) {
        const qs = s.queries();
        // Reads start loads; the writes land before, during or after them.
        await Promise.all([
          ...qs.slice(0, 8).map((q) => writer.facts(q)),
          writer.merge(s.merge()),
          ...qs.slice(8, 16).map((q) => writer.messagesMentioning(q)),
          writer.deleteByMessages(s.pick(s.tenants), Array.from({ length: 1 + Math.floor(s.r() * 8) }, () => s.pick(s.messages))),
          ...qs.slice(16).map((q) => writer.facts(q)),
        ]);
        answered += await expectSame(writer, qs);
      }
      expect(answered).toBeGreaterThan(15 * 14);
    });
  }

  // Pages of 3 mention or evidence rows (a graph version's rows whole), a turn of the event
  // loop after each row taken (0 ms slices): the writes land between pages and within them,
  // at the start of the load or a quarter, half or three quarters of its turns in.
  // Entities read by hash slices, or by ranges of the table's blocks (where an entity row a
  // merge updates may move to a range read before, or past the last).
  for (const [part, loadEntitiesBy] of [0, 0.25, 0.5, 0.75].flatMap((p) => (["hash", "blocks"] as const).map((by) => [p, by] as const))) {
    it(`builds a loading user's graph a page at a time, in slices, and replays writes that land between them (${part * 100}% in, entities by ${loadEntitiesBy})`, async () => {
      const tenantId = uid("t");
      const userId = uid("u");
      const atlantis = (surface: string, messageId: string) =>
        naming({ tenantId, userId, sessionId: "s2", messageId }, [surface, "Lisbon"], [{ from: surface, type: "based in", to: "Lisbon" }]);
      // Stored by merges of 5 messages (a graph version each), and one entity (and its
      // relation) only one message names.
      for (let from = 0; from < 150; from += 5) await reference.merge(mentioning(tenantId, userId, 5, from));
      await reference.merge([atlantis("Atlantis Corp", "solo")]);
      const q = { tenantId, userId, terms: [...TERMS, "atlantis", "corp"], limit: 1000 };
      /** Loads the user through a new index, awaiting `write(turn, index)` on each turn of the load; its turns. */
      const load = async (write: (turn: number, index: GraphStore) => Promise<void>) => {
        const index = withGraphIndex(createSqlGraphStore({ sql }), { sql, loadSliceMs: 0, loadPageRows: 3, loadEntitiesBy });
        const { turns } = await turnsUntil(index.facts(q), (turn) => write(turn, index));
        return { index, turns };
      };
      const quiet = await load(async () => undefined);
      const at = Math.max(1, Math.floor(part * quiet.turns));
      const { index, turns } = await load(async (turn, index) => {
        // New mentions of entities read and not yet read, with new relations; loaded messages
        // deleted; the one-message entity deleted and stored again under another surface form.
        if (turn === at) await index.merge(mentioning(tenantId, userId, 20, 150));
        if (turn === at + 1) await index.deleteByMessages(tenantId, ["m0", "m1", "m2"]);
        if (turn === at + 2) await index.deleteByMessages(tenantId, ["solo"]);
        if (turn === at + 3) await index.merge([atlantis("ATLANTIS  corp", "solo2")]);
        // A deleted message's rows stored again, above the versions read: a page may read them twice.
        if (turn === at + 4) await index.merge(mentioning(tenantId, userId, 1, 0));
      });
      // The selects answer through promises alone, so the turns are the build's.
      expect(quiet.turns).toBeGreaterThan(100);
      expect(turns).toBeGreaterThan(at + 4);
      const facts = await reference.facts(q);
      expect(facts.map((f) => f.subject)).toContain("ATLANTIS corp");
      expect(await index.facts(q)).toEqual(facts);
      const ranked = await index.messagesMentioning(q);
      expect(ranked).toEqual(await reference.messagesMentioning(q));
      expect(ranked.map((m) => m.id)).toContain("m160");
      expect(ranked.map((m) => m.id)).toContain("solo2");
      expect(ranked.map((m) => m.id)).not.toContain("m1");
      expect(ranked.map((m) => m.id)).toContain("m0");
      // As a fresh load of the same rows answers.
      const fresh = withGraphIndex(createSqlGraphStore({ sql }), { sql });
      expect(await fresh.messagesMentioning(q)).toEqual(ranked);
    });
  }

  // Entities read by ranges of blocks, a block a range, while merges land: each updates an
  // entity's row, which may move to a block read before or past the last.
  it("loads entities by ranges of blocks while merges move their rows, and misses none", async () => {
    const tenantId = uid("t");
    const userId = uid("u");
    const site = (k: number, messageId: string) => naming({ tenantId, userId, sessionId: "s", messageId }, [`Site ${k}`]);
    const sites = 300;
    await reference.merge(Array.from({ length: sites }, (_, k) => site(k, `m${k}`)));
    const q = { tenantId, userId, terms: ["site", ...Array.from({ length: sites }, (_, k) => String(k))], limit: 1000 };
    // The load's statements seen: merges land once it reads ranges of blocks.
    let ranges = 0;
    const client: SqlClient = { ...sql, query: (text, params) => ((ranges += Number(text.includes("ctid >=")), sql.query(text, params))) };
    const index = withGraphIndex(createSqlGraphStore({ sql }), { sql: client, loadSliceMs: 0, loadPageRows: 3, loadEntitiesBy: "blocks" });
    let merged = 0;
    await turnsUntil(index.messagesMentioning(q), async (turn) => {
      if (ranges === 0 || merged === 200) return;
      merged++;
      await index.merge([site((turn * 37) % sites, `n${turn}`)]);
    });
    expect(ranges).toBeGreaterThan(3);
    expect(merged).toBeGreaterThan(50);
    const ranked = await reference.messagesMentioning(q);
    expect(ranked.length).toBeGreaterThan(sites);
    expect(await index.messagesMentioning(q)).toEqual(ranked);
  });

  it("two users' loads at once send their pages one a turn of the event loop", async () => {
    const tenantId = uid("t");
    const users = [uid("u"), uid("u")];
    for (const userId of users) await reference.merge(mentioning(tenantId, userId, 30));
    const stamped = stampingTurns(sql, (text) => text.includes("with cut as") || text.includes("from entities where"));
    const index = withGraphIndex(createSqlGraphStore({ sql }), { sql: stamped.client, loadPageRows: 7 });
    const q = (userId: string) => ({ tenantId, userId, terms: TERMS, limit: 100 });
    const answers = await Promise.all(users.map((userId) => index.messagesMentioning(q(userId))));
    stamped.stop();
    for (const [i, userId] of users.entries()) expect(answers[i]).toEqual(await reference.messagesMentioning(q(userId)));
    expect(stamped.turns.length).toBeGreaterThanOrEqual(8);
    expect(new Set(stamped.turns).size).toBe(stamped.turns.length);
  });

  it("evicts the least recently used users when merges grow a held user past the budget, and keeps that user", async () => {
    const tenantId = uid("t");
    const [idle, growing] = [uid("u"), uid("u")];
    await reference.merge([...mentioning(tenantId, idle, 30), ...mentioning(tenantId, growing, 5)]);
    const [idleRows, growingRows] = [await rowsOf(tenantId, idle), await rowsOf(tenantId, growing)];
    // Counts what the index sends (a load is one transaction); the store writes through its own client.
    const { client: counting, sent } = countingGraphStatements(sql);
    const index = withGraphIndex(createSqlGraphStore({ sql }), { sql: counting, maxRows: idleRows + growingRows + 20 });
    const q = (userId: string) => ({ tenantId, userId, terms: TERMS, limit: 100 });
    expect(await index.facts(q(idle))).toEqual(await reference.facts(q(idle)));
    expect(await index.facts(q(growing))).toEqual(await reference.facts(q(growing)));
    // Both held: read again without a statement.
    const held = sent();
    await index.facts(q(idle));
    await index.facts(q(growing));
    expect(sent()).toBe(held);
    await index.merge(mentioning(tenantId, growing, 40, 5));
    expect(await rowsOf(tenantId, growing)).toBeGreaterThan(growingRows + 20);
    // The grown user is answered from memory; the idle one, evicted, is loaded again.
    expect(await index.facts(q(growing))).toEqual(await reference.facts(q(growing)));
    expect(sent()).toBe(held);
    expect(await index.facts(q(idle))).toEqual(await reference.facts(q(idle)));
    expect(sent()).toBeGreaterThan(held);
  });

  it("a user deleted while a load reads the tables does not come back", async () => {
    const s = scenario(11);
    const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql });
    await reference.merge(s.merge().concat(s.merge()));
    const { tenantId, userId } = s.scopes[0]!;
    const [before] = await Promise.all([writer.facts({ tenantId, userId, terms: [], limit: 50 }), writer.deleteByUser(tenantId, userId)]);
    expect(Array.isArray(before)).toBe(true);
    expect(await writer.facts({ tenantId, userId, terms: [], limit: 50 })).toEqual([]);
    expect(await writer.messagesMentioning({ tenantId, userId, terms: TERMS, limit: 50 })).toEqual([]);

    // Merged again after the delete, while another load may still be reading: the next reads see it.
    const again = s.merge().map((item) => ({ ...item, tenantId, userId }));
    const reading = writer.facts({ tenantId, userId, terms: [], limit: 50 });
    await Promise.all([writer.deleteByUser(tenantId, userId), reading]);
    await writer.merge(again);
    const q = { tenantId, userId, terms: TERMS, limit: 100 };
    expect(await writer.facts(q)).toEqual(await reference.facts(q));
    expect(await writer.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
    expect((await writer.messagesMentioning(q)).length).toBeGreaterThan(0);
  });

  it("answers the same terms anew after writes add and drop entities they match", async () => {
    // The index keeps matched()'s last answer (a context call asks it twice with the same
    // terms): an entity added or dropped between two reads of the same terms must show.
    const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql });
    const [tenantId, userId] = [uid("t"), uid("u")];
    const item = (messageId: string, name: string): GraphMerge => ({
      tenantId,
      userId,
      sessionId: "s",
      messageId,
      extraction: { entities: [{ name, type: ENTITY_TYPES[0] }, { name: "Lisbon", type: ENTITY_TYPES[1] }], relations: [{ from: name, type: "moved from", to: "Lisbon" }] },
    });
    const q = { tenantId, userId, terms: ["caroline", "melanie"], limit: 10 };
    const answers = async () => ({ ids: (await writer.messagesMentioning(q)).map((h) => h.id).sort(), subjects: (await writer.facts(q)).map((f) => f.subject).sort() });
    await writer.merge([item("m1", "Caroline")]);
    expect(await answers()).toEqual({ ids: ["m1"], subjects: ["Caroline"] });
    await writer.merge([item("m2", "Melanie")]);
    expect(await answers()).toEqual({ ids: ["m1", "m2"], subjects: ["Caroline", "Melanie"] });
    await writer.deleteByMessages(tenantId, ["m1"]);
    expect(await answers()).toEqual({ ids: ["m2"], subjects: ["Melanie"] });
    expect(await writer.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
    expect(await writer.facts(q)).toEqual(await reference.facts(q));
  });

  it("matches the entities a pair of words keys, as the SQL store, while writes add to that pair and drop from it", async () => {
    // An entity is found by the two of its words fewest entities held when it was added: with
    // "cab", "dax" and "elm" in many names first, every name below holding "pim" and "quo" is
    // found by that pair, and only those whose other words are all asked about match. The
    // index packs a pair of 8 entities or more (at a load, or on the first query after a write
    // to it): a write to a packed pair must show.
    const writer = withGraphIndex(createSqlGraphStore({ sql }), { sql });
    const [tenantId, userId] = [uid("t"), uid("u")];
    const item = (messageId: string, names: string[]): GraphMerge => ({
      tenantId,
      userId,
      sessionId: "s",
      messageId,
      extraction: { entities: names.map((name) => ({ name, type: ENTITY_TYPES[0] })), relations: names.slice(1).map((to) => ({ from: names[0]!, type: "knows", to })) },
    });
    await writer.merge(Array.from({ length: 8 }, (_, i) => item(`f${i}`, [`Cab Dax Elm F${i}`, `Cab F${i}`, `Dax F${i}`, `Elm F${i}`])));
    // Eight names, so the pair is packed (PACK_MEMBERS), each with "pim", "quo" and a set of the others.
    const paired = ["Pim Quo", "Pim Quo Cab", "Pim Quo Dax", "Pim Quo Cab Dax", "Quo Pim Elm", "Pim Quo Cab Elm Dax", "Quo Pim Dax Elm", "Quo Pim Cab Dax"];
    await writer.merge(paired.map((name, i) => item(`p${i}`, [name, "Cab F1"])));
    const ask = async (terms: string[]) => {
      const q = { tenantId, userId, terms, limit: 50 };
      const ranked = await writer.messagesMentioning(q);
      expect(ranked).toEqual(await reference.messagesMentioning(q));
      expect(await writer.facts(q)).toEqual(await reference.facts(q));
      return ranked.map((h) => h.id).filter((id) => id.startsWith("p")).sort();
    };
    expect(await ask(["pim", "quo"])).toEqual(["p0"]);
    expect(await ask(["pim", "quo", "cab"])).toEqual(["p0", "p1"]);
    expect(await ask(["quo", "dax", "pim", "cab"])).toEqual(["p0", "p1", "p2", "p3", "p7"]);
    expect(await ask(["pim", "quo", "cab", "dax", "elm"])).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
    // Added to a pair already packed, and dropped from it (below PACK_MEMBERS again).
    await writer.merge([item("p8", ["Pim Quo Elm Cab", "Cab F2"])]);
    expect(await ask(["pim", "quo", "cab", "elm"])).toEqual(["p0", "p1", "p4", "p8"]);
    await writer.deleteByMessages(tenantId, ["p1", "p4"]);
    expect(await ask(["pim", "quo", "cab", "elm"])).toEqual(["p0", "p8"]);
    expect(await ask(["pim", "quo", "cab", "dax", "elm"])).toEqual(["p0", "p2", "p3", "p5", "p6", "p7", "p8"]);
  });

  it("ranks mentions as a full scan would, ties included", () => {
    // Skewed lists, as a long-lived user has: a few entities in most messages (speakers,
    // common topics), many rare ones; weights from a handful of values (multiples of 2^-40),
    // so many messages tie on score and the id decides.
    const r = mulberry32(5);
    let truncated = 0;
    for (let round = 0; round < 200; round++) {
      const ids = Array.from({ length: 50 + Math.floor(r() * 600) }, (_, i) => `m${["", "\uE000", "\u{1F600}"][i % 3]}${Math.floor(r() * 1e6)}`);
      const lists = Array.from({ length: 1 + Math.floor(r() * 12) }, () => {
        const share = r() < 0.3 ? 0.5 + r() * 0.5 : r() * 0.05;
        const messages = new Set(ids.filter(() => r() < share));
        const weight = Math.floor((1 / (1 + Math.log(1 + Math.floor(r() * 4) * 40))) * 2 ** 40) / 2 ** 40;
        return { messages, weight };
      });
      const scores = new Map<string, number>();
      for (const l of lists) for (const m of l.messages) scores.set(m, (scores.get(m) ?? 0) + l.weight);
      const full = [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || compareText(b.id, a.id));
      for (const limit of [1, 3, 10, 50, 100, 1000]) {
        expect(topMentioning(lists, limit)).toEqual(full.slice(0, limit));
        if (limit < full.length && lists.length > 1) truncated++;
      }
    }
    expect(truncated).toBeGreaterThan(100);
    // One weight for every list: scores are counts, most messages tie, ids (prefixes of one
    // another among them) decide; and lists that overlap wholly or not at all.
    for (let round = 0; round < 50; round++) {
      const ids = Array.from({ length: 20 + Math.floor(r() * 300) }, (_, i) => `${["", "\uE000", "\u{1F600}", "m"][i % 4]}${Math.floor(r() * 500)}`);
      const weight = Math.floor((1 / (1 + Math.log(7))) * 2 ** 40) / 2 ** 40;
      const lists = Array.from({ length: 1 + Math.floor(r() * 20) }, (_, k) => ({
        messages: new Set(k % 5 === 4 ? ids : ids.filter(() => r() < 0.2)),
        weight: k % 7 === 6 ? 2 * weight : weight,
      }));
      const scores = new Map<string, number>();
      for (const l of lists) for (const m of l.messages) scores.set(m, (scores.get(m) ?? 0) + l.weight);
      const full = [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || compareText(b.id, a.id));
      for (const limit of [1, 2, 7, 40, 500]) expect(topMentioning(lists, limit)).toEqual(full.slice(0, limit));
    }
    // Ids that share their first dozen characters (time-ordered ids, as ULIDs are): every key
    // is the same, and the ids decide whole.
    for (let round = 0; round < 20; round++) {
      const ids = Array.from({ length: 50 + Math.floor(r() * 200) }, () => `msg_01JD8X${Math.floor(r() * 300)}`);
      const lists = Array.from({ length: 1 + Math.floor(r() * 6) }, () => ({ messages: new Set(ids.filter(() => r() < 0.4)), weight: 2 ** -20 }));
      const scores = new Map<string, number>();
      for (const l of lists) for (const m of l.messages) scores.set(m, (scores.get(m) ?? 0) + l.weight);
      const full = [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || compareText(b.id, a.id));
      for (const limit of [1, 5, 30, 400]) expect(topMentioning(lists, limit)).toEqual(full.slice(0, limit));
    }
    expect(topMentioning([], 10)).toEqual([]);
    expect(topMentioning([{ messages: new Set(["a"]), weight: 0.5 }], 0)).toEqual([]);
  });

  it("ranks mentions of ordinals spread far apart, call after call of every size, with their sessions", () => {
    // rankMentioning sums in a table sized by the call's postings and emptied after it: ordinals
    // spread over a large range (many share a bucket), a call of thousands of postings then
    // calls of a few, and the same ordinal in every list.
    const r = mulberry32(23);
    const ids: (string | undefined)[] = [];
    const sessions: (string | undefined)[] = [];
    let keys = new Float64Array(0);
    const used: number[] = [];
    for (let n = 0; n < 3000; n++) {
      const o = n % 7 === 0 ? n * 65_536 : Math.floor(r() * 400_000);
      if (ids[o] !== undefined) continue;
      ids[o] = `m-${Math.floor(r() * 5000)}-${o}`;
      sessions[o] = r() < 0.5 ? `s-${o % 13}` : undefined;
      used.push(o);
    }
    keys = new Float64Array(ids.length);
    for (const o of used) keys[o] = idOrderKey(ids[o]!);
    const ordinals = { ids, keys, sessions };
    for (const size of [3000, 2, 700, 1, 40, 3000, 5]) {
      for (let round = 0; round < 8; round++) {
        const pool = used.filter(() => r() < size / used.length + 0.001);
        const shared = pool[0];
        const lists = Array.from({ length: 1 + Math.floor(r() * 6) }, () => {
          const ords = pool.filter(() => r() < 0.5);
          if (shared !== undefined && !ords.includes(shared)) ords.unshift(shared);
          return { ords, weight: (1 + Math.floor(r() * 3)) * 2 ** -20 };
        });
        const scores = new Map<number, number>();
        for (const l of lists) for (const o of l.ords) scores.set(o, (scores.get(o) ?? 0) + l.weight);
        const full = [...scores]
          .sort(([a, x], [b, y]) => y - x || compareText(ids[b]!, ids[a]!))
          .map(([o, score]) => (sessions[o] === undefined ? { id: ids[o]!, score } : { id: ids[o]!, score, sessionId: sessions[o] }));
        for (const limit of [1, 10, 100, 5000]) expect(rankMentioning(lists, ordinals, limit)).toEqual(full.slice(0, limit));
      }
    }
    expect(rankMentioning([{ ords: [], weight: 1 }], ordinals, 10)).toEqual([]);
  });

  it("orders ids by their keys as compareText orders them, wherever two keys differ", () => {
    // Units around every boundary the key and compareText draw: the end of an id, ASCII's
    // ends, the surrogates and the private use area, and astral characters (surrogate pairs).
    const units = ["a", "b", "0", "9", "~", "\u0001", "\u007f", "\u0080", "é", "\uD7FF", "\uE000", "\uFFFF", "\u{1F600}", "\u{10FFFF}"];
    const r = mulberry32(11);
    const ids = Array.from({ length: 300 }, () => Array.from({ length: Math.floor(r() * 10) }, () => units[Math.floor(r() * units.length)]!).join(""));
    let decided = 0;
    for (const a of ids) {
      for (const b of ids) {
        const ka = idOrderKey(a);
        const kb = idOrderKey(b);
        expect(Number.isSafeInteger(ka)).toBe(true);
        if (ka === kb) continue;
        decided++;
        expect(Math.sign(ka - kb)).toBe(Math.sign(compareText(a, b)));
      }
    }
    // Most pairs are told apart by their keys alone.
    expect(decided).toBeGreaterThan(0.5 * ids.length * ids.length);
  });
});

/** A shared index with its own SQL store over the same tables: another process, as far as the graph knows. */
function process(options: { maxRows?: number; maxCatchUp?: number } = {}) {
  const { client, counts } = countingGraphStatements(sql);
  return { index: withGraphIndex(createSqlGraphStore({ sql: client }), { sql: client, shared: true, ...options }), counts };
}

/**
 * One user's graph written by process `a` and read by `b` (catching up on at most 2 merges),
 * with the archive whose context statement reads the graph's version, and `same`: b's answers
 * as of a version, checked against the tables'.
 */
function contextReads(seed: number) {
  const s = scenario(seed);
  const a = process();
  const b = process({ maxCatchUp: 2 });
  const archive = createSqlArchive({ sql });
  const { tenantId, userId } = s.scopes[0]!;
  const mine = () => s.merge().map((item) => ({ ...item, tenantId, userId }));
  const q = { tenantId, userId, terms: TERMS, limit: 100 };
  const same = async (v: GraphVersion) => {
    expect(await b.index.facts({ ...q, asOf: v })).toEqual(await reference.facts(q));
    expect(await b.index.facts({ ...q, terms: [], asOf: v })).toEqual(await reference.facts({ ...q, terms: [] }));
    expect(await b.index.messagesMentioning({ ...q, asOf: v })).toEqual(await reference.messagesMentioning(q));
  };
  return { s, a, b, archive, tenantId, userId, mine, q, same };
}

describe("in-process graph index, shared by processes", () => {
  for (const seed of [1, 2, 3]) {
    it(`two indexes each writing answer as the SQL store after every round (seed ${seed})`, async () => {
      const s = scenario(seed + 100);
      const a = process();
      const b = process();
      const writer = () => (s.r() < 0.5 ? a.index : b.index);
      let answered = 0;
      for (let round = 0; round < 12; round++) {
        await writer().merge(s.merge());
        if (s.r() < 0.3) await writer().deleteByMessages(s.pick(s.tenants), Array.from({ length: 1 + Math.floor(s.r() * 15) }, () => s.pick(s.messages)));
        if (s.r() < 0.1) {
          const { tenantId, userId } = s.pick(s.scopes);
          await writer().deleteByUser(tenantId, userId);
        }
        const qs = s.queries();
        answered += await expectSame(a.index, qs);
        await expectSame(b.index, qs);
        // Users loading in the background are answered by the store meanwhile; every other round, held.
        if (round % 2) await Promise.all([a.index.loads(), b.index.loads()]);
      }
      expect(answered).toBeGreaterThan(12 * 14);
      // Most rounds only merged: those were caught up on, not reloaded.
      expect(a.counts.delta + b.counts.delta).toBeGreaterThan(12);
    });
  }

  it("catches up on another's merges, reloads after its deletes, and reads nothing more while nothing changed", async () => {
    const s = scenario(21);
    const a = process();
    const b = process({ maxCatchUp: 2 });
    const { tenantId, userId } = s.scopes[0]!;
    const mine = () => s.merge().map((item) => ({ ...item, tenantId, userId }));
    const q = { tenantId, userId, terms: TERMS, limit: 100 };
    const same = async () => {
      expect(await b.index.facts(q)).toEqual(await reference.facts(q));
      expect(await b.index.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
    };

    await a.index.merge(mine());
    // Not held: answered by the SQL store while the user loads in the background, once.
    await same();
    expect(b.counts).toEqual({ head: 2, delta: 0, whole: 1 });
    await b.index.loads();
    // Nothing written: each read is the version check alone.
    await same();
    expect(b.counts).toEqual({ head: 4, delta: 0, whole: 1 });

    await a.index.merge(mine());
    await same();
    expect(b.counts).toMatchObject({ delta: 1, whole: 1 });
    expect((await b.index.messagesMentioning(q)).length).toBeGreaterThan(0);

    // More merges since than it catches up on: loaded whole (in the background) instead.
    for (let i = 0; i < 3; i++) await a.index.merge(mine());
    await same();
    expect(b.counts).toMatchObject({ delta: 1, whole: 2 });
    await b.index.loads();
    await same();
    expect(b.counts).toMatchObject({ delta: 1, whole: 2 });

    // A delete by messages, and one of the user: the next read loads the user whole.
    await a.index.deleteByMessages(tenantId, s.messages.slice(0, 40));
    await same();
    expect(b.counts).toMatchObject({ delta: 1, whole: 3 });
    await b.index.loads();
    await a.index.deleteByUser(tenantId, userId);
    expect(await b.index.facts({ ...q, terms: [] })).toEqual([]);
    expect(await b.index.messagesMentioning(q)).toEqual([]);
    // Merged again after the user's delete: seen.
    await a.index.merge([{ tenantId, userId, sessionId: "s", messageId: "again", extraction: { entities: [{ name: "Ann", type: "person" }, { name: "Lisbon", type: "place" }], relations: [{ from: "Ann", type: "moved to", to: "Lisbon" }] } }]);
    await same();
    expect(await b.index.facts({ ...q, terms: ["lisbon"] })).toEqual([{ subject: "Ann", predicate: "moved to", object: "Lisbon", weight: 1, messageIds: ["again"] }]);
  });

  it("builds a whole load (shared mode) in slices, with turns of the event loop between them", async () => {
    const tenantId = uid("t");
    const userId = uid("u");
    await reference.merge(mentioning(tenantId, userId, 150));
    // A turn after every row of the whole statement taken (0 ms slices).
    const b = withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true, loadSliceMs: 0 });
    const q = { tenantId, userId, terms: TERMS, limit: 1000 };
    // Not held: answered by the SQL store, and loaded whole in the background.
    expect(await b.facts(q)).toEqual(await reference.facts(q));
    const { turns } = await turnsUntil(b.loads(), async (turn) => {
      // Another process's merge while the load builds: the next read's version check finds it.
      if (turn === 2) await reference.merge(mentioning(tenantId, userId, 10, 150));
    });
    expect(turns).toBeGreaterThan(50);
    expect(await b.facts(q)).toEqual(await reference.facts(q));
    expect(await b.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
    expect((await b.messagesMentioning(q)).map((m) => m.id)).toContain("m155");
  });

  it("a graph version read with the context's archive statement (asOf) stands for the version check, and shows another's writes", async () => {
    const { s, a, b, archive, tenantId, userId, mine, same } = contextReads(31);
    const asOf = async () => (await archive.readContext!(tenantId, uid("s"), { userId, memoryLimit: 10 })).graphVersion!;

    // Never written: version 0, no row.
    expect(await asOf()).toEqual({ version: 0, reset: 0 });
    await a.index.merge(mine());
    const v1 = await asOf();
    expect(v1.version).toBeGreaterThan(0);
    // Not held: the store answers while the user loads in the background, once; no version select.
    await same(v1);
    expect(b.counts).toEqual({ head: 0, delta: 0, whole: 1 });
    await b.index.loads();
    // Held at that version: answered from memory with no statement at all.
    await same(v1);
    expect(b.counts).toEqual({ head: 0, delta: 0, whole: 1 });

    // Another's merge, seen through the version read after it: a catch-up, still no version select.
    await a.index.merge(mine());
    const v2 = await asOf();
    await same(v2);
    expect(b.counts).toEqual({ head: 0, delta: 1, whole: 1 });
    // A version older than the one held (read before that catch-up): answered from memory.
    await same(v1);
    expect(b.counts).toEqual({ head: 0, delta: 1, whole: 1 });

    // Another's delete by messages: reset above the version held, so a whole load.
    await a.index.deleteByMessages(tenantId, s.messages.slice(0, 40));
    const v3 = await asOf();
    expect(v3.reset).toBeGreaterThan(v2.version);
    await same(v3);
    expect(b.counts).toEqual({ head: 0, delta: 1, whole: 2 });
    await b.index.loads();
    await same(v3);
    expect(b.counts).toEqual({ head: 0, delta: 1, whole: 2 });

    // Without asOf (search, other callers): the version check as before.
    await same(undefined as unknown as GraphVersion);
    expect(b.counts).toMatchObject({ delta: 1, whole: 2 });
    expect(b.counts.head).toBeGreaterThan(0);
  });

  it("what others merged since the version held, read with the context's archive statement (catchUpFrom), brings the graph current with no statement of its own", async () => {
    const { s, a, b, archive, tenantId, userId, mine, same } = contextReads(41);
    const read = async (sessionId = uid("s")) => {
      const graphDelta = b.index.catchUpFrom!(tenantId, userId);
      const context = await archive.readContext!(tenantId, sessionId, { userId, memoryLimit: 10, ...(graphDelta ? { graphDelta } : {}) });
      // A search reads the same versions for the user alone, without the rows (Archive.readVersions).
      if (sessionId !== theirs) {
        const { delta: _, ...graphVersion } = context.graphVersion!;
        expect(await archive.readVersions!(tenantId, userId)).toEqual({ userVersion: context.userVersion, graphVersion });
      }
      return context.graphVersion!;
    };
    let theirs = "";

    // Not held: nothing asked for, and the user loads whole.
    await a.index.merge(mine());
    expect(b.index.catchUpFrom!(tenantId, userId)).toBeNull();
    const v1 = await read();
    expect(v1.delta).toBeUndefined();
    await same(v1);
    await b.index.loads();
    expect(b.index.catchUpFrom!(tenantId, userId)).toEqual({ since: v1.version, maxMerges: 2 });
    // Nothing merged since: no rows.
    expect((await read()).delta).toBeUndefined();

    // Round after round of another's merges (new and repeated messages): each read carries what
    // they added, and the graph answers as the tables with no statement of its own.
    let rows = 0;
    for (let round = 0; round < 8; round++) {
      const since = b.index.catchUpFrom!(tenantId, userId)!.since;
      await a.index.merge(mine());
      if (round % 3 === 2) await a.index.merge(mine());
      const v = await read();
      expect(v.delta?.since).toBe(since);
      rows += v.delta!.mentions.length + v.delta!.evidence.length;
      await same(v);
      expect(b.counts).toEqual({ head: 0, delta: 0, whole: 1 });
      expect(b.index.catchUpFrom!(tenantId, userId)!.since).toBe(v.version);
    }
    expect(rows).toBeGreaterThan(20);

    // Another user's session: nothing read for this user's graph.
    await archive.ensureTenant({ id: tenantId, name: tenantId });
    theirs = uid("s");
    await archive.ingest({ tenantId, sessionId: theirs, userId: uid("other"), messages: [{ id: uid("m"), role: "user", content: "hi", name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 }], jobsFor: () => [] });
    await a.index.merge(mine());
    expect((await read(theirs)).delta).toBeUndefined();

    // More merges since than it catches up on, or a delete since: no rows, a whole load.
    for (let i = 0; i < 3; i++) await a.index.merge(mine());
    const far = await read();
    expect(far.delta).toBeUndefined();
    await same(far);
    expect(b.counts).toMatchObject({ delta: 0, whole: 2 });
    await b.index.loads();
    await a.index.deleteByMessages(tenantId, s.messages.slice(0, 40));
    const reset = await read();
    expect(reset.delta).toBeUndefined();
    await same(reset);
    expect(b.counts).toMatchObject({ delta: 0, whole: 3 });
  });

  it("a read racing another's write answers the graph before or after it, and a read begun after the write's answer sees it", async () => {
    const s = scenario(31);
    const a = process();
    const b = process({ maxRows: 60 });
    for (let round = 0; round < 20; round++) {
      const { tenantId, userId } = s.pick(s.scopes);
      const q = { tenantId, userId, terms: TERMS, limit: 100 };
      if (round % 3 === 0) await b.index.facts(q); // held, so the racing read may catch up or reload
      const before = { facts: await reference.facts(q), ranked: await reference.messagesMentioning(q) };
      const write =
        round % 4 === 3
          ? a.index.deleteByMessages(tenantId, Array.from({ length: 10 }, () => s.pick(s.messages)))
          : a.index.merge(s.merge().map((item) => ({ ...item, tenantId, userId })));
      const [facts, ranked] = await Promise.all([b.index.facts(q), b.index.messagesMentioning(q), write]);
      const after = { facts: await reference.facts(q), ranked: await reference.messagesMentioning(q) };
      expect([before.facts, after.facts]).toContainEqual(facts);
      expect([before.ranked, after.ranked]).toContainEqual(ranked);
      expect(await b.index.facts(q)).toEqual(after.facts);
      expect(await b.index.messagesMentioning(q)).toEqual(after.ranked);
    }
  });

  it("holds a large user beside a small one the budget cannot hold as well, and answers the small one from the tables", async () => {
    const tenantId = uid("t");
    const [large, small] = [uid("u"), uid("u")];
    await reference.merge([...mentioning(tenantId, large, 60), ...mentioning(tenantId, small, 5)]);
    const [largeRows, smallRows] = [await rowsOf(tenantId, large), await rowsOf(tenantId, small)];
    expect(largeRows).toBeGreaterThan(10 * smallRows);
    // Room for the large user, not for both: before evict.ts weighed a newcomer, each switch
    // between the two evicted the other, and every read of either loaded it whole again.
    const b = process({ maxRows: largeRows + Math.floor(smallRows / 2) });
    for (let round = 0; round < 10; round++) {
      for (const userId of [large, small]) {
        const q = { tenantId, userId, terms: TERMS, limit: 100 };
        expect(await b.index.facts(q)).toEqual(await reference.facts(q));
        expect(await b.index.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
        await b.index.loads();
      }
    }
    // One whole load each: the large user's, held since, and the small user's, not held (it
    // would push out the large user, used between each of its reads) and not loaded again.
    expect(b.counts.whole).toBe(2);
  });

  for (const via of ["its own version check", "the context statement's delta"] as const) {
    it(`a held user grown past the budget by another process's merges, read through ${via}, pushes out the least recently used other`, async () => {
      const tenantId = uid("t");
      const [other, grown] = [uid("u"), uid("u")];
      await reference.merge([...mentioning(tenantId, other, 10), ...mentioning(tenantId, grown, 10)]);
      const before = await rowsOf(tenantId, grown);
      // Room for both as they are, not once one has grown.
      const b = process({ maxRows: (await rowsOf(tenantId, other)) + 2 * before });
      const archive = createSqlArchive({ sql });
      // The graph's version as a context call reads it, with the rows merged since the version held.
      const asOf = async (userId: string) => {
        const graphDelta = b.index.catchUpFrom!(tenantId, userId);
        return (await archive.readContext!(tenantId, uid("s"), { userId, memoryLimit: 10, ...(graphDelta ? { graphDelta } : {}) })).graphVersion!;
      };
      const read = async (userId: string) => {
        const q = { tenantId, userId, terms: TERMS, limit: 100 };
        const at = via === "its own version check" ? {} : { asOf: await asOf(userId) };
        expect(await b.index.facts({ ...q, ...at })).toEqual(await reference.facts(q));
        expect(await b.index.messagesMentioning({ ...q, ...at })).toEqual(await reference.messagesMentioning(q));
        await b.index.loads();
      };
      for (const userId of [other, grown, other, grown]) await read(userId);
      // Both held: a context call would ask either for the rows merged since its version.
      expect(b.index.catchUpFrom!(tenantId, other)).not.toBeNull();
      expect(b.index.catchUpFrom!(tenantId, grown)).not.toBeNull();
      const { whole } = b.counts;
      await reference.merge(mentioning(tenantId, grown, 30, 10));
      expect(await rowsOf(tenantId, grown)).toBeGreaterThan(2 * before);
      await read(grown);
      // The grown user caught up in place; the other, least recently used, went.
      expect(b.counts.whole).toBe(whole);
      expect(b.index.catchUpFrom!(tenantId, grown)).not.toBeNull();
      expect(b.index.catchUpFrom!(tenantId, other)).toBeNull();
    });
  }

  it("holds every write when both write one user at once while reads land", async () => {
    const s = scenario(41);
    const a = process();
    const b = process();
    const { tenantId, userId } = s.scopes[1]!;
    const q = { tenantId, userId, terms: TERMS, limit: 200 };
    await Promise.all([a.index.facts(q), b.index.facts(q)]);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      const on = i % 2 ? a.index : b.index;
      work.push(on.merge(s.merge().map((item) => ({ ...item, tenantId, userId }))));
      work.push(on.messagesMentioning(q), (i % 2 ? b.index : a.index).facts(q));
    }
    await Promise.all(work);
    for (const index of [a.index, b.index]) {
      expect(await index.facts(q)).toEqual(await reference.facts(q));
      expect(await index.messagesMentioning(q)).toEqual(await reference.messagesMentioning(q));
    }
  });
});
