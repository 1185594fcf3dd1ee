import { describe, expect, it } from "vitest";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import type { NewMessage } from "../../lib/core/types.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { archiveContract } from "./archive.contract.ts";

archiveContract("pglite", async () => ({ archive: createSqlArchive({ sql: await sharedPglite() }), cleanup: closeSharedPglite }));

/**
 * The shared PGlite, counting the transactions begun through it, and the ingests written in
 * one statement outside a transaction (a request of new messages alone: ingestNew).
 */
async function counted(): Promise<{ sql: SqlClient; transactions: () => number; statements: () => number }> {
  const sql = await sharedPglite();
  let n = 0;
  let one = 0;
  const wrapped: SqlClient = Object.assign(Object.create(sql) as SqlClient, {
    transaction<T>(fn: (tx: SqlClient) => Promise<T>) {
      n++;
      return sql.transaction(fn);
    },
    query(text: string, params?: unknown[]) {
      if (text.includes("insert into messages")) one++;
      return sql.query(text, params);
    },
  });
  return { sql: wrapped, transactions: () => n, statements: () => one };
}

const msg = (content: string, id = uid("m")): NewMessage => ({ id, role: "user", content, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 });

describe("PGlite archive: group commit of concurrent ingests", () => {
  it("commits the ingests that wait for one together, answering each as in the order they were called", async () => {
    const { sql, transactions, statements } = await counted();
    const archive = createSqlArchive({ sql });
    const [tenantId, other] = [uid("tenant"), uid("tenant")];
    for (const id of [tenantId, other]) await archive.createTenant({ id, name: "Test" });
    const [u1, u2] = [uid("u"), uid("u")];
    const [s1, s2, s3] = [uid("s"), uid("s"), uid("s")];
    const shared = uid("m");
    const calls: [string, string, NewMessage[], string][] = [
      [s1, u1, [msg("one")], tenantId],
      [s1, u1, [msg("two", shared), msg("three")], tenantId],
      [s2, u2, [msg("four")], tenantId],
      [s1, u1, [msg("two", shared)], tenantId],
      [s3, u1, [msg("five")], other],
      [s2, u2, [msg("six")], tenantId],
      [s1, u1, [msg("seven")], tenantId],
    ];
    const jobsFor = (ms: { id: string }[]) => [{ type: "embed" as const, payload: { messageIds: ms.map((m) => m.id) } }];
    const results = await Promise.all(calls.map(([sessionId, userId, messages, t]) => archive.ingest({ tenantId: t, sessionId, userId, messages, jobsFor })));
    // The first alone (nothing waited) in one statement, then the six that waited for it in one transaction.
    expect(statements()).toBe(1);
    expect(transactions()).toBe(1);
    expect(results.map((r) => r.messages.map((m) => [m.seq, m.created]))).toEqual([
      [[1, true]],
      [[2, true], [3, true]],
      [[1, true]],
      [[2, false]],
      [[1, true]],
      [[2, true]],
      [[4, true]],
    ]);
    expect(results.map((r) => r.session.lastSeq)).toEqual([1, 3, 1, 3, 1, 2, 4]);
    // The group's outbox rows: one set per tenant, carried by its first call that stored a message.
    expect(results.map((r) => r.jobs.map((j) => (j.payload as { messageIds: string[] }).messageIds.length))).toEqual([[1], [5], [], [], [1], [], []]);
    expect(results[1]!.jobs[0]!.payload).toEqual({ messageIds: [1, 2, 5, 6].flatMap((c) => results[c]!.inserted.map((m) => m.id)) });
    expect((await archive.listMessages(tenantId, s1, { limit: 10 })).map((m) => [m.seq, m.content])).toEqual([
      [1, "one"],
      [2, "two"],
      [3, "three"],
      [4, "seven"],
    ]);
    // The group's messages are stamped with a version above the first call's, as two commits would stamp them.
    const versions = await sql.query<{ id: string; user_version: string }>("select id, user_version from messages where tenant_id = $1 and session_id = $2 order by seq", [tenantId, s1]);
    expect(Number(versions[1]!.user_version)).toBe(Number(versions[0]!.user_version) + 1);
    expect(new Set(versions.slice(1).map((v) => v.user_version)).size).toBe(1);
  });

  it("answers each call its user's version after the commit, outbox rows or not", async () => {
    const { sql, transactions } = await counted();
    const archive = createSqlArchive({ sql });
    const tenantId = uid("tenant");
    await archive.createTenant({ id: tenantId, name: "Test" });
    const u = uid("u");
    const results = await Promise.all(Array.from({ length: 4 }, () => archive.ingest({ tenantId, sessionId: uid("s"), userId: u, messages: [msg("x")], jobsFor: () => [] })));
    // The first alone (a new user: version 1), the three that waited for it in one transaction.
    expect(transactions()).toBe(1);
    expect(results.map((r) => [r.jobs.length, r.userVersion?.messagesVersion])).toEqual([[0, 1], [0, 2], [0, 2], [0, 2]]);
  });

  it("runs a group with a refused ingest again call by call, the others stored", async () => {
    const { sql, transactions, statements } = await counted();
    const archive = createSqlArchive({ sql });
    const tenantId = uid("tenant");
    await archive.createTenant({ id: tenantId, name: "Test" });
    const [u, s] = [uid("u"), uid("s")];
    const kept = uid("m");
    const jobsFor = () => [];
    const ingest = (messages: NewMessage[]) => archive.ingest({ tenantId, sessionId: s, userId: u, messages, jobsFor });
    await ingest([msg("kept", kept)]);
    const before = [transactions(), statements()];
    const settled = await Promise.allSettled([ingest([msg("a")]), ingest([msg("b")]), ingest([msg("kept, changed", kept)]), ingest([msg("c")])]);
    expect(settled.map((r) => (r.status === "fulfilled" ? r.value.messages[0]!.seq : (r.reason as { code: string }).code))).toEqual([2, 3, "MESSAGE_ID_CONFLICT", 4]);
    // The first alone (a statement), the group of three (a transaction, rolled back), then each
    // of the three alone: a statement each, and the refused one's writes nothing (its id is
    // stored), so it runs in a transaction, which refuses it.
    expect([transactions() - before[0]!, statements() - before[1]!]).toEqual([2, 4]);
  });

  it("leaves concurrent ingests one commit each when asked to (a Postgres server runs them side by side)", async () => {
    const { sql, transactions, statements } = await counted();
    const archive = createSqlArchive({ sql, groupIngest: false });
    const tenantId = uid("tenant");
    await archive.createTenant({ id: tenantId, name: "Test" });
    const s = uid("s");
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => archive.ingest({ tenantId, sessionId: s, userId: "u", messages: [msg(`m${i}`)], jobsFor: () => [] })));
    expect(results.map((r) => r.messages[0]!.seq)).toEqual([1, 2, 3, 4]);
    // New messages each: one statement each, no transaction.
    expect([transactions(), statements()]).toEqual([0, 4]);
  });
});
