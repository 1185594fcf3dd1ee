// The behaviour every GraphStore adapter must show (tables in PGlite, Neo4j, ...). An
// adapter's test file calls graphStoreContract() with a setup that builds it; tests an
// adapter cannot pass are listed by title in `skip`. Every test works in fresh tenants
// and users, so the suite can share one database with anything else.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GraphMerge, GraphStore } from "../../lib/core/ports.ts";
import type { EntityType, Extraction } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";

export interface GraphStoreSetup {
  store: GraphStore;
  cleanup?: () => Promise<void>;
}

export interface ContractOptions {
  /** Titles of tests this adapter is known not to pass. */
  skip?: string[];
  /** messagesMentioning says every hit's session (SessionScoredId.sessionId); others may leave it out. */
  sessions?: boolean;
}

type Rel = [from: string, type: string, to: string];

function extraction(entities: [string, EntityType][], relations: Rel[] = []): Extraction {
  return {
    entities: entities.map(([name, type]) => ({ name, type })),
    relations: relations.map(([from, type, to]) => ({ from, type, to })),
  };
}

export function graphStoreContract(name: string, setup: () => Promise<GraphStoreSetup>, options: ContractOptions = {}): void {
  const skip = new Set(options.skip ?? []);
  const test = (title: string, fn: () => Promise<void>) => (skip.has(title) ? it.skip : it)(title, fn);

  describe(`GraphStore contract: ${name}`, () => {
    let store: GraphStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ store, cleanup } = await setup());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    /** A fresh tenant and user, and a helper that builds merges for them. */
    function scope(tenantId = uid("tenant"), userId = uid("user")) {
      const sessionId = uid("session");
      const item = (messageId: string, x: Extraction): GraphMerge => ({ tenantId, userId, sessionId, messageId, extraction: x });
      const counts = () => store.counts(tenantId, userId);
      const mentioning = (terms: string[], limit = 10) => store.messagesMentioning({ tenantId, userId, terms, limit });
      const facts = (terms: string[], limit = 10) => store.facts({ tenantId, userId, terms, limit });
      return { tenantId, userId, sessionId, item, counts, mentioning, facts };
    }

    // Three messages about Caroline, Melanie and a support group.
    function conversation(s: ReturnType<typeof scope>) {
      return [
        s.item("m1", extraction([["Caroline", "person"], ["LGBTQ support group", "organization"]], [["Caroline", "attended", "LGBTQ support group"]])),
        s.item("m2", extraction([["Caroline", "person"], ["Melanie", "person"]], [["Caroline", "co_mentioned", "Melanie"]])),
        s.item("m3", extraction([["caroline", "person"], ["LGBTQ Support Group", "organization"], ["Sweden", "place"]], [
          ["Caroline", "attended", "LGBTQ support group"],
          ["Caroline", "moved from", "Sweden"],
        ])),
      ];
    }

    test("names its adapter and answers ping", async () => {
      expect(store.adapter).toMatch(/\S/);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    test("merge stores entities by (type, normalised name), a mention per entity and message, and relations", async () => {
      const s = scope();
      await store.merge(conversation(s));
      // caroline, lgbtq support group, melanie, sweden; 2 + 2 + 3 mentions;
      // attended, co_mentioned, moved from.
      expect(await s.counts()).toEqual({ entities: 4, relations: 3, mentions: 7 });
    });

    test("merging the same messages again changes no count or weight", async () => {
      const s = scope();
      const items = conversation(s);
      await store.merge(items);
      const counts = await s.counts();
      const facts = await s.facts([]);
      const ranked = await s.mentioning(["caroline", "sweden"]);

      await store.merge(items);
      await store.merge([items[2]!, items[0]!, items[2]!]); // repeats within one batch too
      expect(await s.counts()).toEqual(counts);
      expect(await s.facts([])).toEqual(facts);
      expect(await s.mentioning(["caroline", "sweden"])).toEqual(ranked);
    });

    test("a batch that names the same entity twice in one message counts one mention", async () => {
      const s = scope();
      await store.merge([s.item("m1", extraction([["Paris", "place"], ["paris", "place"], [" PARIS ", "place"]]))]);
      expect(await s.counts()).toEqual({ entities: 1, relations: 0, mentions: 1 });
    });

    test("merge skips relations whose ends are not entities of the same extraction", async () => {
      const s = scope();
      await store.merge([
        s.item("m1", extraction([["Ann", "person"]], [["Ann", "knows", "Bob"], ["Ann", "likes", "Ann"]])),
        s.item("m2", extraction([], [["Ann", "knows", "Bob"]])),
      ]);
      expect(await s.counts()).toEqual({ entities: 1, relations: 0, mentions: 1 });
      await expect(store.merge([])).resolves.toBeUndefined();
    });

    test("facts lists relations strongest first, with names, weight and supporting message ids", async () => {
      const s = scope();
      await store.merge(conversation(s));
      const facts = await s.facts(["caroline"]);
      expect(facts.map((f) => f.weight)).toEqual([...facts.map((f) => f.weight)].sort((a, b) => b - a));
      expect(facts[0]).toMatchObject({ subject: "Caroline", predicate: "attended", object: "LGBTQ support group", weight: 2 });
      expect([...facts[0]!.messageIds].sort()).toEqual(["m1", "m3"]);
      expect(facts).toHaveLength(3);
      for (const f of facts.slice(1)) expect(f.weight).toBe(1);
      const moved = facts.find((f) => f.predicate === "moved from");
      expect(moved).toMatchObject({ subject: "Caroline", object: "Sweden", messageIds: ["m3"] });
    });

    test("facts about terms only include relations touching the named entities", async () => {
      const s = scope();
      await store.merge(conversation(s));
      const facts = await s.facts(["sweden"]);
      expect(facts).toEqual([{ subject: "Caroline", predicate: "moved from", object: "Sweden", weight: 1, messageIds: ["m3"] }]);
      expect(await s.facts(["atlantis"])).toEqual([]);
    });

    test("facts without terms are the user's strongest relations, up to limit", async () => {
      const s = scope();
      await store.merge(conversation(s));
      const top = await s.facts([], 1);
      expect(top).toHaveLength(1);
      expect(top[0]).toMatchObject({ predicate: "attended", weight: 2 });
      expect(await s.facts([], 0)).toEqual([]);
    });

    test("messagesMentioning matches a name equal to a term or whose words are all among the terms", async () => {
      const s = scope();
      await store.merge([
        s.item("ny", extraction([["New York", "place"]])),
        s.item("york", extraction([["York", "place"]])),
        s.item("acme", extraction([["Acme Inc.", "organization"]])),
        s.item("boa", extraction([["Bank of America", "organization"]])),
        s.item("obrien", extraction([["Sean O'Brien", "person"]])),
        s.item("zurich", extraction([["Zürich", "place"]])),
      ]);
      expect((await s.mentioning(["new", "york", "trip"])).map((r) => r.id).sort()).toEqual(["ny", "york"]);
      // "new" alone is not New York.
      expect((await s.mentioning(["new"])).map((r) => r.id)).toEqual([]);
      expect((await s.mentioning(["york"])).map((r) => r.id)).toEqual(["york"]);
      expect((await s.mentioning(["new york"])).map((r) => r.id)).toEqual(["ny"]);
      // Punctuation in a name does not stop its words from matching.
      expect((await s.mentioning(["acme", "inc"])).map((r) => r.id)).toEqual(["acme"]);
      // Terms are cut like a search query: stopwords dropped, apostrophes removed in place.
      expect((await s.mentioning(["bank", "america"])).map((r) => r.id)).toEqual(["boa"]);
      expect((await s.mentioning(["sean", "obrien"])).map((r) => r.id)).toEqual(["obrien"]);
      expect((await s.mentioning(["zürich"])).map((r) => r.id)).toEqual(["zurich"]);
      expect(await s.mentioning([])).toEqual([]);
    });

    test("messagesMentioning says a hit's session as the merge of its message gave it", async () => {
      const s = scope();
      const other = uid("session");
      await store.merge([
        s.item("a1", extraction([["Caroline", "person"]])),
        { ...s.item("b1", extraction([["Caroline", "person"], ["Sweden", "place"]])), sessionId: other },
        s.item("a2", extraction([["Sweden", "place"]])),
      ]);
      const ranked = await s.mentioning(["caroline", "sweden"]);
      expect(ranked.map((r) => r.id)).toEqual(["b1", "a2", "a1"]);
      const want: Record<string, string> = { a1: s.sessionId, a2: s.sessionId, b1: other };
      for (const r of ranked) {
        if (options.sessions) expect(r.sessionId).toBe(want[r.id]);
        else if (r.sessionId !== undefined) expect(r.sessionId).toBe(want[r.id]);
      }
    });

    test("messagesMentioning ranks messages with more and rarer matched entities first", async () => {
      const s = scope();
      const items = [
        // Caroline is everywhere; the pottery class is rare.
        ...Array.from({ length: 6 }, (_, i) => s.item(`c${i}`, extraction([["Caroline", "person"]]))),
        s.item("both", extraction([["Caroline", "person"], ["pottery class", "topic"]])),
        s.item("rare", extraction([["pottery class", "topic"]])),
        s.item("other", extraction([["Melanie", "person"]])),
      ];
      await store.merge(items);
      const ranked = await s.mentioning(["caroline", "pottery", "class"]);
      expect(ranked.map((r) => r.id).slice(0, 2)).toEqual(["both", "rare"]);
      expect(ranked.map((r) => r.id).sort()).toEqual(["both", "c0", "c1", "c2", "c3", "c4", "c5", "rare"]);
      const scores = ranked.map((r) => r.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      for (const r of ranked) expect(r.score).toBeGreaterThan(0);
      expect(await s.mentioning(["caroline", "pottery", "class"], 3)).toHaveLength(3);
      expect(await s.mentioning(["caroline"], 0)).toEqual([]);
    });

    test("isolates tenants and users", async () => {
      const a = scope();
      const sameTenantOtherUser = scope(a.tenantId);
      const otherTenantSameUser = scope(uid("tenant"), a.userId);
      await store.merge(conversation(a));
      await store.merge([sameTenantOtherUser.item("x1", extraction([["Caroline", "person"], ["Oslo", "place"]], [["Caroline", "lives in", "Oslo"]]))]);

      for (const b of [sameTenantOtherUser, otherTenantSameUser]) {
        const ids = (await b.mentioning(["caroline", "melanie", "sweden"])).map((r) => r.id);
        expect(ids.filter((id) => id.startsWith("m"))).toEqual([]);
        expect((await b.facts([])).map((f) => f.predicate)).not.toContain("attended");
      }
      expect(await otherTenantSameUser.counts()).toEqual({ entities: 0, relations: 0, mentions: 0 });
      expect(await sameTenantOtherUser.counts()).toEqual({ entities: 2, relations: 1, mentions: 2 });
      expect((await a.facts([])).map((f) => f.predicate)).not.toContain("lives in");

      // Deleting in one scope leaves the others alone.
      await store.deleteByUser(sameTenantOtherUser.tenantId, sameTenantOtherUser.userId);
      await store.deleteByMessages(otherTenantSameUser.tenantId, ["m1", "m2", "m3"]);
      expect(await a.counts()).toEqual({ entities: 4, relations: 3, mentions: 7 });
    });

    test("deleteByMessages removes mentions and evidence, then entities and relations left with none", async () => {
      const s = scope();
      await store.merge(conversation(s));
      await store.deleteByMessages(s.tenantId, ["m3"]);
      // Sweden and "moved from" existed only in m3; "attended" keeps m1.
      expect(await s.counts()).toEqual({ entities: 3, relations: 2, mentions: 4 });
      const attended = (await s.facts(["caroline"])).find((f) => f.predicate === "attended");
      expect(attended).toMatchObject({ weight: 1, messageIds: ["m1"] });
      expect(await s.mentioning(["sweden"])).toEqual([]);
      expect((await s.mentioning(["caroline"])).map((r) => r.id).sort()).toEqual(["m1", "m2"]);

      await store.deleteByMessages(s.tenantId, ["m1", "m2", "unknown"]);
      expect(await s.counts()).toEqual({ entities: 0, relations: 0, mentions: 0 });
      expect(await s.facts([])).toEqual([]);
      await expect(store.deleteByMessages(s.tenantId, [])).resolves.toBeUndefined();
    });

    test("a message merged again after its deletion counts again", async () => {
      const s = scope();
      const items = conversation(s);
      await store.merge(items);
      await store.deleteByMessages(s.tenantId, ["m1"]);
      await store.merge([items[0]!]);
      expect(await s.counts()).toEqual({ entities: 4, relations: 3, mentions: 7 });
      expect((await s.facts(["caroline"]))[0]).toMatchObject({ predicate: "attended", weight: 2 });
    });

    test("deleteByUser removes the user's whole graph", async () => {
      const s = scope();
      await store.merge(conversation(s));
      await store.deleteByUser(s.tenantId, s.userId);
      expect(await s.counts()).toEqual({ entities: 0, relations: 0, mentions: 0 });
      expect(await s.mentioning(["caroline"])).toEqual([]);
      expect(await s.facts([])).toEqual([]);
      // The graph can be rebuilt afterwards from the same messages.
      await store.merge(conversation(s));
      expect(await s.counts()).toEqual({ entities: 4, relations: 3, mentions: 7 });
    });
  });
}
