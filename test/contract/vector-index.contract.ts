// The behaviour every VectorIndex adapter must show (in-process over PGlite, Pinecone, ...).
// An adapter's test file calls vectorIndexContract() with a setup that builds it; calling
// setup() again must give a second instance over the same backing data. Tests an adapter
// cannot pass are listed by title in `skip`; an eventually consistent adapter passes a
// `settle` that waits until its writes are visible.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VectorIndex, VectorKind, VectorRecord } from "../../lib/core/ports.ts";
import { uid } from "../fixtures/pglite.ts";

export interface VectorIndexSetup {
  store: VectorIndex;
  cleanup?: () => Promise<void>;
}

export interface VectorContractOptions {
  /** Titles of tests this adapter is known not to pass. */
  skip?: string[];
  /** Called after writes, before the reads that check them. */
  settle?: () => Promise<void>;
}

const DIMS = 8;

/** A unit vector along axis `i`, tilted towards axis `j` by `tilt` (0..1). */
function axis(i: number, j = (i + 1) % DIMS, tilt = 0, dims = DIMS): Float32Array {
  const v = new Float32Array(dims);
  v[i] = Math.sqrt(1 - tilt * tilt);
  v[j] = (v[j] ?? 0) + tilt;
  return v;
}

/** Deterministic pseudo-random vectors (not unit length: the index must normalise). */
function randomVectors(n: number, dims: number, seed: number): Float32Array[] {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 2 ** 32) * 2 - 1;
  };
  return Array.from({ length: n }, () => Float32Array.from({ length: dims }, next));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

export function vectorIndexContract(name: string, setup: () => Promise<VectorIndexSetup>, options: VectorContractOptions = {}): void {
  const skip = new Set(options.skip ?? []);
  const test = (title: string, fn: () => Promise<void>) => (skip.has(title) ? it.skip : it)(title, fn);
  const settle = options.settle ?? (async () => {});

  describe(`VectorIndex contract: ${name}`, () => {
    let store: VectorIndex;
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(async () => {
      const s = await setup();
      store = s.store;
      if (s.cleanup) cleanups.push(s.cleanup);
    });
    afterAll(async () => {
      await store?.close();
      for (const c of cleanups) await c();
    });

    /** A fresh tenant and user with helpers bound to them. */
    function scope(tenantId = uid("tenant"), userId = uid("user")) {
      const sessionId = uid("session");
      const record = (id: string, vector: Float32Array, over: Partial<VectorRecord> = {}): VectorRecord => ({
        tenantId, userId, sessionId, kind: "message", id, model: "test-model", vector, ...over,
      });
      const query = (vector: Float32Array, topK = 10, extra: { sessionId?: string; kinds?: VectorKind[] } = {}) =>
        store.query({ tenantId, userId, vector, topK, ...extra });
      const ids = async (vector: Float32Array, topK = 10, extra: { sessionId?: string; kinds?: VectorKind[] } = {}) =>
        (await query(vector, topK, extra)).map((m) => m.id);
      return { tenantId, userId, sessionId, record, query, ids };
    }

    test("names its adapter and answers ping", async () => {
      expect(store.adapter).toMatch(/\S/);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    test("query returns nearest first with cosine scores and the stored kind and session", async () => {
      const s = scope();
      await store.upsert([
        s.record("far", axis(3)),
        s.record("near", axis(0, 1, 0.2)),
        s.record("exact", axis(0)),
        s.record("mid", axis(0, 1, 0.6), { kind: "summary" }),
      ]);
      await settle();
      const matches = await s.query(axis(0), 3);
      expect(matches.map((m) => m.id)).toEqual(["exact", "near", "mid"]);
      expect(matches[0]).toMatchObject({ id: "exact", kind: "message", sessionId: s.sessionId });
      expect(matches[0]!.score).toBeCloseTo(1, 4);
      expect(matches[1]!.score).toBeCloseTo(Math.sqrt(1 - 0.04), 4);
      expect(matches[2]).toMatchObject({ kind: "summary" });
      expect(matches[2]!.score).toBeCloseTo(0.8, 4);
    });

    test("query finds the exact top K among many vectors", async () => {
      const s = scope();
      const dims = 64;
      const vectors = randomVectors(300, dims, 7);
      await store.upsert(vectors.map((v, i) => s.record(`v${i}`, v)));
      await settle();
      for (const q of randomVectors(3, dims, 99)) {
        const expected = vectors
          .map((v, i) => ({ id: `v${i}`, score: cosine(q, v) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, 10);
        const got = await s.query(q, 10);
        expect(got.map((m) => m.id)).toEqual(expected.map((e) => e.id));
        got.forEach((m, i) => expect(m.score).toBeCloseTo(expected[i]!.score, 4));
      }
    });

    test("scores by direction: vectors of any length are normalised", async () => {
      const s = scope();
      const long = axis(0, 1, 0.6).map((x) => x * 40);
      await store.upsert([s.record("long", long), s.record("short", axis(1).map((x) => x / 1000))]);
      await settle();
      const matches = await s.query(axis(0).map((x) => x * 3), 2);
      expect(matches.map((m) => m.id)).toEqual(["long", "short"]);
      expect(matches[0]!.score).toBeCloseTo(0.8, 4);
      expect(matches[1]!.score).toBeCloseTo(0, 4);
    });

    test("a zero vector scores 0", async () => {
      const s = scope();
      await store.upsert([s.record("zero", new Float32Array(DIMS)), s.record("x", axis(0))]);
      await settle();
      const matches = await s.query(axis(0), 5);
      expect(matches.map((m) => m.id)).toEqual(["x", "zero"]);
      expect(matches[1]!.score).toBe(0);
    });

    test("topK bounds the answer", async () => {
      const s = scope();
      await store.upsert(Array.from({ length: 6 }, (_, i) => s.record(`r${i}`, axis(i))));
      await settle();
      expect(await s.query(axis(0), 2)).toHaveLength(2);
      expect(await s.query(axis(0), 50)).toHaveLength(6);
    });

    test("upsert replaces by (tenant, kind, id)", async () => {
      const s = scope();
      const session2 = uid("session");
      await store.upsert([s.record("a", axis(0)), s.record("b", axis(4))]);
      await settle();
      expect(await s.ids(axis(0), 1)).toEqual(["a"]);

      await store.upsert([s.record("a", axis(5), { sessionId: session2 })]);
      await store.upsert([s.record("a", axis(4, 5, 0.1), { sessionId: session2 })]);
      await settle();
      expect(await store.count(s.tenantId, s.userId)).toBe(2);
      const matches = await s.query(axis(4), 2);
      expect(matches.map((m) => m.id)).toEqual(["b", "a"]);
      expect(matches[1]!.sessionId).toBe(session2);
      expect(matches.filter((m) => m.id === "a")).toHaveLength(1);
    });

    test("the same id under different kinds is a different vector", async () => {
      const s = scope();
      await store.upsert([s.record("x", axis(0)), s.record("x", axis(1), { kind: "memory" })]);
      await settle();
      expect(await store.count(s.tenantId, s.userId)).toBe(2);
      const matches = await s.query(axis(1), 2);
      expect(matches.map((m) => [m.id, m.kind])).toEqual([["x", "memory"], ["x", "message"]]);
    });

    test("filters by session and by kinds", async () => {
      const s = scope();
      const other = uid("session");
      await store.upsert([
        s.record("m1", axis(0)),
        s.record("m2", axis(0, 1, 0.3), { sessionId: other }),
        s.record("s1", axis(0, 1, 0.1), { kind: "summary" }),
        s.record("mem", axis(0, 1, 0.2), { kind: "memory", sessionId: other }),
      ]);
      await settle();
      expect(await s.ids(axis(0), 10, { sessionId: other })).toEqual(["mem", "m2"]);
      expect(await s.ids(axis(0), 10, { kinds: ["summary", "memory"] })).toEqual(["s1", "mem"]);
      expect(await s.ids(axis(0), 10, { sessionId: s.sessionId, kinds: ["message"] })).toEqual(["m1"]);
      expect(await s.ids(axis(0), 10, { sessionId: uid("session") })).toEqual([]);
      expect(await s.ids(axis(0), 10)).toEqual(["m1", "s1", "mem", "m2"]);
    });

    test("isolates tenants and users", async () => {
      const a = scope();
      const sameTenantOtherUser = scope(a.tenantId);
      const otherTenantSameUser = scope(uid("tenant"), a.userId);
      await store.upsert([a.record("shared-id", axis(0)), a.record("a-only", axis(1))]);
      await store.upsert([sameTenantOtherUser.record("b-only", axis(0))]);
      await store.upsert([otherTenantSameUser.record("shared-id", axis(2))]);
      await settle();

      expect(await a.ids(axis(0))).toEqual(["shared-id", "a-only"]);
      expect(await sameTenantOtherUser.ids(axis(0))).toEqual(["b-only"]);
      expect(await otherTenantSameUser.ids(axis(0))).toEqual(["shared-id"]);
      expect(await scope(a.tenantId).ids(axis(0))).toEqual([]);
      expect(await store.count(a.tenantId, a.userId)).toBe(2);
      expect(await store.count(a.tenantId)).toBe(3);
      expect(await store.count(otherTenantSameUser.tenantId)).toBe(1);
      expect(await store.count(uid("tenant"))).toBe(0);
    });

    test("deleteByIds removes every kind of those ids in one tenant only", async () => {
      const s = scope();
      const otherTenant = scope(uid("tenant"), s.userId);
      await store.upsert([
        s.record("gone", axis(0)),
        s.record("gone", axis(0), { kind: "summary" }),
        s.record("kept", axis(1)),
      ]);
      await store.upsert([otherTenant.record("gone", axis(0))]);
      await settle();
      expect(await s.ids(axis(0))).toContain("gone"); // cached by now, where an index caches

      await store.deleteByIds(s.tenantId, ["gone", "never-stored"]);
      await settle();
      expect(await store.count(s.tenantId, s.userId)).toBe(1);
      expect(await s.ids(axis(0))).toEqual(["kept"]);
      expect(await otherTenant.ids(axis(0))).toEqual(["gone"]);
      await expect(store.deleteByIds(s.tenantId, [])).resolves.toBeUndefined();
    });

    test("deleteByUser removes one user's vectors", async () => {
      const s = scope();
      const neighbour = scope(s.tenantId);
      await store.upsert([s.record("a", axis(0)), s.record("b", axis(1), { kind: "memory" })]);
      await store.upsert([neighbour.record("n", axis(0))]);
      await settle();
      expect(await s.ids(axis(0))).toHaveLength(2);

      await store.deleteByUser(s.tenantId, s.userId);
      await settle();
      expect(await store.count(s.tenantId, s.userId)).toBe(0);
      expect(await store.count(s.tenantId)).toBe(1);
      expect(await s.ids(axis(0))).toEqual([]);
      expect(await neighbour.ids(axis(0))).toEqual(["n"]);

      await store.upsert([s.record("again", axis(2))]);
      await settle();
      expect(await s.ids(axis(2))).toEqual(["again"]);
    });

    test("writes after a query are seen by the next query", async () => {
      const s = scope();
      await store.upsert([s.record("first", axis(1))]);
      await settle();
      expect(await s.ids(axis(0))).toEqual(["first"]);
      await store.upsert([s.record("second", axis(0))]);
      await settle();
      expect(await s.ids(axis(0))).toEqual(["second", "first"]);
      await store.upsert([s.record("second", axis(7))]);
      await store.deleteByIds(s.tenantId, ["first"]);
      await settle();
      const matches = await s.query(axis(7));
      expect(matches.map((m) => m.id)).toEqual(["second"]);
      expect(matches[0]!.score).toBeCloseTo(1, 4);
    });

    test("queries and writes running together lose no write", async () => {
      const s = scope();
      const n = 20;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          i % 2 ? store.upsert([s.record(`c${i}`, axis(i % DIMS))]) : s.query(axis(0)).then(() => store.upsert([s.record(`c${i}`, axis(0))])),
        ),
      );
      await settle();
      expect(await s.query(axis(0), 100)).toHaveLength(n);
      expect(await store.count(s.tenantId, s.userId)).toBe(n);
    });

    test("a second instance over the same backing data sees the first one's vectors", async () => {
      const s = scope();
      await store.upsert([s.record("a", axis(0)), s.record("b", axis(1), { kind: "memory" })]);
      await settle();
      expect(await s.ids(axis(0))).toEqual(["a", "b"]);

      const second = await setup();
      if (second.cleanup) cleanups.push(second.cleanup);
      try {
        const matches = await second.store.query({ tenantId: s.tenantId, userId: s.userId, vector: axis(1), topK: 5 });
        expect(matches.map((m) => [m.id, m.kind])).toEqual([["b", "memory"], ["a", "message"]]);
        expect(matches[0]!.score).toBeCloseTo(1, 4);
        expect(await second.store.count(s.tenantId, s.userId)).toBe(2);
      } finally {
        await second.store.close();
      }
    });
  });
}
