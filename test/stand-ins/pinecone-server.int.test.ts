// The Pinecone stand-in behaves as Pinecone documents for what Strata relies on: checked
// through the real v9 client (plain http host, no control plane) and, for wire shapes, raw
// HTTP.

import { Pinecone, type Index, type PineconeRecord } from "@pinecone-database/pinecone";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPineconeServer, type PineconeServer } from "./pinecone-server.ts";

let s: PineconeServer;
let index: Index;

beforeAll(async () => {
  s = await startPineconeServer({ apiKey: "secret", dimension: 4 });
  index = new Pinecone({ apiKey: "secret" }).index({ host: s.host });
});
afterAll(async () => {
  await s?.close();
});

async function raw(method: string, path: string, body?: unknown, key = "secret") {
  const res = await fetch(`${s.host}${path}`, {
    method,
    headers: { "Api-Key": key, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // plain-text answers (401) stay in `text`
  }
  return { status: res.status, text, json };
}

describe("Pinecone stand-in", () => {
  it("answers 401 in plain text to a missing or wrong Api-Key, and the client maps it", async () => {
    expect(await raw("POST", "/describe_index_stats", {}, "wrong")).toMatchObject({ status: 401, text: "Unauthorized" });
    const res = await fetch(`${s.host}/describe_index_stats`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
    const bad = new Pinecone({ apiKey: "nope" }).index({ host: s.host });
    await expect(bad.describeIndexStats()).rejects.toMatchObject({ name: "PineconeAuthorizationError" });
  });

  it("refuses vectors of the wrong dimension, and all-zero ones, with 400 and a gRPC status body", async () => {
    const up = await raw("POST", "/vectors/upsert", { vectors: [{ id: "a", values: [1, 2, 3] }], namespace: "dim" });
    expect(up.status).toBe(400);
    expect(up.json).toEqual({ code: 3, message: "Vector dimension 3 does not match the dimension of the index 4", details: [] });
    const q = await raw("POST", "/query", { vector: [1, 2, 3], topK: 1, namespace: "dim" });
    expect(q).toMatchObject({ status: 400, json: { message: expect.stringMatching(/Query vector dimension 3 does not match the dimension of the index 4/) } });
    await expect(index.upsert({ records: [{ id: "z", values: [0, 0, 0, 0] }], namespace: "dim" })).rejects.toMatchObject({
      name: "PineconeBadRequestError",
      message: expect.stringMatching(/Dense vectors must contain at least one non-zero value. Vector ID 'z' contains only zeros/),
    });
    // A refused batch writes nothing.
    await expect(index.upsert({ records: [{ id: "ok", values: [1, 0, 0, 0] }, { id: "bad", values: [1, 0] }], namespace: "dim" })).rejects.toThrow();
    expect((await index.describeIndexStats()).namespaces?.["dim"]).toBeUndefined();
  });

  it("enforces request limits: 1000 vectors and 2 MB per upsert, 512-character ids, topK ≤ 10,000, 1000 ids per delete", async () => {
    const v = (id: string) => ({ id, values: [1, 0, 0, 0] });
    expect((await raw("POST", "/vectors/upsert", { vectors: Array.from({ length: 1001 }, (_, i) => v(`v${i}`)), namespace: "lim" })).status).toBe(400);
    const big = { vectors: [{ id: "m", values: [1, 0, 0, 0], metadata: { pad: "x".repeat(30_000) } }], namespace: "lim" };
    expect((await raw("POST", "/vectors/upsert", { ...big, vectors: Array.from({ length: 80 }, (_, i) => ({ ...big.vectors[0]!, id: `m${i}` })) })).status).toBe(400);
    expect((await raw("POST", "/vectors/upsert", { vectors: [v("x".repeat(513))], namespace: "lim" })).status).toBe(400);
    expect((await raw("POST", "/vectors/upsert", { vectors: [v("x".repeat(512))], namespace: "lim" })).status).toBe(200);
    expect((await raw("POST", "/query", { vector: [1, 0, 0, 0], topK: 10_001, namespace: "lim" })).status).toBe(400);
    expect((await raw("POST", "/vectors/delete", { ids: Array.from({ length: 1001 }, (_, i) => `v${i}`), namespace: "lim" })).status).toBe(400);
    expect((await raw("POST", "/vectors/upsert", { vectors: [{ id: "n", values: [1, 0, 0, 0], metadata: { x: null } }], namespace: "lim" })).status).toBe(400);
  });

  it("scores by exact cosine, best first, and returns values and metadata only when asked", async () => {
    await index.upsert({
      records: [
        { id: "x", values: [2, 0, 0, 0], metadata: { k: "a" } },
        { id: "xy", values: [1, 1, 0, 0], metadata: { k: "b" } },
        { id: "neg", values: [-1, 0, 0, 0] },
      ],
      namespace: "cos",
    });
    const r = await index.query({ vector: [3, 0, 0, 0], topK: 3, namespace: "cos" });
    expect(r.matches.map((m) => m.id)).toEqual(["x", "xy", "neg"]);
    expect(r.matches.map((m) => m.score)).toEqual([1, expect.closeTo(Math.SQRT1_2, 6), -1]);
    expect(r.matches[0]!.metadata).toBeUndefined();
    expect(r.matches[0]!.values).toEqual([]);
    const full = await index.query({ vector: [0, 1, 0, 0], topK: 1, namespace: "cos", includeMetadata: true, includeValues: true });
    expect(full.matches[0]).toMatchObject({ id: "xy", values: [1, 1, 0, 0], metadata: { k: "b" } });
    expect((await index.query({ vector: [1, 0, 0, 0], topK: 5, namespace: "empty" })).matches).toEqual([]);
  });

  it("returns the best topK of many, ties in id byte order, as a full sort would", async () => {
    // 600 vectors on 7 directions (many exact ties), every third one filtered out.
    const dirs = [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [2, 1, 1, 0], [0, 0, 0, 1], [-1, 0, 0, 0]];
    const records: PineconeRecord[] = Array.from({ length: 600 }, (_, i) => ({ id: `v${(i * 7919) % 600}-${i % 13}`, values: dirs[(i * 31) % 7]!, metadata: { keep: i % 3 !== 0 } }));
    for (let i = 0; i < records.length; i += 200) await index.upsert({ records: records.slice(i, i + 200), namespace: "many" });
    const q = [1, 0.5, 0.25, 0];
    const norm = (v: number[]) => Math.hypot(...v);
    const cos = (v: number[]) => v.reduce((a, x, i) => a + x * q[i]!, 0) / (norm(v) * norm(q));
    const bytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    const expected = records
      .filter((r) => r.metadata!.keep)
      .map((r) => ({ id: r.id, score: cos(r.values as number[]) }))
      .sort((a, b) => b.score - a.score || bytes(a.id, b.id));
    for (const topK of [1, 7, 50, 399, 400, 1000]) {
      const r = await index.query({ vector: q, topK, namespace: "many", filter: { keep: true } });
      expect(r.matches.map((m) => m.id)).toEqual(expected.slice(0, topK).map((e) => e.id));
      r.matches.forEach((m, i) => expect(m.score).toBeCloseTo(expected[i]!.score, 5));
    }
  });

  it("implements the metadata filter language", async () => {
    const records: PineconeRecord[] = [
      { id: "a", values: [1, 0, 0, 0], metadata: { genre: "drama", year: 2019, tags: ["x", "y"], live: true } },
      { id: "b", values: [1, 0.1, 0, 0], metadata: { genre: "comedy", year: 2020, tags: ["y"] } },
      { id: "c", values: [1, 0.2, 0, 0], metadata: { genre: "drama", year: 2021 } },
      { id: "d", values: [1, 0.3, 0, 0], metadata: { genre: "news", year: 2022, live: false } },
    ];
    await index.upsert({ records, namespace: "flt" });
    const ids = async (filter: object) => (await index.query({ vector: [1, 0, 0, 0], topK: 10, namespace: "flt", filter })).matches.map((m) => m.id);
    expect(await ids({ genre: "drama" })).toEqual(["a", "c"]);
    expect(await ids({ genre: { $eq: "drama" } })).toEqual(["a", "c"]);
    expect(await ids({ genre: { $ne: "drama" } })).toEqual(["b", "d"]);
    expect(await ids({ genre: { $in: ["comedy", "news"] } })).toEqual(["b", "d"]);
    expect(await ids({ genre: { $nin: ["comedy", "news"] } })).toEqual(["a", "c"]);
    expect(await ids({ year: { $gt: 2020 } })).toEqual(["c", "d"]);
    expect(await ids({ year: { $gte: 2020, $lt: 2022 } })).toEqual(["b", "c"]);
    expect(await ids({ year: { $lte: 2019 } })).toEqual(["a"]);
    expect(await ids({ live: { $exists: true } })).toEqual(["a", "d"]);
    expect(await ids({ live: { $exists: false } })).toEqual(["b", "c"]);
    expect(await ids({ live: true })).toEqual(["a"]);
    expect(await ids({ tags: "y" })).toEqual(["a", "b"]); // a list matches when an element does
    expect(await ids({ tags: { $in: ["x"] } })).toEqual(["a"]);
    expect(await ids({ genre: "drama", year: 2021 })).toEqual(["c"]); // keys are ANDed
    expect(await ids({ $and: [{ genre: "drama" }, { year: { $lt: 2020 } }] })).toEqual(["a"]);
    expect(await ids({ $or: [{ genre: "comedy" }, { year: 2022 }] })).toEqual(["b", "d"]);
    expect(await ids({ $or: [{ genre: "comedy" }, { $and: [{ genre: "drama" }, { year: { $gt: 2020 } }] }] })).toEqual(["b", "c"]);

    for (const filter of [{ genre: { $regex: "d" } }, { $not: { genre: "drama" } }, { year: { $gt: "2020" } }, { genre: { $in: "drama" } }, { $or: [] }]) {
      const res = await raw("POST", "/query", { vector: [1, 0, 0, 0], topK: 1, namespace: "flt", filter });
      expect(res.status, JSON.stringify(filter)).toBe(400);
    }
  });

  it("lists ids by prefix in byte order, in pages linked by pagination.next", async () => {
    const ids = ["u1#m#3", "u1#m#1", "u1#s#2", "u10#m#1", "u2#m#1", "u1#m#é", "u1#m#Z"];
    await index.upsert({ records: ids.map((id) => ({ id, values: [1, 0, 0, 0] })), namespace: "lst" });
    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await index.listPaginated({ namespace: "lst", prefix: "u1#", limit: 2, ...(token ? { paginationToken: token } : {}) });
      pages.push((page.vectors ?? []).map((v) => v.id!));
      token = page.pagination?.next;
    } while (token);
    expect(pages).toEqual([["u1#m#1", "u1#m#3"], ["u1#m#Z", "u1#m#é"], ["u1#s#2"]]);
    const all = await index.listPaginated({ namespace: "lst" });
    expect(all.vectors?.map((v) => v.id)).toEqual(["u10#m#1", "u1#m#1", "u1#m#3", "u1#m#Z", "u1#m#é", "u1#s#2", "u2#m#1"].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(all.pagination).toBeUndefined();
    expect((await raw("GET", "/vectors/list?namespace=lst&paginationToken=garbage")).status).toBe(400);
    expect((await raw("GET", "/vectors/list?namespace=lst&limit=0")).status).toBe(400);
  });

  it("fetches by id and by metadata (paged), deletes by id, filter and deleteAll, and counts per namespace", async () => {
    await index.upsert({
      records: Array.from({ length: 5 }, (_, i) => ({ id: `r${i}`, values: [1, i, 0, 0], metadata: { item: `i${i % 2}` } })),
      namespace: "crud",
    });
    const fetched = await index.fetch({ ids: ["r1", "missing"], namespace: "crud" });
    expect(Object.keys(fetched.records)).toEqual(["r1"]);
    expect(fetched.records["r1"]).toMatchObject({ id: "r1", values: [1, 1, 0, 0], metadata: { item: "i1" } });

    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await index.fetchByMetadata({ namespace: "crud", filter: { item: { $in: ["i0"] } }, limit: 2, ...(token ? { paginationToken: token } : {}) });
      seen.push(...Object.keys(page.records));
      token = page.pagination?.next;
    } while (token);
    expect(seen).toEqual(["r0", "r2", "r4"]);

    expect((await index.describeIndexStats()).namespaces?.["crud"]).toEqual({ recordCount: 5 });
    await index.deleteMany({ ids: ["r0", "nope"], namespace: "crud" });
    await index.deleteMany({ filter: { item: "i1" }, namespace: "crud" });
    expect(Object.keys((await index.fetch({ ids: ["r0", "r1", "r2", "r3", "r4"], namespace: "crud" })).records).sort()).toEqual(["r2", "r4"]);
    await index.deleteAll({ namespace: "crud" });
    expect((await index.describeIndexStats()).namespaces?.["crud"]).toBeUndefined();
  });

  it("describes the index like a serverless one: metric, dimension, no filtered stats", async () => {
    const stats = await raw("POST", "/describe_index_stats", {});
    expect(stats.json).toMatchObject({ dimension: 4, metric: "cosine", vectorType: "dense", indexFullness: 0 });
    const filtered = await raw("POST", "/describe_index_stats", { filter: { genre: "drama" } });
    expect(filtered).toMatchObject({ status: 400, json: { message: expect.stringMatching(/do not support describing index stats with metadata filtering/) } });
  });

  it("records what the client sent: its API version and every route", () => {
    const st = s.stats();
    expect(st.apiVersions).toEqual(["2026-07"]);
    expect(st.requests["POST /vectors/upsert"]).toBeGreaterThan(0);
    expect(Object.keys(st.requests).some((r) => r.includes("/indexes"))).toBe(false);
  });
});

describe("Pinecone stand-in's control plane", () => {
  // Its own server of a fixed dimension and a name, as a client that creates its index by name
  // finds it; the suite above checks that Strata's own calls never reach /indexes.
  let c: PineconeServer;
  beforeAll(async () => {
    c = await startPineconeServer({ apiKey: "ctl", dimension: 3, indexName: "memory-messages-3" });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("answers a create of its own index with 409 ALREADY_EXISTS, and refuses to make another", async () => {
    const client = new Pinecone({ apiKey: "ctl", controllerHostUrl: c.host });
    const spec = { serverless: { cloud: "aws" as const, region: "us-east-1" } };
    await expect(client.createIndex({ name: "memory-messages-3", dimension: 3, spec })).rejects.toMatchObject({ name: "PineconeConflictError" });
    await expect(client.createIndex({ name: "memory-messages-3", dimension: 3, spec, suppressConflicts: true })).resolves.toBeUndefined();
    const other = await fetch(`${c.host}/indexes`, { method: "POST", headers: { "Api-Key": "ctl" }, body: JSON.stringify({ name: "another" }) });
    expect(other.status).toBe(501);
    expect(await other.json()).toEqual({ error: { code: "UNIMPLEMENTED", message: "this stand-in serves one index, memory-messages-3; it cannot create another" }, status: 501 });
    const nameless = await fetch(`${c.host}/indexes`, { method: "POST", headers: { "Api-Key": "ctl" }, body: "{}" });
    expect(nameless.status).toBe(400);
    expect(c.stats().namespaces).toEqual({});
  });

  it("describes its index in both models: the schema of API 2026-07 and the top-level fields of 2024-07", async () => {
    const res = await fetch(`${c.host}/indexes/memory-messages-3`, { headers: { "Api-Key": "ctl" } });
    expect(await res.json()).toMatchObject({
      name: "memory-messages-3",
      host: c.host,
      dimension: 3,
      metric: "cosine",
      spec: { serverless: { cloud: "aws", region: "us-east-1" } },
      schema: { fields: { _values: { type: "dense_vector", dimension: 3, metric: "cosine" } } },
      status: { ready: true, state: "Ready" },
    });
    const missing = await fetch(`${c.host}/indexes/nope`, { headers: { "Api-Key": "ctl" } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
  });

  it("serves @mastra/pinecone (client 3, API 2024-07) through create, upsert, a filtered query and describe", async () => {
    const { PineconeVector } = await import("@mastra/pinecone");
    const store = new PineconeVector({ id: "t", apiKey: "ctl", controllerHostUrl: c.host });
    // Mastra's Memory calls createIndex before every recall: against an existing index that
    // is a 409, then a describe to check the dimension.
    await store.createIndex({ indexName: "memory-messages-3", dimension: 3 });
    await store.upsert({
      indexName: "memory-messages-3",
      vectors: [[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]],
      ids: ["a", "b", "c"],
      metadata: [{ resource_id: "u1" }, { resource_id: "u2" }, { resource_id: "u1" }],
    });
    const hits = await store.query({ indexName: "memory-messages-3", queryVector: [1, 0, 0], topK: 2, filter: { resource_id: "u1" } });
    expect(hits.map((h) => h.id)).toEqual(["a", "c"]);
    expect(hits[0]!.score).toBeCloseTo(1, 6);
    await expect(store.describeIndex({ indexName: "memory-messages-3" })).resolves.toMatchObject({ dimension: 3, metric: "cosine", count: 3 });
    await expect(store.createIndex({ indexName: "memory-messages-3", dimension: 4 })).rejects.toThrow(/already exists with 3 dimensions/);
    expect(c.stats().apiVersions).toContain("2024-07");
  });
});

describe("Pinecone stand-in's matrix by column", () => {
  // Blocks of 64 rows (the first grows 16 → 32 → 64), so a few hundred vectors cross blocks,
  // and every write below moves rows: an overwrite in place, a delete that moves the last row
  // into the hole, a block emptied by deletes.
  const metrics = ["cosine", "dotproduct", "euclidean"] as const;
  const servers: PineconeServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((x) => x.close()));
  });

  /** The old row-by-row scoring, over what the test wrote: the reference. */
  function reference(metric: (typeof metrics)[number], stored: Map<string, { values: Float32Array; g: number }>, q: Float32Array, g: number | null) {
    const norm = (v: Float32Array) => {
      let s2 = 0;
      for (let i = 0; i < v.length; i++) s2 += v[i]! * v[i]!;
      return Math.sqrt(s2);
    };
    const qNorm = norm(q);
    const rows = [...stored].filter(([, r]) => g === null || r.g === g);
    const scored = rows.map(([id, { values }]) => {
      let dot = 0;
      if (metric === "euclidean") {
        for (let i = 0; i < q.length; i++) dot += (q[i]! - values[i]!) ** 2;
        return { id, score: dot };
      }
      for (let i = 0; i < q.length; i++) if (q[i] !== 0) dot += q[i]! * values[i]!;
      const n = norm(values);
      return { id, score: metric === "dotproduct" ? dot : qNorm === 0 || n === 0 ? 0 : dot / (qNorm * n) };
    });
    const bytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    return scored.sort((a, b) => (metric === "euclidean" ? a.score - b.score : b.score - a.score) || bytes(a.id, b.id));
  }

  for (const metric of metrics) {
    it(`scores and keeps rows exactly as a scan of each vector would (${metric}), through overwrites and deletes`, async () => {
      const srv = await startPineconeServer({ apiKey: "k", dimension: 8, metric, blockRows: 64 });
      servers.push(srv);
      const call = async (path: string, body: unknown, method = "POST") => {
        const res = await fetch(`${srv.host}${path}`, { method, headers: { "Api-Key": "k", "Content-Type": "application/json" }, ...(method === "POST" ? { body: JSON.stringify(body) } : {}) });
        expect(res.status, path).toBe(200);
        return (await res.json()) as any;
      };
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      // Sparse, as the hashing embedder's: about half the dimensions zero; never all zero.
      const vector = () => {
        const v = Float32Array.from({ length: 8 }, () => (rand() < 0.5 ? 0 : Math.round((rand() * 2 - 1) * 1000) / 100));
        if (v.every((x) => x === 0)) v[0] = 1;
        return v;
      };
      const stored = new Map<string, { values: Float32Array; g: number }>();
      const upsert = async (ids: string[]) => {
        const records = ids.map((id) => {
          const r = { values: vector(), g: Math.floor(rand() * 3) };
          stored.set(id, r);
          return { id, values: Array.from(r.values), metadata: { g: r.g } };
        });
        await call("/vectors/upsert", { vectors: records, namespace: "m" });
      };
      // Queries with and without a filter (the same filters each time: the stand-in keeps
      // which rows a filter passes until the next write).
      const check = async () => {
        expect(srv.stats().namespaces["m"]).toBe(stored.size);
        for (let t = 0; t < 6; t++) {
          const q = vector();
          const g = t % 3 === 0 ? null : t % 3;
          for (const topK of [1, 10, 1000]) {
            const r = await call("/query", { vector: Array.from(q), topK, namespace: "m", ...(g === null ? {} : { filter: { g: { $eq: g } } }) });
            expect(r.matches.map((m: { id: string; score: number }) => ({ id: m.id, score: m.score }))).toEqual(reference(metric, stored, q, g).slice(0, topK));
          }
        }
      };
      for (let i = 0; i < 300; i += 100) await upsert(Array.from({ length: 100 }, (_, k) => `v${i + k}`));
      await check();
      await upsert(Array.from({ length: 40 }, (_, k) => `v${k * 7}`)); // overwrites in place
      await check();
      const gone = [...Array.from({ length: 30 }, (_, k) => `v${299 - k}`), ...Array.from({ length: 30 }, (_, k) => `v${k * 5 + 1}`)];
      await call("/vectors/delete", { ids: gone, namespace: "m" });
      for (const id of gone) stored.delete(id);
      await check();
      await call("/vectors/delete", { filter: { g: 2 }, namespace: "m" });
      for (const [id, r] of stored) if (r.g === 2) stored.delete(id);
      await check();
      await upsert(Array.from({ length: 30 }, (_, k) => `w${k}`));
      await check();
      // Every row's values read back as written, after the rows moved.
      const ids = [...stored.keys()];
      for (let i = 0; i < ids.length; i += 100) {
        const url = `/vectors/fetch?namespace=m&${ids.slice(i, i + 100).map((id) => `ids=${id}`).join("&")}`;
        const got = await call(url, undefined, "GET");
        for (const id of ids.slice(i, i + 100)) expect(got.vectors[id].values, id).toEqual(Array.from(stored.get(id)!.values));
      }
      // A query by id uses the row's values.
      const byId = await call("/query", { id: "w3", topK: 5, namespace: "m" });
      expect(byId.matches.map((m: { id: string }) => m.id)).toEqual(reference(metric, stored, stored.get("w3")!.values, null).slice(0, 5).map((e) => e.id));
    });
  }

  it("refuses a block size that is not a power of two", async () => {
    await expect(startPineconeServer({ blockRows: 48 })).rejects.toThrow(/power of two/);
  });
});
