// A search's version reads (versions.ts): one statement for the keyword and the graph index
// where they check the archive's versions, shared only by searches that arrived before it began.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalKeywordIndex } from "../../adapters/local/keyword-index.ts";
import { withGraphIndex, type IndexedGraphStore } from "../../adapters/local/graph-index.ts";
import { createSqlArchive } from "../../adapters/sql/archive.ts";
import type { SqlClient } from "../../adapters/sql/client.ts";
import { createSqlGraphStore } from "../../adapters/sql/graph-store.ts";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import type { Archive } from "../ports.ts";
import type { KeywordIndex } from "../keyword-index.ts";
import type { VersionReads } from "../types.ts";
import { searchVersions } from "./versions.ts";

/** The SQL client of a process whose version reads are counted, and can be held back or failed. */
function versionReads(inner: SqlClient) {
  const state = { count: 0, hold: null as Promise<void> | null, fail: false };
  const client: SqlClient = {
    driver: inner.driver,
    async query(text, params) {
      if (!text.includes("as user_version") || text.includes("with s as")) return inner.query(text, params);
      state.count++;
      if (state.fail) {
        state.fail = false;
        if (state.hold) await state.hold;
        throw new Error("connection reset");
      }
      // Read now, answered when let go: the read's snapshot is taken before what follows it.
      const rows = await inner.query(text, params);
      if (state.hold) await state.hold;
      return rows as never;
    },
    exec: (text) => inner.exec(text),
    transaction: (fn) => inner.transaction(fn),
    ping: () => inner.ping(),
    close: async () => {},
  };
  return { client, state };
}

let sql: SqlClient;
let writer: Archive;
const T = "versions-tenant";

beforeAll(async () => {
  sql = await sharedPglite();
  writer = createSqlArchive({ sql });
  await writer.ensureTenant({ id: T, name: T });
});

const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const o of opened) await o.close();
  await closeSharedPglite();
});

/** A reader process over the same database: its archive, a shared keyword index and a shared graph index. */
function reader() {
  const { client, state } = versionReads(sql);
  const archive = createSqlArchive({ sql: client });
  const keywords = createLocalKeywordIndex({ sql, shared: true });
  const graph = withGraphIndex(createSqlGraphStore({ sql }), { sql, shared: true });
  opened.push(keywords, graph);
  return { deps: { archive, graph }, keywords, graph, state, read: (userId: string) => searchVersions({ archive, graph }, keywords, T, userId)! };
}

let n = 0;
function say(sessionId: string, userId: string, content: string) {
  return writer.ingest({
    tenantId: T,
    sessionId,
    userId,
    messages: [{ id: uid("m"), role: "user", content, name: "Ann", createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n++)).toISOString(), metadata: {}, tokens: 4 }],
    jobsFor: () => [],
  });
}

function release(): { gate: Promise<void>; open: () => void } {
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  return { gate, open };
}

describe("a search's version reads", () => {
  it("are none where neither index checks the archive's versions, or the archive cannot read them in one statement", async () => {
    const archive = createSqlArchive({ sql });
    const plainGraph = createSqlGraphStore({ sql });
    const own: KeywordIndex = createLocalKeywordIndex({ sql });
    expect(own.checksVersion).toBe(false);
    expect(searchVersions({ archive, graph: plainGraph }, own, T, "u")).toBeNull();
    expect(searchVersions({ archive, graph: plainGraph }, undefined, T, "u")).toBeNull();
    const without = Object.assign(Object.create(archive) as Archive, { readVersions: undefined });
    expect(searchVersions({ archive: without, graph: plainGraph }, createLocalKeywordIndex({ sql, shared: true }), T, "u")).toBeNull();
    // Either index checking is enough.
    const graph = withGraphIndex(plainGraph, { sql, shared: true });
    await expect(searchVersions({ archive, graph }, own, T, uid("u"))).resolves.toEqual({ userVersion: null, graphVersion: { version: 0, reset: 0 } });
    await own.close();
    await graph.close();
  });

  it("answer the user's versions as a context call's first statement reads them", async () => {
    const r = reader();
    const u = uid("u");
    const s = uid("s");
    await say(s, u, "The violin lessons start on Monday");
    const got = await r.read(u);
    const { userVersion, graphVersion } = await writer.readContext!(T, s, { userId: u, memoryLimit: 0 });
    expect(got).toEqual({ userVersion, graphVersion });
    expect(got.userVersion).not.toBeNull();
    expect(r.state.count).toBe(1);
  });

  it("are one statement for searches that arrive while another is read, begun after the last of them arrived", async () => {
    const r = reader();
    const u = uid("u");
    const s = uid("s");
    await say(s, u, "first");
    const { gate, open } = release();
    r.state.hold = gate;
    const first = r.read(u);
    // Let the first read's statement run: its snapshot is taken.
    while (r.state.count === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Acknowledged after that snapshot, before the next searches arrive.
    const written = await say(s, u, "second");
    const later = Array.from({ length: 7 }, () => r.read(u));
    r.state.hold = null;
    open();
    const [a, ...rest] = await Promise.all([first, ...later]);
    expect(r.state.count).toBe(2);
    // The searches that arrived during the first read share one begun after them: it holds the write.
    for (const v of rest) expect(v).toBe(rest[0]);
    expect(rest[0]!.userVersion!.messagesVersion).toBe(written.userVersion!.messagesVersion);
    expect(a.userVersion!.messagesVersion).toBeLessThan(rest[0]!.userVersion!.messagesVersion);
    // Nothing in flight: the next search reads afresh.
    await r.read(u);
    expect(r.state.count).toBe(3);
  });

  it("of different users are not shared", async () => {
    const r = reader();
    const [u1, u2] = [uid("u"), uid("u")];
    await say(uid("s"), u1, "one");
    const [a, b] = await Promise.all([r.read(u1), r.read(u2)]);
    expect(r.state.count).toBe(2);
    expect(a.userVersion).not.toBeNull();
    expect(b.userVersion).toBeNull();
  });

  it("that fail fail the searches sharing them, and the next search reads again", async () => {
    const r = reader();
    const u = uid("u");
    await say(uid("s"), u, "one");
    const { gate, open } = release();
    r.state.hold = gate;
    r.state.fail = true;
    const failed = r.read(u);
    // Arrived before that read began: it shares it.
    const sharer = r.read(u);
    expect(sharer).toBe(failed);
    while (r.state.count === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    // Arrived while it is in flight: queued behind it.
    const queued = r.read(u);
    r.state.hold = null;
    open();
    await expect(failed).rejects.toThrow("connection reset");
    // The one queued behind it begins its own read once it failed.
    await expect(queued).resolves.toMatchObject({ userVersion: { messagesVersion: expect.any(Number) } });
    expect(r.state.count).toBe(2);
  });

  it("show what another process merged into a user's graph, which the graph index then catches up on", async () => {
    const r = reader();
    const other = createSqlGraphStore({ sql });
    const u = uid("u");
    const merge = (messageId: string, place: string) =>
      other.merge([{ tenantId: T, userId: u, sessionId: "s", messageId, extraction: { entities: [{ name: "Ann", type: "person" }, { name: place, type: "place" }], relations: [{ from: "Ann", type: "visited", to: place }] } }]);
    await merge("m1", "Lisbon");
    const first: VersionReads = await r.read(u);
    expect(first.graphVersion.version).toBeGreaterThan(0);
    await r.graph.messagesMentioning({ tenantId: T, userId: u, terms: ["ann"], limit: 10, asOf: first.graphVersion });
    await (r.graph as IndexedGraphStore).loads();
    await merge("m2", "Kyoto");
    const next = await r.read(u);
    expect(next.graphVersion.version).toBeGreaterThan(first.graphVersion.version);
    // Versions alone: the rows merged since are not asked for (the graph reads them itself).
    expect(next.graphVersion.delta).toBeUndefined();
    const ranked = await r.graph.messagesMentioning({ tenantId: T, userId: u, terms: ["kyoto"], limit: 10, asOf: next.graphVersion });
    expect(ranked.map((h) => h.id)).toEqual(["m2"]);
    expect(r.state.count).toBe(2);
  });
});
