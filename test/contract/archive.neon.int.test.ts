// The Archive contract on Neon: the driver through the Neon stand-in to the machine's
// Postgres 15, in a database made for this file; plus the Neon client's own behaviour
// (transports, errors, sessions, configuration) and racing migrators.

import pg from "pg";
import { afterAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { createNeonArchive } from "../../lib/adapters/neon/archive.ts";
import { BurstWebSocket } from "../../lib/adapters/neon/burst-websocket.ts";
import { createNeonSqlClient } from "../../lib/adapters/neon/client.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { MIGRATIONS, migrate } from "../../lib/adapters/sql/migrations.ts";
import { StrataError } from "../../lib/core/errors.ts";
import { neonDatabase } from "../fixtures/neon.ts";
import { uid } from "../fixtures/pglite.ts";
import { archiveContract } from "./archive.contract.ts";

const db = neonDatabase();
afterAll(() => db.close());

// Runs first, on the file's empty database: two processes starting at once.
describe("Neon archive migrations", () => {
  it("apply once when two migrators race on an empty database", async () => {
    const { config } = await db.get();
    const a = createNeonSqlClient(config());
    const b = createNeonSqlClient(config());
    try {
      const [ranA, ranB] = await Promise.all([migrate(a), migrate(b)]);
      expect([...ranA, ...ranB].sort()).toEqual(MIGRATIONS.map((m) => m.version).sort());
      const rows = await a.query<{ version: number }>("select version from schema_migrations order by version");
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await migrate(b)).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

// Every single statement over HTTP, then the default (pooled session when one is idle).
for (const queryTransport of ["http", "auto"] as const) {
  archiveContract(`neon (${queryTransport})`, async () => {
    const archive = createNeonArchive({ config: (await db.get()).config({ queryTransport }) });
    await archive.migrate();
    return { archive, cleanup: () => archive.close() };
  });
}

// Without the group commit every request is its own commit, and concurrent ones race on the
// server: a request of new messages in one statement (ingestNew), the others in a transaction.
archiveContract("neon (a commit a request)", async () => {
  const archive = createSqlArchive({ sql: createNeonSqlClient((await db.get()).config()), ownsClient: true, groupIngest: false });
  await archive.migrate();
  return { archive, cleanup: () => archive.close() };
});

describe("Neon archive: concurrent ingests of one process", () => {
  it("commits those that wait for a transaction together, each answered as one after another", async () => {
    const neonSql = createNeonSqlClient((await db.get()).config());
    let transactions = 0;
    let statements = 0;
    const sql: SqlClient = {
      ...neonSql,
      transaction: (fn) => (transactions++, neonSql.transaction(fn)),
      query: (text, params) => (text.includes("insert into messages") && statements++, neonSql.query(text, params)),
    };
    const archive = createSqlArchive({ sql });
    try {
      await archive.migrate();
      const tenantId = uid("tenant");
      await archive.createTenant({ id: tenantId, name: "Test" });
      const sessions = [uid("s"), uid("s"), uid("s"), uid("s")];
      const users = [uid("u"), uid("u")];
      const jobsFor = (ms: { id: string }[]) => [{ type: "embed" as const, payload: { messageIds: ms.map((m) => m.id) } }];
      // Eight writers of one message each, two to a session, as a chat frontend's are.
      transactions = 0;
      statements = 0;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          archive.ingest({
            tenantId,
            sessionId: sessions[i % 4]!,
            userId: users[i % 2]!,
            messages: [{ id: uid("m"), role: "user", content: `turn ${i}`, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 2 }],
            jobsFor,
          }),
        ),
      );
      // The first alone (nothing waited) in one statement, then the seven that waited for it in one transaction.
      expect([statements, transactions]).toEqual([1, 1]);
      expect(results.map((r) => r.messages[0]!.seq)).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
      for (const [k, s] of sessions.entries()) {
        expect((await archive.listMessages(tenantId, s, { limit: 10 })).map((m) => m.content)).toEqual([`turn ${k}`, `turn ${k + 4}`]);
      }
      // Each call learns its user's version after the commit: one bump for the first call, one for the group.
      const v = results.map((r) => r.userVersion!.messagesVersion);
      expect([v[2], v[4], v[6]]).toEqual([v[0]! + 1, v[0]! + 1, v[0]! + 1]);
      expect(new Set([v[1], v[3], v[5], v[7]]).size).toBe(1);
      expect(results[2]!.userVersion).toEqual((await archive.readContext!(tenantId, sessions[0]!, { userId: users[0]!, memoryLimit: 0 })).userVersion);
      // The group's outbox rows: one set for the tenant, carried by its first call.
      expect(results.map((r) => r.jobs.map((j) => (j.payload as { messageIds: string[] }).messageIds.length))).toEqual([[1], [7], [], [], [], [], [], []]);
    } finally {
      await neonSql.close();
    }
  });
});

describe("Neon archive: requests of new messages in one statement each, side by side", () => {
  it("take seq numbers and versions one after another, each call's messages stamped with the version it answers", async () => {
    const neonSql = createNeonSqlClient((await db.get()).config());
    let transactions = 0;
    const sql: SqlClient = { ...neonSql, transaction: (fn) => (transactions++, neonSql.transaction(fn)) };
    const archive = createSqlArchive({ sql, groupIngest: false });
    try {
      await archive.migrate();
      const tenantId = uid("tenant");
      await archive.createTenant({ id: tenantId, name: "Test" });
      const user = uid("u");
      const sessions = [uid("s"), uid("s")];
      transactions = 0;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          archive.ingest({
            tenantId,
            sessionId: sessions[i % 2]!,
            userId: user,
            messages: Array.from({ length: 1 + (i % 3) }, (_, k) => ({ id: uid("m"), role: "user" as const, content: `call ${i} turn ${k}`, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 3 })),
            jobsFor: () => [],
          }),
        ),
      );
      expect(transactions).toBe(0);
      // A new user's first write is version 1; twelve writes, twelve versions, each answered
      // even with no outbox rows.
      expect(results.map((r) => r.userVersion!.messagesVersion).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      for (const s of sessions) {
        const stored = await archive.listMessages(tenantId, s, { limit: 100 });
        expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
      }
      const stamped = await neonSql.query<{ id: string; user_version: string }>("select id, user_version from messages where tenant_id = $1", [tenantId]);
      const versionOf = new Map(stamped.map((r) => [r.id, Number(r.user_version)]));
      for (const r of results) {
        expect(r.inserted.map((m) => versionOf.get(m.id))).toEqual(r.inserted.map(() => r.userVersion!.messagesVersion));
        // A call's seq numbers run on from its session's before it, and the session answered is as it left it.
        expect(r.messages.map((m) => m.seq)).toEqual(r.messages.map((_, k) => r.messages[0]!.seq + k));
        expect(r.session.lastSeq).toBe(r.messages[r.messages.length - 1]!.seq);
      }
    } finally {
      await neonSql.close();
    }
  });
});

describe("Neon archive: two processes' groups on one database", () => {
  it("store every write once, each session's seq numbers one after another", async () => {
    const clients = [createNeonSqlClient((await db.get()).config()), createNeonSqlClient((await db.get()).config())];
    const [a, b] = clients.map((sql) => createSqlArchive({ sql }));
    try {
      await a!.migrate();
      const tenantId = uid("tenant");
      await a!.createTenant({ id: tenantId, name: "Test" });
      // Three sessions of two users, written by both processes at once, eight writers each, in rounds.
      const sessions = [
        { id: uid("s"), user: "u1" },
        { id: uid("s"), user: "u2" },
        { id: uid("s"), user: "u1" },
      ];
      const sent: string[] = [];
      for (let round = 0; round < 4; round++) {
        await Promise.all(
          [a!, b!].flatMap((archive, p) =>
            Array.from({ length: 8 }, (_, i) => {
              const s = sessions[(i + p + round) % 3]!;
              const content = `round ${round} process ${p} writer ${i}`;
              sent.push(content);
              return archive.ingest({
                tenantId,
                sessionId: s.id,
                userId: s.user,
                messages: [{ id: uid("m"), role: "user", content, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 2 }],
                jobsFor: (ms) => [{ type: "embed" as const, payload: { messageIds: ms.map((m) => m.id) } }],
              });
            }),
          ),
        );
      }
      const stored: string[] = [];
      for (const s of sessions) {
        const ms = await a!.listMessages(tenantId, s.id, { limit: 100 });
        expect(ms.map((m) => m.seq)).toEqual(ms.map((_, i) => i + 1));
        stored.push(...ms.map((m) => m.content));
      }
      expect(stored.sort()).toEqual(sent.sort());
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

describe("Neon client", () => {
  it("names its adapter and checks its configuration at construction", async () => {
    const archive = createNeonArchive({ config: (await db.get()).config() });
    expect(archive.adapter).toBe("neon");
    await archive.close();
    expect(() => createNeonArchive({ config: { connectionString: "mysql://u@h/db" } })).toThrow(/DATABASE_URL is not a postgres:\/\/ URL/);
    expect(() => createNeonArchive({ config: { connectionString: "postgres://user@host" } })).toThrow(/names no database/);
    expect(() => createNeonArchive({ config: { connectionString: "postgres://u@h/db", wsProxy: "http://x/v2" } })).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => createNeonArchive({ config: { connectionString: "postgres://u@h/db", poolSize: 0 } })).toThrow(/poolSize/);
    const { config } = await db.get();
    // fetchEndpoint is routed per database host: two endpoints for one host cannot both hold.
    const first = createNeonSqlClient(config());
    expect(() => createNeonSqlClient(config({ fetchEndpoint: "http://127.0.0.1:9/sql" }))).toThrow(/one fetchEndpoint per database host/);
    await first.close();
  });

  it("sends a cold query over HTTP and a warm one over the pooled session", async () => {
    const sql = createNeonSqlClient((await db.get()).config({ poolSize: 1 }));
    try {
      const pid = async (run: (text: string) => Promise<{ pid: number }[]>) => (await run("select pg_backend_pid() as pid"))[0]!.pid;
      const overHttp = await pid((t) => sql.queryHttp(t));
      const inTransaction = await sql.transaction((tx) => pid((t) => tx.query(t)));
      expect(inTransaction).not.toBe(overHttp);
      // The pool's one session is idle now, so the default transport takes it.
      expect(await pid((t) => sql.query(t))).toBe(inTransaction);
      expect(await pid((t) => sql.queryWebSocket(t))).toBe(inTransaction);
    } finally {
      await sql.close();
    }
  });

  it("maps Postgres errors by SQLSTATE and rolls back transactions, nested ones to their savepoint", async () => {
    const sql = createNeonSqlClient((await db.get()).config());
    try {
      await sql.exec("create table if not exists client_items (id int primary key); truncate client_items");
      for (const run of [sql.queryHttp, sql.queryWebSocket]) {
        await run("insert into client_items values (1) on conflict do nothing");
        const e = await run("insert into client_items values (1)").catch((x: unknown) => x);
        expect(e).toBeInstanceOf(StrataError);
        expect(e).toMatchObject({ category: "conflict", code: "UNIQUE_VIOLATION", details: { sqlState: "23505", constraint: "client_items_pkey" } });
      }
      const mine = new Error("changed my mind");
      await expect(
        sql.transaction(async (tx) => {
          await tx.query("insert into client_items values (2)");
          throw mine;
        }),
      ).rejects.toBe(mine); // the caller's error comes back as thrown, not wrapped
      await sql.transaction(async (tx) => {
        await tx.query("insert into client_items values (3)");
        await expect(tx.transaction((inner) => inner.query("insert into client_items values (1)"))).rejects.toMatchObject({ code: "UNIQUE_VIOLATION" });
        await tx.query("insert into client_items values (4)"); // the outer transaction goes on
      });
      expect((await sql.query<{ id: number }>("select id from client_items order by id")).map((r) => r.id)).toEqual([1, 3, 4]);
    } finally {
      await sql.close();
    }
  });

  it("replaces a pooled session the server dropped (a suspended compute)", async () => {
    const { config, directUrl } = await db.get();
    const sql = createNeonSqlClient(config({ poolSize: 1 }));
    const admin = new pg.Client(directUrl);
    await admin.connect();
    try {
      const pid = async () => (await sql.queryWebSocket<{ pid: number }>("select pg_backend_pid() as pid"))[0]!.pid;
      const before = await pid();
      await admin.query("select pg_terminate_backend($1)", [before]);
      await new Promise((r) => setTimeout(r, 100));
      await expect(sql.query("select 1 as one")).resolves.toEqual([{ one: 1 }]);
      const after = await pid();
      expect(after).not.toBe(before);
      await expect(sql.transaction((tx) => tx.query("select 2 as two"))).resolves.toEqual([{ two: 2 }]);
    } finally {
      await admin.end();
      await sql.close();
    }
  });

  it("leaves a client it was given open", async () => {
    const sql = createNeonSqlClient((await db.get()).config());
    await createNeonArchive({ sql }).close();
    await expect(sql.ping()).resolves.toBeUndefined();
    await sql.close();
    await expect(sql.query("select 1")).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
  });
});

describe("Neon client: one WebSocket message a statement", () => {
  it("sends each statement's protocol messages (Parse to Sync) as one message, and its session's Terminate on close", async () => {
    const sql = createNeonSqlClient((await db.get()).config({ queryTransport: "websocket" }));
    // Every message the client's sockets send (the stand-in's own sockets, in this process too, are plain ws).
    const messages: Buffer[] = [];
    const send = watchSends((socket, data) => {
      if (socket instanceof BurstWebSocket) messages.push(Buffer.from(data as Uint8Array));
    });
    try {
      await sql.query("select 1 as one");
      messages.length = 0;
      await expect(sql.query("select $1::int + 1 as n", [41])).resolves.toEqual([{ n: 42 }]);
      expect(messages).toHaveLength(1);
      // The message holds the whole statement: Parse (P) to Sync (S), with Bind (B) and Execute (E)
      // between (and what else the driver writes: Describe, Flush).
      expect(protocolTypes(messages[0]!)).toMatch(/^P.*B.*E.*S$/);
      messages.length = 0;
      await expect(sql.transaction(async (tx) => [await tx.query("select 1 as a"), await tx.query("select 2 as b")])).resolves.toEqual([[{ a: 1 }], [{ b: 2 }]]);
      // begin, the two statements, commit.
      expect(messages).toHaveLength(4);
      messages.length = 0;
    } finally {
      await sql.close();
      send.mockRestore();
    }
    // The pooled session's Terminate (X) went before its socket closed.
    expect(messages.map(protocolTypes)).toEqual(["X"]);
  });

  it("leaves the joining to the driver when coalesceWrites is on: ws's own socket, no message held", async () => {
    const sql = createNeonSqlClient({ ...(await db.get()).config({ queryTransport: "websocket" }), coalesceWrites: true });
    const held: unknown[] = [];
    const statements: string[] = [];
    const send = watchSends((socket, data) => {
      if (socket instanceof BurstWebSocket) held.push(data);
      else if (data instanceof Uint8Array && data[0] === "P".charCodeAt(0)) statements.push(protocolTypes(Buffer.from(data)));
    });
    try {
      await expect(sql.query("select $1::int + 1 as n", [41])).resolves.toEqual([{ n: 42 }]);
    } finally {
      await sql.close();
      send.mockRestore();
    }
    expect(held).toEqual([]);
    // The driver's timer joined the statement (Parse to Sync) into one message of its own.
    expect(statements.some((s) => /^P.*B.*E.*S$/.test(s))).toBe(true);
  });
});

/** Shows `see` every message a ws socket in this process sends (each then sent as usual); mockRestore() on the answer ends it. */
function watchSends(see: (socket: WebSocket, data: unknown) => void) {
  const realSend = WebSocket.prototype.send;
  return vi.spyOn(WebSocket.prototype, "send").mockImplementation(function (this: WebSocket, ...args: Parameters<WebSocket["send"]>) {
    see(this, args[0]);
    return realSend.apply(this, args);
  });
}

/** The type bytes of the frontend protocol messages a buffer holds, one letter each. */
function protocolTypes(buf: Buffer): string {
  let out = "";
  for (let at = 0; at < buf.length; at += 1 + buf.readInt32BE(at + 1)) out += String.fromCharCode(buf[at]!);
  return out;
}
