// The managed Mastra peer of bench/peers.ts answers in full: its recent window from PostgreSQL
// and its semantic recall through Pinecone (the stand-in), across the user's threads. A peer
// that answered less would time faster than Mastra is.

import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BenchMessage } from "../../bench/peers/data.ts";
import { MASTRA_PINECONE_INDEX } from "../../bench/peers/config.ts";
import { createMastraManagedPeer } from "../../bench/peers/mastra.ts";
import type { Peer } from "../../bench/peers/serve-peer.ts";
import { POSTGRES_URL } from "../fixtures/neon.ts";
import { startPineconeServer, type PineconeServer } from "../stand-ins/pinecone-server.ts";

const database = `mastra_peer_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
let pinecone: PineconeServer;
let peer: Peer;
const saved: Record<string, string | undefined> = {};

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await admin(`create database "${database}"`);
  pinecone = await startPineconeServer({ apiKey: "k", indexName: MASTRA_PINECONE_INDEX.name, dimension: MASTRA_PINECONE_INDEX.dimension });
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${database}`;
  const env = { BENCH_PG_URL: url.href, BENCH_PREFIX: "bp_test_mastra_managed", BENCH_PINECONE_HOST: pinecone.host, BENCH_PINECONE_API_KEY: "k" };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  peer = await createMastraManagedPeer();
});

afterAll(async () => {
  await peer?.close();
  await pinecone?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await admin(`drop database if exists "${database}" with (force)`);
});

const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();

describe("mastra-managed peer (Mastra Memory on PostgreSQL and Pinecone)", () => {
  it("answers a context call with the thread's last 20 messages and what it recalls from the user's other threads", async () => {
    const older: BenchMessage[] = [
      { id: "b-0", role: "user", content: "the ferry timetable for the lighthouse island changed in spring", createdAt: at(0) },
      { id: "b-1", role: "assistant", content: "noted: the ferry leaves at nine", createdAt: at(1) },
      { id: "b-2", role: "user", content: "unrelated talk about compiler flags and linkers", createdAt: at(2) },
    ];
    expect(await peer.append("s-old", "u1", older)).toBe(3);
    const current: BenchMessage[] = Array.from({ length: 30 }, (_, i) => ({
      id: `a-${i}`,
      role: i % 2 ? "assistant" : "user",
      content: `queue worker retry number ${i} and its backoff`,
      createdAt: at(100 + i),
    }));
    expect(await peer.append("s-now", "u1", current)).toBe(30);
    // Another user's message of the same words must not be recalled for u1.
    await peer.append("s-other", "u2", [{ id: "c-0", role: "user", content: "the ferry timetable for the lighthouse island", createdAt: at(200) }]);

    const before = { ...pinecone.stats().requests };
    const out = (await peer.context("s-now", "u1", "when does the ferry to the lighthouse island leave", 4000)) as { messages: { id: string; threadId?: string; content: string }[] };
    const during = Object.fromEntries(Object.entries(pinecone.stats().requests).map(([route, n]) => [route, n - (before[route] ?? 0)]).filter(([, n]) => n !== 0));
    // Mastra's recall: createIndex (a 409 for the existing index), then the dimension check's
    // describe_index_stats and describe_index, then the query: three round trips before it.
    expect(during).toEqual({ "POST /indexes": 1, "POST /describe_index_stats": 1, "GET /indexes/memory-messages-512": 1, "POST /query": 1 });
    const ids = out.messages.map((m) => m.id);
    for (let i = 10; i < 30; i++) expect(ids).toContain(`a-${i}`);
    expect(ids).not.toContain("a-9");
    expect(ids).toContain("b-0");
    expect(ids).not.toContain("c-0");
    expect(out.messages.find((m) => m.id === "b-0")?.content).toBe(older[0]!.content);

    // Every write went to the stand-in's index, and the recall queried it filtered by the user.
    expect(pinecone.stats().namespaces).toEqual({ __default__: 34 });
    expect(pinecone.stats().requests["POST /query"]).toBe(1);
  });
});
