// The Neo4j graph store against the scripted Bolt stub (test/stand-ins/bolt-stub.ts): no
// Cypher runs here, so this checks what the stub can see, for every port method: the
// statements sent and their parameters (tenant and user in every one, values only as
// parameters, integers where Cypher needs integers), the transactions they ran in, and how
// scripted records come back (order kept, Neo4j Integers as numbers). The behaviour of the
// Cypher itself is the contract suite's job, run against a real server in
// graph-store.neo4j.int.test.ts whenever NEO4J_URI is set.

import neo4j, { type Driver } from "neo4j-driver";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { applyNeo4jSchema, createNeo4jGraphStore, mergeRows, NEO4J_SCHEMA, neo4jSchema } from "../../lib/adapters/neo4j/graph-store.ts";
import { isStrataError, StrataError } from "../../lib/core/errors.ts";
import type { GraphMerge, GraphStore } from "../../lib/core/ports.ts";
import type { EntityType, Extraction } from "../../lib/core/types.ts";
import { startBoltStub, type BoltStub, type ReceivedQuery, type ScriptEntry } from "../stand-ins/bolt-stub.ts";

const T = "tenant-Ω1";
const U = "user-7";

// Statements told apart by a phrase each one has.
const is = {
  ping: /^RETURN 1 AS ok$/,
  mergeMentions: /UNWIND \$mentions AS row/,
  mergeEvidence: /UNWIND \$evidence AS row/,
  mentioning: /AS score/,
  factsAbout: /byNames[\s\S]*RETURN s\.name AS subject/,
  factsStrongest: /^\s*MATCH \(s:\w*Entity[\s\S]*RETURN s\.name AS subject/,
  counts: /RETURN count\(e\) AS entities/,
  deleteEvidence: /DELETE ev/,
  deleteMentions: /DETACH DELETE m\b/,
  deleteUser: /AS deleted$/,
};

const empty = { fields: [], records: [] };

function extraction(entities: [string, EntityType][], relations: [string, string, string][] = []): Extraction {
  return {
    entities: entities.map(([name, type]) => ({ name, type })),
    relations: relations.map(([from, type, to]) => ({ from, type, to })),
  };
}

function item(messageId: string, x: Extraction, scope: Partial<GraphMerge> = {}): GraphMerge {
  return { tenantId: T, userId: U, sessionId: "s1", messageId, extraction: x, ...scope };
}

/** Node patterns with a label must carry the tenant (and, where the port gives it, the user) in their property map. */
function expectScoped(q: ReceivedQuery, withUser = true): void {
  const starts = [...q.query.matchAll(/(?:MATCH|MERGE) \((\w+):(\w+) (\{[^}]*\})\)/g)];
  expect(starts.length, `no scoped node pattern in ${q.query}`).toBeGreaterThan(0);
  for (const [, , , props] of starts) {
    expect(props).toMatch(/tenantId: (\$tenantId|row\.tenantId)/);
    if (withUser) expect(props).toMatch(/userId: (\$userId|row\.userId)/);
  }
}

/** No value of the call may appear in the query text: values travel as parameters. */
function expectNoInlinedValues(q: ReceivedQuery, values: string[]): void {
  for (const v of values) expect(q.query).not.toContain(v);
}

describe("neo4j graph store over Bolt (stub)", () => {
  let stub: BoltStub;
  let driver: Driver;
  let store: GraphStore;

  const script = (...entries: ScriptEntry[]) => {
    stub.script = entries;
  };

  beforeAll(async () => {
    stub = await startBoltStub();
    driver = neo4j.driver(stub.uri, neo4j.auth.basic("neo4j", "pw"), { maxConnectionPoolSize: 2 });
    store = createNeo4jGraphStore({ driver });
  });
  afterAll(async () => {
    await store?.close();
    await driver?.close();
    await stub?.close();
  });
  beforeEach(() => {
    stub.clear();
    stub.script = [];
  });

  it("is named neo4j and pings with a read", async () => {
    script({ match: is.ping, reply: { fields: ["ok"], records: [[1n]] } });
    expect(store.adapter).toBe("neo4j");
    await expect(store.ping()).resolves.toBeUndefined();
    expect(stub.received).toHaveLength(1);
    expect(stub.transactions[0]!.metadata.mode).toBe("r");
  });

  describe("merge", () => {
    const batch = () => [
      item("m1", extraction([["Caroline", "person"], ["LGBTQ support group", "organization"]], [["Caroline", "attended", "LGBTQ support group"]])),
      item("m2", extraction([["Melanie", "person"], ["  caroline ", "person"], ["caroline", "person"]], [["Melanie", "co_mentioned", "Caroline"]])),
      item("m2", extraction([["Caroline", "person"]])), // a repeat within the batch
      item("x1", extraction([["Oslo", "place"]]), { tenantId: "tenant-2", userId: "user-9", sessionId: "s9" }),
    ];

    it("sends one write transaction: UNWIND over mention rows, then over evidence rows, committed", async () => {
      script({ match: is.mergeMentions, reply: empty }, { match: is.mergeEvidence, reply: empty });
      await store.merge(batch());

      expect(stub.received.map((q) => (is.mergeMentions.test(q.query) ? "mentions" : "evidence"))).toEqual(["mentions", "evidence"]);
      expect(stub.transactions).toHaveLength(1);
      expect(stub.transactions[0]).toMatchObject({ end: "COMMIT" });
      expect(stub.transactions[0]!.metadata.mode).toBeUndefined(); // a write transaction
      for (const q of stub.received) {
        expect(q.transaction).toBe(stub.transactions[0]!.id);
        expect(Object.keys(q.parameters)).toHaveLength(1); // only the batch: no tenant, user or name in the text
        expectScoped(q);
        expectNoInlinedValues(q, [T, U, "Caroline", "caroline", "m1", "attended"]);
      }
    });

    it("dedupes rows, keeps the first surface form, and carries tenant and user in every row", async () => {
      script({ match: is.mergeMentions, reply: empty }, { match: is.mergeEvidence, reply: empty });
      await store.merge(batch());
      const mentions = stub.received[0]!.parameters.mentions as Record<string, unknown>[];
      const evidence = stub.received[1]!.parameters.evidence as Record<string, unknown>[];

      expect(mentions.map((r) => `${r.tenantId}/${r.userId}/${r.entityId}@${r.messageId}`)).toEqual([
        "tenant-2/user-9/place:oslo@x1",
        `${T}/${U}/organization:lgbtq support group@m1`,
        `${T}/${U}/person:caroline@m1`,
        `${T}/${U}/person:caroline@m2`,
        `${T}/${U}/person:melanie@m2`,
      ]);
      expect(mentions[3]).toEqual({
        tenantId: T,
        userId: U,
        entityId: "person:caroline",
        messageId: "m2",
        sessionId: "s1",
        name: "Caroline", // first surface in the batch, not "  caroline "
        type: "person",
        norm: "caroline",
        words: ["caroline"],
        anchor: "caroline",
      });
      expect(mentions[1]).toMatchObject({ words: ["lgbtq", "support", "group"], anchor: "support" });
      // co_mentioned is symmetric: stored once, ends in id order.
      expect(evidence).toEqual([
        { tenantId: T, userId: U, fromId: "person:caroline", type: "attended", toId: "organization:lgbtq support group", messageId: "m1" },
        { tenantId: T, userId: U, fromId: "person:caroline", type: "co_mentioned", toId: "person:melanie", messageId: "m2" },
      ]);
    });

    it("skips relations whose ends are not entities of the message, and evidence when none is left", async () => {
      script({ match: is.mergeMentions, reply: empty });
      await store.merge([item("m1", extraction([["Ann", "person"]], [["Ann", "knows", "Bob"], ["Ann", "likes", "ann"]]))]);
      expect(stub.received).toHaveLength(1);
      expect(stub.received[0]!.parameters.mentions).toHaveLength(1);
    });

    it("sends nothing for an empty batch or one without entities", async () => {
      await store.merge([]);
      await store.merge([item("m1", extraction([], [["Ann", "knows", "Bob"]])), item("m2", extraction([["  ", "topic"]]))]);
      expect(stub.messages.filter((m) => m.type === "RUN" || m.type === "BEGIN")).toEqual([]);
    });

    it("rolls back and fails with a StrataError when a statement fails", async () => {
      script(
        { match: is.mergeMentions, reply: empty },
        { match: is.mergeEvidence, reply: { failure: { code: "Neo.ClientError.Schema.ConstraintValidationFailed", message: "already exists" } } },
      );
      const error = await store.merge(batch()).catch((e: unknown) => e);
      expect(isStrataError(error)).toBe(true);
      expect(error).toMatchObject({ category: "upstream", code: "UPSTREAM_ERROR", details: { neo4jCode: "Neo.ClientError.Schema.ConstraintValidationFailed" } });
      expect((error as StrataError).message).toMatch(/^neo4j: already exists/);
      expect(stub.transactions[0]!.end).not.toBe("COMMIT");
    });
  });

  describe("messagesMentioning", () => {
    it("sends cleaned terms and an integer limit, and maps rows in order with numeric scores", async () => {
      script({ match: is.mentioning, reply: { fields: ["id", "score"], records: [["m3", 1.25], ["m1", 1n], ["m2", 0.5]] } });
      const ranked = await store.messagesMentioning({ tenantId: T, userId: U, terms: [" Caroline ", "caroline", "PARIS", ""], limit: 10.7 });
      expect(ranked).toEqual([
        { id: "m3", score: 1.25 },
        { id: "m1", score: 1 },
        { id: "m2", score: 0.5 },
      ]);
      const [q] = stub.received;
      expect(q!.parameters).toEqual({ tenantId: T, userId: U, terms: ["caroline", "paris"], limit: 10n });
      expect(q!.query).toMatch(/ORDER BY score DESC, id DESC\s+LIMIT \$limit$/);
      expect(q!.query).toContain("1.0 / (1.0 + log(");
      expectScoped(q!);
      expectNoInlinedValues(q!, [T, U, "caroline", "paris"]);
      expect(stub.transactions[0]!.metadata.mode).toBe("r");
    });

    it("asks nothing when no term is left or the limit is 0", async () => {
      expect(await store.messagesMentioning({ tenantId: T, userId: U, terms: [" ", ""], limit: 5 })).toEqual([]);
      expect(await store.messagesMentioning({ tenantId: T, userId: U, terms: ["caroline"], limit: 0 })).toEqual([]);
      expect(stub.received).toEqual([]);
    });
  });

  describe("facts", () => {
    const rows = {
      fields: ["subject", "predicate", "object", "weight", "messageIds"],
      records: [
        ["Caroline", "attended", "LGBTQ support group", 2n, ["m3", "m1"]],
        ["Caroline", "moved from", "Sweden", 1n, ["m3"]],
      ],
    };
    const expected = [
      { subject: "Caroline", predicate: "attended", object: "LGBTQ support group", weight: 2, messageIds: ["m3", "m1"] },
      { subject: "Caroline", predicate: "moved from", object: "Sweden", weight: 1, messageIds: ["m3"] },
    ];

    it("about terms: sends the terms, an integer limit and evidence count, and maps the fields", async () => {
      script({ match: is.factsAbout, reply: rows });
      expect(await store.facts({ tenantId: T, userId: U, terms: ["Caroline"], limit: 5 })).toEqual(expected);
      const [q] = stub.received;
      expect(q!.parameters).toEqual({ tenantId: T, userId: U, terms: ["caroline"], limit: 5n, evidence: 3n });
      expect(q!.query).toMatch(/LIMIT \$evidence/);
      expectScoped(q!);
      expectNoInlinedValues(q!, [T, U, "caroline"]);
    });

    it("without terms: the user's strongest relations, no terms sent", async () => {
      script({ match: is.factsStrongest, reply: rows });
      expect(await store.facts({ tenantId: T, userId: U, terms: [], limit: 2 })).toEqual(expected);
      const [q] = stub.received;
      expect(q!.parameters).toEqual({ tenantId: T, userId: U, limit: 2n, evidence: 3n });
      expect(q!.query).toMatch(/ORDER BY r\.weight DESC, s\.id, r\.type, o\.id\s+LIMIT \$limit/);
      expectScoped(q!);
    });

    it("asks nothing for a zero limit or only blank terms", async () => {
      expect(await store.facts({ tenantId: T, userId: U, terms: [], limit: 0 })).toEqual([]);
      expect(await store.facts({ tenantId: T, userId: U, terms: ["  "], limit: 3 })).toEqual([]);
      expect(stub.received).toEqual([]);
    });
  });

  it("counts maps Integers to numbers", async () => {
    script({ match: is.counts, reply: { fields: ["entities", "relations", "mentions"], records: [[4n, 3n, 7n]] } });
    expect(await store.counts(T, U)).toEqual({ entities: 4, relations: 3, mentions: 7 });
    const [q] = stub.received;
    expect(q!.parameters).toEqual({ tenantId: T, userId: U });
    expectScoped(q!);
    expectNoInlinedValues(q!, [T, U]);
  });

  describe("deleteByMessages", () => {
    it("runs evidence then mentions in one transaction per batch of ids, scoped by tenant", async () => {
      script({ match: is.deleteEvidence, reply: empty }, { match: is.deleteMentions, reply: empty });
      const ids = Array.from({ length: 1001 }, (_, i) => `msg-${i}`);
      await store.deleteByMessages(T, [...ids, "msg-0"]);

      expect(stub.transactions.map((t) => t.end)).toEqual(["COMMIT", "COMMIT", "COMMIT"]);
      const byTx = stub.transactions.map((t) => stub.received.filter((q) => q.transaction === t.id));
      for (const statements of byTx) {
        expect(statements.map((q) => (is.deleteEvidence.test(q.query) ? "evidence" : "mentions"))).toEqual(["evidence", "mentions"]);
        for (const q of statements) {
          expect(Object.keys(q.parameters).sort()).toEqual(["messageIds", "tenantId"]);
          expect(q.parameters.tenantId).toBe(T);
          expectScoped(q, false);
          expectNoInlinedValues(q, [T, "msg-1"]);
        }
      }
      const sent = byTx.map((statements) => statements[0]!.parameters.messageIds as string[]);
      expect(sent.map((b) => b.length)).toEqual([500, 500, 1]);
      expect(sent.flat()).toEqual(ids);
    });

    it("sends nothing for no ids", async () => {
      await store.deleteByMessages(T, []);
      expect(stub.messages.filter((m) => m.type === "RUN")).toEqual([]);
    });
  });

  it("deleteByUser deletes in batches until one comes back short", async () => {
    let calls = 0;
    script({ match: is.deleteUser, reply: () => ({ fields: ["deleted"], records: [[++calls === 1 ? 500n : 12n]] }) });
    await store.deleteByUser(T, U);
    expect(stub.received).toHaveLength(2);
    expect(stub.transactions.map((t) => t.end)).toEqual(["COMMIT", "COMMIT"]);
    for (const q of stub.received) {
      expect(q.parameters).toEqual({ tenantId: T, userId: U, batch: 500n });
      expectScoped(q);
      expectNoInlinedValues(q, [T, U]);
    }
  });

  it("wraps a server failure on a read in a StrataError with the Neo4j code", async () => {
    script({ match: is.counts, reply: { failure: { code: "Neo.ClientError.Statement.SyntaxError", message: "Invalid input 'COUNT'" } } });
    const error = await store.counts(T, U).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StrataError);
    expect(error).toMatchObject({ category: "upstream", details: { neo4jCode: "Neo.ClientError.Statement.SyntaxError" } });
    expect((error as Error).message).toContain("(Neo.ClientError.Statement.SyntaxError)");
  });

  it("wraps an unreachable server in a StrataError", async () => {
    const dead = await startBoltStub();
    const uri = dead.uri;
    await dead.close();
    const d = neo4j.driver(uri, neo4j.auth.basic("neo4j", "pw"), { maxTransactionRetryTime: 0, connectionTimeout: 1000 });
    const s = createNeo4jGraphStore({ driver: d });
    try {
      const error = await s.ping().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StrataError);
      expect(error).toMatchObject({ category: "upstream" });
    } finally {
      await d.close();
    }
  });

  it("uses the given database and label prefix in every statement", async () => {
    const prefixed = createNeo4jGraphStore({ driver, database: "stage-pr42", labelPrefix: "pr42_" });
    script(
      { match: is.mergeMentions, reply: empty },
      { match: is.counts, reply: { fields: ["entities", "relations", "mentions"], records: [[1n, 0n, 1n]] } },
      { match: is.ping, reply: { fields: ["ok"], records: [[1n]] } },
    );
    await prefixed.merge([item("m1", extraction([["Ann", "person"]]))]);
    await prefixed.counts(T, U);
    expect(stub.transactions.map((t) => t.metadata.db)).toEqual(["stage-pr42", "stage-pr42"]);
    for (const q of stub.received.slice(0, 2)) {
      expect(q.query).toMatch(/:pr42_Entity\b/);
      expect(q.query).not.toMatch(/[(:]Entity\b/);
    }
    expect(stub.received[0]!.query).toMatch(/:pr42_Message\b/);
    await prefixed.close();
    // The driver was given, not opened: it is still usable.
    await expect(driver.executeQuery("RETURN 1 AS ok").catch(() => "failed")).resolves.not.toBe("failed");
  });
});

describe("neo4j graph store configuration", () => {
  const config = { uri: "neo4j+s://abc.databases.neo4j.io", username: "neo4j", password: "pw" };
  const fails = (options: Parameters<typeof createNeo4jGraphStore>[0]) => {
    try {
      createNeo4jGraphStore(options);
    } catch (e) {
      return e;
    }
    throw new Error("expected a configuration error");
  };

  it("names the fix when the configuration is incomplete or wrong", () => {
    expect(fails({ config: { ...config, password: "" } })).toMatchObject({
      category: "config",
      message: "NEO4J_URI is set but NEO4J_PASSWORD is not: set both, or unset NEO4J_URI to use the embedded graph",
    });
    expect(fails({ config: { ...config, username: " " } })).toMatchObject({ category: "config", message: expect.stringMatching(/NEO4J_USERNAME/) });
    expect(fails({ config: { ...config, uri: "http://localhost:7474" } })).toMatchObject({ category: "config", message: expect.stringMatching(/HTTP port/) });
    expect(fails({ config: { ...config, uri: "localhost:7687" } })).toMatchObject({ category: "config" });
    expect(fails({ config: { ...config, database: " " } })).toMatchObject({ category: "config", message: expect.stringMatching(/NEO4J_DATABASE/) });
    expect(fails({ config, labelPrefix: "42pr" })).toMatchObject({ category: "config", message: expect.stringMatching(/labelPrefix/) });
    expect(fails({ config, labelPrefix: "pr`) DETACH DELETE (n" })).toMatchObject({ category: "config" });
  });

  it("opens its own driver from config and closes it", async () => {
    const stub = await startBoltStub([{ match: is.ping, reply: { fields: ["ok"], records: [[1n]] } }], { auth: { username: "neo4j", password: "pw" } });
    try {
      const store = createNeo4jGraphStore({ config: { uri: stub.uri, username: "neo4j", password: "pw", database: "graphdb" } });
      await store.ping();
      expect(stub.transactions[0]!.metadata.db).toBe("graphdb");
      expect(stub.messages.find((m) => m.type === "HELLO")!.fields[0]).toMatchObject({ user_agent: "strata" });
      await store.close();
      await vi.waitFor(() => expect(stub.messages.at(-1)!.type).toBe("GOODBYE"), { timeout: 2000 });
    } finally {
      await stub.close();
    }
  });
});

describe("neo4j schema", () => {
  it("declares the keys as composite uniqueness constraints and the name lookups as indexes, all idempotent", () => {
    expect(NEO4J_SCHEMA).toEqual([
      "CREATE CONSTRAINT strata_entity_key IF NOT EXISTS FOR (e:Entity) REQUIRE (e.tenantId, e.userId, e.id) IS UNIQUE",
      "CREATE CONSTRAINT strata_message_key IF NOT EXISTS FOR (m:Message) REQUIRE (m.tenantId, m.id, m.userId) IS UNIQUE",
      "CREATE INDEX strata_entity_anchor IF NOT EXISTS FOR (e:Entity) ON (e.tenantId, e.userId, e.anchor)",
      "CREATE INDEX strata_entity_norm IF NOT EXISTS FOR (e:Entity) ON (e.tenantId, e.userId, e.norm)",
    ]);
    expect(neo4jSchema("pr42_")[0]).toBe(
      "CREATE CONSTRAINT strata_pr42_entity_key IF NOT EXISTS FOR (e:pr42_Entity) REQUIRE (e.tenantId, e.userId, e.id) IS UNIQUE",
    );
    // A stage name with a dash works, quoted.
    expect(neo4jSchema("pr-42_")[3]).toBe(
      "CREATE INDEX `strata_pr-42_entity_norm` IF NOT EXISTS FOR (e:`pr-42_Entity`) ON (e.tenantId, e.userId, e.norm)",
    );
  });

  it("applyNeo4jSchema runs each statement in auto-commit, then waits for the indexes", async () => {
    const stub = await startBoltStub([
      { match: /^CREATE (CONSTRAINT|INDEX) /, reply: empty },
      { match: /^CALL db\.awaitIndexes\(\$timeoutSeconds\)$/, reply: empty },
    ]);
    const d = neo4j.driver(stub.uri, neo4j.auth.basic("neo4j", "pw"));
    try {
      await applyNeo4jSchema(d, "graphdb");
      expect(stub.received.map((q) => q.query)).toEqual([...NEO4J_SCHEMA, "CALL db.awaitIndexes($timeoutSeconds)"]);
      expect(stub.received.every((q) => q.transaction === null && q.metadata.db === "graphdb")).toBe(true);
      expect(stub.received.at(-1)!.parameters).toEqual({ timeoutSeconds: 300n });
    } finally {
      await d.close();
      await stub.close();
    }
  });
});

describe("merge rows", () => {
  it("are sorted by key whatever the batch order, so concurrent merges lock in one order", () => {
    const a = item("m1", extraction([["Zed", "person"], ["Amy", "person"]], [["Zed", "knows", "Amy"]]));
    const b = item("m0", extraction([["Amy", "person"]]));
    const one = mergeRows([a, b]);
    const two = mergeRows([b, a]);
    expect(two).toEqual(one);
    expect(one.mentions.map((r) => `${r.entityId}@${r.messageId}`)).toEqual(["person:amy@m0", "person:amy@m1", "person:zed@m1"]);
  });

  it("give a name without words no words and no anchor (found by its normalised name only)", () => {
    const { mentions } = mergeRows([item("m1", extraction([["!!!", "topic"]]))]);
    expect(mentions[0]).toMatchObject({ entityId: "topic:!!!", norm: "!!!", words: null, anchor: null });
  });
});
