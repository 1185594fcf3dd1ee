import { afterAll, describe, expect, it } from "vitest";
import { createLocalVectorIndex } from "../../lib/adapters/local/vector-index.ts";
import { createScanThread, type ScanThread } from "../../lib/adapters/local/vector-scan.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { vectorIndexContract } from "./vector-index.contract.ts";

vectorIndexContract("local", async () => ({ store: createLocalVectorIndex({ sql: await sharedPglite() }) }));

// With no memory budget every other user is evicted on each query: the reload path runs throughout.
vectorIndexContract("local, evicting", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), memoryBudgetBytes: 0 }),
}));

// The approximate tier (ivf.ts) on for every user, however small, probing every list (so its
// answers are exact and the contract holds as it stands): its lists kept in step with writes.
vectorIndexContract("local, approximate", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: 0, probeFraction: 1 }),
}));

// Every query's sums on the scan thread (vector-scan.ts), however small the user, exactly and
// on the approximate tier: the same answers, with writes held while a scan reads the matrix.
vectorIndexContract("local, scans on a second thread", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), offloadMinWork: 0 }),
}));
vectorIndexContract("local, approximate, scans on a second thread", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: 0, probeFraction: 1, offloadMinWork: 0 }),
}));

// Matrices in blocks of 16 rows (the default is 8192): every user of the contract spans
// several, exactly, on the approximate tier, and with the sums on the scan thread.
vectorIndexContract("local, blocks of 16 rows", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), matrixBlockRows: 16 }),
}));
vectorIndexContract("local, approximate, blocks of 16 rows, scans on a second thread", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: 0, probeFraction: 1, offloadMinWork: 0, matrixBlockRows: 16 }),
}));

describe("local vector index", () => {
  it("keeps writes that commit while a user's vectors are loading", async () => {
    const sql = await sharedPglite();
    // Holds the answer of the load's select until the writes below have committed.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let selected!: () => void;
    const selectDone = new Promise<void>((r) => (selected = r));
    const slow: SqlClient = {
      ...sql,
      async query<T>(text: string, params?: unknown[]) {
        const rows = await sql.query<T>(text, params);
        if (text.includes("string_agg(encode(embedding")) {
          selected();
          await gate;
        }
        return rows;
      },
    };
    const index = createLocalVectorIndex({ sql: slow });
    const t = uid("tenant"), u = uid("user"), s = uid("session");
    const v = (i: number) => Float32Array.from({ length: 4 }, (_, k) => (k === i ? 1 : 0));
    const rec = (id: string, i: number) => ({ tenantId: t, userId: u, sessionId: s, kind: "message" as const, id, model: "m", vector: v(i) });

    await index.upsert([rec("old", 0), rec("doomed", 0)]);
    const pending = index.query({ tenantId: t, userId: u, vector: v(0), topK: 10 });
    await selectDone;
    await index.upsert([rec("new", 0)]);
    await index.deleteByIds(t, ["doomed"]);
    release();
    expect((await pending).map((m) => m.id).sort()).toEqual(["new", "old"]);
    expect((await index.query({ tenantId: t, userId: u, vector: v(0), topK: 10 })).map((m) => m.id).sort()).toEqual(["new", "old"]);
  });

  it("holds writes while a scan reads the matrix on the scan thread, and a later query sees them", async () => {
    const sql = await sharedPglite();
    // The real scan thread, with its answers held back until the writes below are acknowledged.
    const real = createScanThread();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    let answered = 0;
    const held: ScanThread = {
      async run(req, use) {
        started();
        // The thread's sums are copied out: its arrays serve the next requests.
        const sums = await real.run(req, (s) => Float64Array.from(s));
        await gate;
        if (sums) answered++;
        return sums && use(sums);
      },
      close: () => real.close(),
    };
    const index = createLocalVectorIndex({ sql, offloadMinWork: 0, scanThread: held });
    const t = uid("tenant"), u = uid("user"), s = uid("session");
    const v = (i: number) => Float32Array.from({ length: 8 }, (_, k) => (k === i ? 1 : k === 7 ? 0.1 : 0));
    const rec = (id: string, i: number) => ({ tenantId: t, userId: u, sessionId: s, kind: "message" as const, id, model: "m", vector: v(i) });
    try {
      await index.upsert([rec("a", 0), rec("b", 1), rec("c", 2), rec("d", 0)]);
      const pending = index.query({ tenantId: t, userId: u, vector: v(0), topK: 2 });
      await inFlight;
      // While the scan holds the rows: "a" is deleted (the last row, "d", moves into its place),
      // "e" is added and "c" changed. Each is acknowledged (in the table) before the scan ends.
      await index.deleteByIds(t, ["a"]);
      await index.upsert([rec("e", 0), rec("c", 0)]);
      // A query made now waits for the held writes to land, then scans.
      const waiting = index.query({ tenantId: t, userId: u, vector: v(0), topK: 10 });
      release();
      // The scan answers from the rows as they were when it began: ids and scores match.
      const before = await pending;
      expect(before.map((m) => m.id)).toEqual(["a", "d"]);
      expect(before[0]!.score).toBeCloseTo(1, 6);
      // Queries made after the writes were acknowledged see every one of them.
      for (const after of [await waiting, await index.query({ tenantId: t, userId: u, vector: v(0), topK: 10 })]) {
        expect(after.map((m) => m.id).sort()).toEqual(["b", "c", "d", "e"]);
        expect(after.slice(0, 3).map((m) => m.id).sort()).toEqual(["c", "d", "e"]);
      }
      expect(answered).toBe(3); // every scan ran on the thread
    } finally {
      await index.close();
    }
  });

  it("scores every row exactly as a row-by-row dense dot product would, to the bit", async () => {
    // 37 dimensions (not a multiple of 4) and more rows than one scan block, with rows
    // removed (the last row moves into the gap) and replaced, queried both from the matrix
    // kept by the writes and from one loaded from the table.
    const sql = await sharedPglite();
    const index = createLocalVectorIndex({ sql });
    const t = uid("tenant"), u = uid("user"), s = uid("session");
    const dims = 37;
    let seed = 7;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    // Half the values zero: sparse rows, as a hashing embedder makes for short texts.
    const vector = (density: number) => Float32Array.from({ length: dims }, () => (random() < density ? random() * 2 - 1 : 0));
    const stored = new Map<string, Float32Array>();
    const records = Array.from({ length: 2600 }, (_, i) => {
      const v = vector(0.5);
      stored.set(`m${i}`, v);
      return { tenantId: t, userId: u, sessionId: i % 3 === 0 ? s : `${s}-other`, kind: "message" as const, id: `m${i}`, model: "m", vector: v };
    });
    await index.upsert(records);
    const gone = records.filter((_, i) => i % 7 === 0).map((r) => r.id);
    await index.deleteByIds(t, gone);
    for (const id of gone) stored.delete(id);
    const replaced = records.filter((_, i) => i % 11 === 1).map((r) => ({ ...r, vector: vector(0.5) }));
    await index.upsert(replaced);
    for (const r of replaced) stored.set(r.id, r.vector);

    /** The unit row as the index stores it: float32 values over their float64 norm. */
    const unit = (v: Float32Array) => {
      const out = Float32Array.from(v);
      let sum = 0;
      for (let i = 0; i < dims; i++) sum += out[i]! * out[i]!;
      const norm = Math.sqrt(sum);
      for (let i = 0; i < dims; i++) out[i] = norm > 0 ? out[i]! / norm : 0;
      return out;
    };
    const dense = (a: Float32Array, b: Float32Array) => {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let i = 0;
      for (; i + 3 < dims; i += 4) {
        s0 += a[i]! * b[i]!;
        s1 += a[i + 1]! * b[i + 1]!;
        s2 += a[i + 2]! * b[i + 2]!;
        s3 += a[i + 3]! * b[i + 3]!;
      }
      for (; i < dims; i++) s0 += a[i]! * b[i]!;
      return s0 + s1 + s2 + s3;
    };
    const rows = [...stored].map(([id, v]) => ({ id, v: unit(v) }));
    const reread = createLocalVectorIndex({ sql });
    // The same sums on the scan thread (vector-scan.ts).
    const threaded = createLocalVectorIndex({ sql, offloadMinWork: 0 });
    // Query densities that leave each of the four lanes a few columns, and eight or more (the
    // scan adds eight a pass, then four, then one).
    for (const density of [0.1, 0.5, 0.8, 1]) {
      const q = vector(density);
      const expected = rows
        .map((r) => ({ id: r.id, score: dense(r.v, unit(q)) }))
        .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
        .slice(0, 50);
      for (const store of [index, reread, threaded]) {
        const got = await store.query({ tenantId: t, userId: u, vector: q, topK: 50 });
        expect(got.map((m) => ({ id: m.id, score: m.score }))).toEqual(expected);
      }
      const sessionRows = rows.filter((r) => Number(r.id.slice(1)) % 3 === 0);
      const expectedInSession = sessionRows
        .map((r) => ({ id: r.id, score: dense(r.v, unit(q)) }))
        .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
        .slice(0, 5);
      for (const store of [index, threaded]) {
        const inSession = await store.query({ tenantId: t, userId: u, vector: q, topK: 5, sessionId: s });
        expect(inSession.map((m) => ({ id: m.id, score: m.score }))).toEqual(expectedInSession);
      }
    }
    await threaded.close();
  });
});

afterAll(closeSharedPglite);
