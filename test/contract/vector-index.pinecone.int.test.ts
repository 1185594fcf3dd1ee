// The VectorIndex contract on the Pinecone adapter, through the real v9 client, against the
// local data-plane server (plain http, no control-plane call). Each run works under its own
// namespace prefix and deletes its namespaces at the end. The server is immediately
// consistent, so no `settle` is needed; against the real service one would be.

import { randomBytes } from "node:crypto";
import { Pinecone } from "@pinecone-database/pinecone";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPineconeVectorIndex, deletePineconeNamespaces } from "../../lib/adapters/pinecone/vector-index.ts";
import { createNodeFetch } from "../../lib/adapters/shared/node-fetch.ts";
import { StrataError } from "../../lib/core/errors.ts";
import type { VectorIndex, VectorRecord } from "../../lib/core/ports.ts";
import { startPineconeServer, type PineconeServer } from "../stand-ins/pinecone-server.ts";
import { uid } from "../fixtures/pglite.ts";
import { vectorIndexContract } from "./vector-index.contract.ts";

let server: Promise<PineconeServer> | null = null;
const shared = () => (server ??= startPineconeServer());
const runPrefix = `t${randomBytes(4).toString("hex")}`;

afterAll(async () => {
  if (server) await (await server).close();
});

vectorIndexContract(
  "pinecone",
  async () => {
    const s = await shared();
    const client = new Pinecone({ apiKey: s.apiKey });
    return {
      store: createPineconeVectorIndex({ client, indexHost: s.host, namespacePrefix: runPrefix }),
      async cleanup() {
        await deletePineconeNamespaces({ client, indexHost: s.host, namespacePrefix: runPrefix });
        const left = Object.keys(s.stats().namespaces).filter((n) => n.startsWith(`${runPrefix}#`));
        expect(left).toEqual([]);
      },
    };
  },
  {
    // Pinecone refuses all-zero dense vectors; the adapter stores none for them (see the
    // adapter's header and "zero vectors" below), so one cannot be recalled with score 0.
    skip: ["a zero vector scores 0"],
  },
);

// Again from a configuration with the Node runtime's fetch (lib/runtime.ts passes it), every
// request of the client and of the adapter's raw calls through it.
const fetched = { requests: 0 };
const nodeFetch = createNodeFetch();
const countedFetch: typeof fetch = (input, init) => {
  fetched.requests++;
  return nodeFetch(input, init);
};
const fetchPrefix = `f${randomBytes(4).toString("hex")}`;
vectorIndexContract(
  "pinecone over node-fetch",
  async () => {
    const s = await shared();
    return {
      store: createPineconeVectorIndex({ config: { apiKey: s.apiKey, indexHost: s.host, namespacePrefix: fetchPrefix, fetch: countedFetch } }),
      async cleanup() {
        const before = fetched.requests;
        await deletePineconeNamespaces({ client: new Pinecone({ apiKey: s.apiKey }), indexHost: s.host, namespacePrefix: fetchPrefix });
        expect(fetched.requests).toBeGreaterThan(0);
        expect(fetched.requests).toBe(before); // the clean-up's own client used the platform's fetch
      },
    };
  },
  { skip: ["a zero vector scores 0"] },
);

const axis = (i: number, dims = 8) => Float32Array.from({ length: dims }, (_, k) => (k === i ? 1 : 0));

describe("pinecone vector index", () => {
  let s: PineconeServer;
  let client: Pinecone;
  let store: VectorIndex;
  const prefix = `p${randomBytes(4).toString("hex")}`;

  beforeAll(async () => {
    s = await shared();
    client = new Pinecone({ apiKey: s.apiKey });
    store = createPineconeVectorIndex({ client, indexHost: s.host, namespacePrefix: prefix });
  });
  afterAll(async () => {
    await deletePineconeNamespaces({ client, indexHost: s.host, namespacePrefix: prefix });
  });

  function scope(userId = uid("user")) {
    const tenantId = uid("tenant"), sessionId = uid("session");
    const record = (id: string, vector: Float32Array, over: Partial<VectorRecord> = {}): VectorRecord => ({
      tenantId, userId, sessionId, kind: "message", id, model: "m", vector, ...over,
    });
    return { tenantId, userId, sessionId, record };
  }

  it("never sends an unscoped query: every filter names the tenant and the user", async () => {
    const a = scope();
    await store.upsert([a.record("x", axis(0))]);
    const before = s.stats().queryFilters.length;
    await store.query({ tenantId: a.tenantId, userId: a.userId, vector: axis(0), topK: 3 });
    await store.query({ tenantId: a.tenantId, userId: a.userId, vector: axis(0), topK: 3, sessionId: a.sessionId, kinds: ["message", "memory"] });
    const filters = s.stats().queryFilters.slice(before);
    expect(filters).toEqual([
      { namespace: `${prefix}#${a.tenantId}`, filter: { tenantId: { $eq: a.tenantId }, userId: { $eq: a.userId } } },
      {
        namespace: `${prefix}#${a.tenantId}`,
        filter: { tenantId: { $eq: a.tenantId }, userId: { $eq: a.userId }, sessionId: { $eq: a.sessionId }, kind: { $in: ["message", "memory"] } },
      },
    ]);
  });

  it("zero vectors: not stored, an upsert of one replaces the key's vector, the rest of the call is stored", async () => {
    const a = scope();
    await store.upsert([a.record("z", axis(1)), a.record("keep", axis(0))]);
    expect(await store.count(a.tenantId, a.userId)).toBe(2);
    await store.upsert([a.record("z", new Float32Array(8)), a.record("new", axis(2))]);
    expect(await store.count(a.tenantId, a.userId)).toBe(2);
    const ids = (await store.query({ tenantId: a.tenantId, userId: a.userId, vector: axis(1), topK: 10 })).map((m) => m.id);
    expect(ids.sort()).toEqual(["keep", "new"]);
    expect(await store.query({ tenantId: a.tenantId, userId: a.userId, vector: new Float32Array(8), topK: 10 })).toEqual([]);
  });

  it("batches upserts under Pinecone's limits: at most 100 vectors and 2 MB a request", async () => {
    const a = scope();
    const dims = 1536;
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const records = Array.from({ length: 130 }, (_, i) => a.record(`b${i}`, Float32Array.from({ length: dims }, rnd)));
    const before = s.stats().upsertSizes.length;
    await store.upsert(records);
    const st = s.stats();
    const sizes = st.upsertSizes.slice(before);
    expect(sizes.reduce((n, k) => n + k, 0)).toBe(130);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    expect(Math.max(...st.upsertBytes.slice(before))).toBeLessThanOrEqual(2_000_000);
    expect(sizes.length).toBeGreaterThan(2); // 1536 dimensions do not fit 100 to a request
    expect(await store.count(a.tenantId, a.userId)).toBe(130);
    const top = await store.query({ tenantId: a.tenantId, userId: a.userId, vector: records[17]!.vector, topK: 1 });
    expect(top[0]).toMatchObject({ id: "b17" });
    expect(top[0]!.score).toBeCloseTo(1, 5);
  });

  it("counts and deletes a user across list pages, leaving a user whose id extends theirs", async () => {
    const a = scope("ann");
    const recB = (id: string, v: Float32Array) => a.record(id, v, { userId: "ann#b" });
    await store.upsert(Array.from({ length: 230 }, (_, i) => a.record(`a${i}`, axis(i % 8), { kind: i % 3 === 0 ? "memory" : "message" })));
    await store.upsert([recB("b1", axis(0)), recB("b2", axis(1))]);
    expect(await store.count(a.tenantId, "ann")).toBe(230);
    expect(await store.count(a.tenantId, "ann#b")).toBe(2);
    expect(await store.count(a.tenantId)).toBe(232);
    await store.deleteByUser(a.tenantId, "ann");
    expect(await store.count(a.tenantId, "ann")).toBe(0);
    expect(await store.count(a.tenantId, "ann#b")).toBe(2);
    expect(await store.count(a.tenantId)).toBe(2);
  });

  it("keeps client-supplied ids of any characters, up to 128 of them, within Pinecone's 512", async () => {
    const long = "é🙂#%/ ".repeat(22).slice(0, 128);
    const user = "用户#" + "x".repeat(120);
    const a = scope(user);
    const ids = [long, "a#b", "a%23b", "$x", "msg-42", "\ud800lone"];
    await store.upsert(ids.map((id, i) => a.record(id, axis(i))));
    expect(await store.count(a.tenantId, user)).toBe(ids.length);
    const got = await store.query({ tenantId: a.tenantId, userId: user, vector: axis(0), topK: 10 });
    expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(got[0]).toMatchObject({ id: long, score: expect.closeTo(1, 5) });
    // The server refuses ids over 512 characters, so the upsert above proves they fit; the
    // ids that do not encode to 200 characters (the long one, the lone surrogate) are hashed.
    const listed = await client.index({ host: s.host }).listPaginated({ namespace: `${prefix}#${a.tenantId}` });
    const stored = (listed.vectors ?? []).map((v) => v.id!);
    expect(stored.filter((id) => /^%E7%94%A8%E6%88%B7%23x{120}#message#\$[\w-]{43}$/.test(id))).toHaveLength(2);
    expect(stored).toContain(`%E7%94%A8%E6%88%B7%23${"x".repeat(120)}#message#a%23b`);
    expect(stored.every((id) => /^[\x21-\x7e]+$/.test(id))).toBe(true);
    await store.deleteByIds(a.tenantId, [long, "a#b"]);
    expect((await store.query({ tenantId: a.tenantId, userId: user, vector: axis(0), topK: 10 })).map((m) => m.id).sort()).toEqual(
      ["a%23b", "$x", "msg-42", "\ud800lone"].sort(),
    );
  });

  it("deleteByIds finds ids across many lookups and pages", async () => {
    const a = scope();
    const ids = Array.from({ length: 250 }, (_, i) => `d${i}`);
    await store.upsert(ids.flatMap((id, i) => [a.record(id, axis(i % 8)), a.record(id, axis(i % 8), { kind: "summary" })]));
    expect(await store.count(a.tenantId, a.userId)).toBe(500);
    await store.deleteByIds(a.tenantId, ids.slice(0, 240));
    expect(await store.count(a.tenantId, a.userId)).toBe(20);
  });

  it("caps topK at 1000 (Pinecone's limit with metadata)", async () => {
    const a = scope();
    await store.upsert([a.record("only", axis(0))]);
    await expect(store.query({ tenantId: a.tenantId, userId: a.userId, vector: axis(0), topK: 50_000 })).resolves.toHaveLength(1);
    expect(await store.query({ tenantId: a.tenantId, userId: a.userId, vector: axis(0), topK: 0 })).toEqual([]);
  });

  it("talks only to the data plane when given a host, with the client's API version", () => {
    const routes = Object.keys(s.stats().requests);
    expect(routes.every((r) => /^(POST|GET) \/(vectors\/|query$|describe_index_stats$)/.test(r))).toBe(true);
    expect(s.stats().apiVersions).toEqual(["2026-07"]);
  });
});

describe("pinecone vector index: configuration and failures", () => {
  const prefix = `c${randomBytes(4).toString("hex")}`;

  it("checks its configuration at construction and names the fix", () => {
    const make = (config: Record<string, unknown>) => () =>
      createPineconeVectorIndex({ config: { apiKey: "k", namespacePrefix: "dev", ...config } as never });
    expect(make({})).toThrow(/PINECONE_INDEX or PINECONE_HOST is missing: set one, or unset PINECONE_API_KEY/);
    expect(make({ apiKey: " ", indexName: "x" })).toThrow(/PINECONE_API_KEY is empty/);
    expect(make({ indexHost: "ftp://x" })).toThrow(/PINECONE_HOST "ftp:\/\/x" must be an http\(s\) URL/);
    expect(make({ indexHost: "https://h.example/path" })).toThrow(/without a path/);
    expect(make({ indexHost: "h.example", namespacePrefix: "a#b" })).toThrow(/namespace prefix "a#b"/);
    try {
      make({})();
    } catch (e) {
      expect(e).toBeInstanceOf(StrataError);
      expect((e as StrataError).category).toBe("config");
    }
    expect(make({ indexHost: "my-index-abc.svc.pinecone.io" })).not.toThrow();
  });

  it("a wrong API key is a config error, with no vendor error type", async () => {
    const s = await startPineconeServer({ apiKey: "right" });
    try {
      const store = createPineconeVectorIndex({ config: { apiKey: "wrong", indexHost: s.host, namespacePrefix: prefix } });
      const err = await store.ping().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StrataError);
      expect(err).toMatchObject({ category: "config", code: "PINECONE_UNAUTHORIZED" });
      expect((err as Error).message).toMatch(/check PINECONE_API_KEY/);
      await expect(store.query({ tenantId: "t", userId: "u", vector: axis(0), topK: 1 })).rejects.toBeInstanceOf(StrataError);
    } finally {
      await s.close();
    }
  });

  it("refuses an index whose metric is not cosine", async () => {
    const s = await startPineconeServer({ metric: "dotproduct" });
    try {
      const store = createPineconeVectorIndex({ config: { apiKey: s.apiKey, indexHost: s.host, namespacePrefix: prefix } });
      await expect(store.ping()).rejects.toMatchObject({ category: "config", message: expect.stringMatching(/dotproduct metric: Strata needs .*cosine/) });
      await expect(store.upsert([{ tenantId: "t", userId: "u", sessionId: "s", kind: "message", id: "a", model: "m", vector: axis(0) }])).rejects.toMatchObject({
        code: "PINECONE_METRIC",
      });
      expect(s.stats().upsertSizes).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("names the dimension mismatch between the embedder and the index", async () => {
    const s = await startPineconeServer({ dimension: 16 });
    try {
      const store = createPineconeVectorIndex({ config: { apiKey: s.apiKey, indexHost: s.host, namespacePrefix: prefix } });
      const rec = { tenantId: "t", userId: "u", sessionId: "s", kind: "message" as const, id: "a", model: "m", vector: axis(0) };
      await expect(store.upsert([rec])).rejects.toMatchObject({ category: "config", message: expect.stringMatching(/8 dimensions but .* has 16/) });
      await expect(store.query({ tenantId: "t", userId: "u", vector: axis(0), topK: 1 })).rejects.toMatchObject({ code: "PINECONE_DIMENSION" });
      await store.upsert([{ ...rec, vector: axis(0, 16) }]);
      expect(await store.count("t", "u")).toBe(1);
    } finally {
      await s.close();
    }
  });

  it("an unreachable host is an upstream error, and the next call tries again", async () => {
    const s = await startPineconeServer();
    const host = s.host;
    await s.close();
    const store = createPineconeVectorIndex({ config: { apiKey: s.apiKey, indexHost: host, namespacePrefix: prefix } });
    await expect(store.ping()).rejects.toMatchObject({ category: "upstream" });
    await expect(store.ping()).rejects.toBeInstanceOf(StrataError);
  });

  it("with only an index name, resolves the host once through describe_index", async () => {
    const s = await startPineconeServer({ indexName: "strata-idx" });
    try {
      const client = new Pinecone({ apiKey: s.apiKey, controllerHostUrl: s.host });
      const store = createPineconeVectorIndex({ client, indexName: "strata-idx", namespacePrefix: prefix });
      await store.ping();
      await store.upsert([{ tenantId: "t", userId: "u", sessionId: "s", kind: "memory", id: "a", model: "m", vector: axis(2) }]);
      expect(await store.query({ tenantId: "t", userId: "u", vector: axis(2), topK: 1 })).toMatchObject([{ id: "a", kind: "memory" }]);
      expect(s.stats().requests["GET /indexes/strata-idx"]).toBe(1);

      const missing = createPineconeVectorIndex({ client, indexName: "nope", namespacePrefix: prefix });
      await expect(missing.ping()).rejects.toMatchObject({ category: "config", code: "PINECONE_NOT_FOUND" });
    } finally {
      await s.close();
    }
  });
});
