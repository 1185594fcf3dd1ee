// The Neon stand-in as the driver sees it, without Strata's client in between: the HTTP
// query function and a WebSocket Client both reach the machine's Postgres through it.

import { Client, DatabaseError, neon, neonConfig, NeonDbError, type NeonQueryFunction } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { neonDatabase, type NeonDatabase } from "../fixtures/neon.ts";

const db = neonDatabase();
let fx: NeonDatabase;
let sql: NeonQueryFunction<false, false>;

beforeAll(async () => {
  fx = await db.get();
  // fetchEndpoint exists only as a driver global; this file is one process of its own.
  neonConfig.fetchEndpoint = fx.standIn.fetchEndpoint;
  sql = neon(fx.standIn.connectionString);
  await sql.query("create table items (id int primary key, label text not null)");
});
afterAll(() => db.close());

/** A driver Client over the stand-in's WebSocket proxy. */
async function wsClient(): Promise<Client> {
  const client = new Client(fx.standIn.connectionString);
  Object.assign(client.neonConfig, {
    wsProxy: fx.standIn.wsProxyHost,
    useSecureWebSocket: false,
    pipelineConnect: false, // trust auth: there is no password to pipeline
    webSocketConstructor: WebSocket,
  });
  await client.connect();
  return client;
}

async function rejection(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Record<string, unknown>;
  }
  throw new Error("expected a rejection");
}

describe("Neon stand-in, HTTP", () => {
  it("answers a query in Postgres text output that the driver's parsers turn into values", async () => {
    const [row] = await sql.query(
      "select $1::int + 1 as n, $2::jsonb as j, now() as t, array['a', 'b'] as a, null::text as z, $3::bytea as b",
      [41, JSON.stringify({ x: [1, 2] }), Buffer.from([1, 2, 255])],
    );
    expect(row).toMatchObject({ n: 42, j: { x: [1, 2] }, a: ["a", "b"], z: null });
    expect(row!.t).toBeInstanceOf(Date);
    expect(Buffer.from(row!.b as Uint8Array)).toEqual(Buffer.from([1, 2, 255]));
    const full = await sql.query("select 1::int as one", [], { fullResults: true });
    expect(full).toMatchObject({ command: "SELECT", rowCount: 1, fields: [{ name: "one", dataTypeID: 23 }], rows: [{ one: 1 }] });
  });

  it("fails with a NeonDbError carrying the Postgres code", async () => {
    await sql.query("insert into items values (1, 'one')");
    const e = await rejection(sql.query("insert into items values (1, 'again')"));
    expect(e).toBeInstanceOf(NeonDbError);
    expect(e).toMatchObject({ code: "23505", constraint: "items_pkey", table: "items" });
    // One statement per request, as on Neon.
    expect(await rejection(sql.query("select 1; select 2"))).toMatchObject({ code: "42601" });
  });

  it("runs a batch as one transaction, rolled back whole on an error", async () => {
    const e = await rejection(sql.transaction([sql.query("insert into items values (10, 'ten')"), sql.query("insert into items values (1, 'dup')")]));
    expect(e).toMatchObject({ code: "23505" });
    expect(await sql.query("select id from items where id = 10")).toEqual([]);

    const [inserted, counted] = await sql.transaction([
      sql.query("insert into items values (11, 'eleven') returning id"),
      sql.query("select count(*)::int as n from items where id in (1, 11)"),
    ]);
    expect(inserted).toEqual([{ id: 11 }]);
    expect(counted).toEqual([{ n: 2 }]);
    expect(await rejection(sql.transaction([sql.query("insert into items values (12, 'x')")], { readOnly: true }))).toMatchObject({
      code: "25006",
    });
  });
});

describe("Neon stand-in, WebSocket", () => {
  it("carries a session: a transaction rolls back, and errors keep their code", async () => {
    const client = await wsClient();
    try {
      await client.query("begin");
      await client.query("insert into items values ($1, $2)", [20, "twenty"]);
      expect((await client.query("select label from items where id = 20")).rows).toEqual([{ label: "twenty" }]);
      // Not visible from another session before commit.
      expect(await sql.query("select id from items where id = 20")).toEqual([]);
      await client.query("rollback");
      expect((await client.query("select count(*)::int as n from items where id = 20")).rows).toEqual([{ n: 0 }]);

      const e = await rejection(client.query("insert into items values (1, 'dup')"));
      expect(e).toBeInstanceOf(DatabaseError);
      expect(e).toMatchObject({ code: "23505", constraint: "items_pkey" });
      // Multiple statements in the simple protocol are fine on a session (migrations need it).
      await client.query("insert into items values (21, 'a'); insert into items values (22, 'b')");
      expect(await sql.query("select id from items where id in (21, 22) order by id")).toEqual([{ id: 21 }, { id: 22 }]);
    } finally {
      await client.end();
    }
  });

  it("relays only to the Postgres it fronts", async () => {
    const elsewhere = new WebSocket(`ws://${fx.standIn.wsProxyHost}?address=10.255.255.1:5432`);
    const status = await new Promise<number>((resolve, reject) => {
      elsewhere.on("unexpected-response", (req, res) => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
      elsewhere.on("open", () => reject(new Error("the proxy accepted an address it does not front")));
      elsewhere.on("error", () => {});
    });
    expect(status).toBe(403);
  });
});
