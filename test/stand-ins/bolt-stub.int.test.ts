// The Bolt stub against the real neo4j-driver: it negotiates a 5.x version, authenticates,
// answers scripted queries in auto-commit and in transactions, and its FAILUREs reach the
// caller as Neo4jError with the scripted code. What the adapters' stub tests rely on.

import neo4j, { type Driver, Neo4jError } from "neo4j-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BoltStruct, packValue, startBoltStub, unpackValue, type BoltStub } from "./bolt-stub.ts";

describe("PackStream codec", () => {
  it("round-trips every size class of each type", () => {
    const values: unknown[] = [
      null, true, false, 0n, -16n, 127n, -17n, -128n, 128n, -32768n, 32767n, -32769n, 2147483647n, -2147483649n,
      9007199254740993n, 1.5, -0.0, "", "é", "x".repeat(15), "x".repeat(16), "x".repeat(300), "x".repeat(70_000),
      [], Array.from({ length: 16 }, (_, i) => BigInt(i)), Array.from({ length: 300 }, () => null),
      {}, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}`])),
      new Uint8Array([1, 2, 255]), { nested: [{ a: [1n, "b", null] }] },
    ];
    for (const v of values) expect(unpackValue(packValue(v))).toEqual(v);
    const s = unpackValue(packValue(new BoltStruct(0x4e, [1n, ["Entity"], { id: "x" }]))) as BoltStruct;
    expect(s).toBeInstanceOf(BoltStruct);
    expect([s.signature, s.fields]).toEqual([0x4e, [1n, ["Entity"], { id: "x" }]]);
  });

  it("uses the smallest encoding, as the spec requires", () => {
    expect(packValue(1n)).toEqual(Buffer.from([0x01]));
    expect(packValue(-16n)).toEqual(Buffer.from([0xf0]));
    expect(packValue(-17n)).toEqual(Buffer.from([0xc8, 0xef]));
    expect(packValue(200n)).toEqual(Buffer.from([0xc9, 0x00, 0xc8]));
    expect(packValue("abc")).toEqual(Buffer.from([0x83, 0x61, 0x62, 0x63]));
    expect(packValue(1.0)).toEqual(Buffer.from([0xc1, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]));
  });
});

describe("bolt stub with neo4j-driver", () => {
  let stub: BoltStub;
  let driver: Driver;

  beforeAll(async () => {
    stub = await startBoltStub(
      [
        { match: /^RETURN 1 AS one$/, reply: { fields: ["one"], records: [[1n]] } },
        {
          match: /^UNWIND range\(1, \$n\)/,
          reply: (q) => ({
            fields: ["i", "half", "name"],
            records: Array.from({ length: Number(q.parameters.n) }, (_, i) => [BigInt(i + 1), (i + 1) / 2, `n${i + 1}`]),
          }),
        },
        { match: /^CREATE/, reply: { fields: [], records: [] } },
        { match: /BROKEN/, reply: { failure: { code: "Neo.ClientError.Statement.SyntaxError", message: "Invalid input 'BROKEN'" } } },
      ],
      { auth: { username: "neo4j", password: "secret" } },
    );
    driver = neo4j.driver(stub.uri, neo4j.auth.basic("neo4j", "secret"), { maxConnectionPoolSize: 2 });
  });

  afterAll(async () => {
    await driver?.close();
    await stub?.close();
  });

  it("negotiates Bolt 5.x, says HELLO then LOGON, and returns scripted records", async () => {
    const session = driver.session();
    try {
      const result = await session.run("RETURN 1 AS one");
      expect(result.records.map((r) => r.get("one"))).toEqual([neo4j.int(1)]);
    } finally {
      await session.close();
    }
    expect(stub.negotiated).toBe("5.8");
    const first = stub.messages.filter((m) => m.connection === stub.received.at(-1)!.connection).map((m) => m.type);
    expect(first.slice(0, 4)).toEqual(["HELLO", "LOGON", "RUN", "PULL"]);
    expect(stub.messages.find((m) => m.type === "LOGON")!.fields[0]).toMatchObject({ scheme: "basic", principal: "neo4j" });
  });

  it("records query text and parameters, integers as bigint and numbers as floats", async () => {
    stub.clear();
    const { records } = await driver.executeQuery("UNWIND range(1, $n) AS i RETURN i", { n: neo4j.int(3), f: 3, tags: ["a"], m: { k: null } });
    expect(records.map((r) => [r.get("i").toNumber(), r.get("half"), r.get("name")])).toEqual([
      [1, 0.5, "n1"],
      [2, 1, "n2"],
      [3, 1.5, "n3"],
    ]);
    expect(stub.received).toHaveLength(1);
    expect(stub.received[0]!.parameters).toEqual({ n: 3n, f: 3, tags: ["a"], m: { k: null } });
    // executeQuery runs in a managed transaction, committed.
    expect(stub.received[0]!.transaction).toBe(1);
    expect(stub.transactions).toEqual([expect.objectContaining({ id: 1, end: "COMMIT" })]);
  });

  it("streams in batches of the driver's fetch size", async () => {
    stub.clear();
    const session = driver.session({ fetchSize: 2 });
    try {
      const result = await session.run("UNWIND range(1, $n) AS i RETURN i", { n: neo4j.int(5) });
      expect(result.records.map((r) => r.get("i").toNumber())).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await session.close();
    }
    expect(stub.messages.filter((m) => m.type === "PULL").length).toBe(3);
  });

  it("runs explicit transactions with BEGIN metadata, COMMIT and ROLLBACK", async () => {
    stub.clear();
    const session = driver.session({ database: "graphdb", defaultAccessMode: neo4j.session.READ });
    try {
      await session.executeRead((tx) => tx.run("RETURN 1 AS one"));
      const tx = await session.beginTransaction();
      await tx.run("CREATE (n)");
      await tx.rollback();
    } finally {
      await session.close();
    }
    expect(stub.transactions.map((t) => [t.metadata.db, t.metadata.mode, t.end])).toEqual([
      ["graphdb", "r", "COMMIT"],
      ["graphdb", "r", "ROLLBACK"],
    ]);
    expect(stub.received.map((q) => q.transaction)).toEqual([1, 2]);
  });

  it("answers a scripted FAILURE with a Neo4jError carrying the code, and recovers after RESET", async () => {
    stub.clear();
    const error = await driver.executeQuery("MATCH (n) BROKEN").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Neo4jError);
    expect((error as Neo4jError).code).toBe("Neo.ClientError.Statement.SyntaxError");
    expect((error as Neo4jError).message).toContain("Invalid input 'BROKEN'");
    // The connection is usable again: the driver sent RESET, the stub left its FAILED state.
    const { records } = await driver.executeQuery("RETURN 1 AS one");
    expect(records[0]!.get("one").toNumber()).toBe(1);
    expect(stub.messages.map((m) => m.type)).toContain("RESET");
  });

  it("fails a query no script entry matches, naming it", async () => {
    const error = await driver.executeQuery("MATCH (x) RETURN x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Neo4jError);
    expect((error as Neo4jError).message).toContain("no script entry matches");
  });

  it("speaks the pre-5.7 FAILURE shape when pinned to an older version", async () => {
    const old = await startBoltStub([{ match: /BROKEN/, reply: { failure: { code: "Neo.ClientError.Statement.SyntaxError", message: "bad" } } }], {
      version: "5.4",
    });
    const d = neo4j.driver(old.uri, neo4j.auth.basic("neo4j", "any"));
    try {
      const error = await d.executeQuery("BROKEN").catch((e: unknown) => e);
      expect(old.negotiated).toBe("5.4");
      expect((error as Neo4jError).code).toBe("Neo.ClientError.Statement.SyntaxError");
    } finally {
      await d.close();
      await old.close();
    }
  });

  it("rejects wrong credentials as the server would", async () => {
    const d = neo4j.driver(stub.uri, neo4j.auth.basic("neo4j", "wrong"));
    try {
      const error = await d.executeQuery("RETURN 1 AS one").catch((e: unknown) => e);
      expect((error as Neo4jError).code).toBe("Neo.ClientError.Security.Unauthorized");
    } finally {
      await d.close();
    }
  });

  it("serves a routing table for neo4j:// URIs", async () => {
    const d = neo4j.driver(stub.uri.replace("bolt://", "neo4j://"), neo4j.auth.basic("neo4j", "secret"));
    try {
      const { records } = await d.executeQuery("RETURN 1 AS one", {}, { database: "neo4j" });
      expect(records[0]!.get("one").toNumber()).toBe(1);
      expect(stub.messages.some((m) => m.type === "ROUTE")).toBe(true);
    } finally {
      await d.close();
    }
  });
});
