// The embedded vector index's approximate tier (ivf.ts): recall against the exact scan on a
// seeded corpus, and its lists kept in step with writes, removes, clears and reloads.
// (The port's behaviour is covered by test/contract/vector-index.local.test.ts, which also
// runs the contract with the approximate tier on for every user.)

import { afterAll, describe, expect, it } from "vitest";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import type { VectorKind, VectorMatch, VectorRecord } from "../../core/ports.ts";
import { createLocalEmbedder } from "./embedder.ts";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { stampingTurns, turnsUntil } from "../../../test/fixtures/turns.ts";
import { createLocalVectorIndex, type LocalVectorIndexOptions } from "./vector-index.ts";

afterAll(closeSharedPglite);

const embedder = createLocalEmbedder();

// Seeded, so the corpus (and the recall measured on it) is the same every run.
const rng = mulberry32;

const TOPICS = [
  "postgres pool exhausted under load after the deploy",
  "redis cache misses spike when the ttl expires",
  "kafka consumer lag grows on the payments topic",
  "the react build fails on a missing peer dependency",
  "terraform plan wants to recreate the load balancer",
  "my sister is allergic to peanuts and shellfish",
  "we hiked the ridge trail near the lake in june",
  "the dog needs a vet appointment for vaccines",
  "booked flights to lisbon for the conference",
  "the budget spreadsheet double counts the invoices",
  "kubernetes pods restart with out of memory errors",
  "retry the webhook with exponential backoff and jitter",
];
const WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu".split(" ");

function sentence(r: () => number): string {
  const topic = TOPICS[Math.floor(r() * TOPICS.length)]!.split(" ");
  const out: string[] = [];
  for (const w of topic) if (r() < 0.7) out.push(w);
  const extra = 1 + Math.floor(r() * 6);
  for (let i = 0; i < extra; i++) out.splice(Math.floor(r() * (out.length + 1)), 0, WORDS[Math.floor(r() * WORDS.length)]!);
  return out.join(" ");
}

async function corpus(tenantId: string, userId: string, n: number, seed: number, idPrefix = "m"): Promise<VectorRecord[]> {
  const r = rng(seed);
  const texts = Array.from({ length: n }, () => sentence(r));
  const vectors = await embedder.embed(texts);
  return vectors.map((vector, i) => ({
    tenantId,
    userId,
    sessionId: `s${i % 17}`,
    kind: (i % 10 === 9 ? "summary" : "message") as VectorKind,
    id: `${idPrefix}${i}`,
    model: embedder.model,
    vector,
  }));
}

async function pair(options: Partial<LocalVectorIndexOptions> = {}) {
  const sql = await sharedPglite();
  return {
    exact: createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER }),
    approx: createLocalVectorIndex({ sql, exactBelowRows: 0, ...options }),
  };
}

const ids = (ms: VectorMatch[]) => ms.map((m) => m.id);

async function queryVectors(n: number, seed: number): Promise<Float32Array[]> {
  const r = rng(seed);
  return embedder.embed(Array.from({ length: n }, () => sentence(r)));
}

describe("local vector index, approximate tier", () => {
  it("finds most of the exact top 10 and top 40 on a seeded corpus, with exact scores", async () => {
    const { exact, approx } = await pair();
    const t = uid("tenant");
    await exact.upsert(await corpus(t, "u", 4000, 1));
    expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
    let r10 = 0, r40 = 0;
    const queries = await queryVectors(100, 2);
    for (const vector of queries) {
      const e = await exact.query({ tenantId: t, userId: "u", vector, topK: 40 });
      const a = await approx.query({ tenantId: t, userId: "u", vector, topK: 40 });
      expect(a).toHaveLength(40);
      const exactScore = new Map(e.map((m) => [m.id, m.score]));
      for (const m of a) if (exactScore.has(m.id)) expect(m.score).toBe(exactScore.get(m.id));
      const top10 = new Set(ids(e.slice(0, 10)));
      r10 += a.slice(0, 10).filter((m) => top10.has(m.id)).length / 10;
      r40 += a.filter((m) => exactScore.has(m.id)).length / 40;
    }
    // Measured on this corpus at the default probe (8 of 63 lists): 0.978 / 0.969. The floors
    // leave a little room; bench/vector-recall.ts measures the synthetic chat at 10k and 100k.
    expect(r10 / queries.length).toBeGreaterThanOrEqual(0.95);
    expect(r40 / queries.length).toBeGreaterThanOrEqual(0.94);
  });

  it("two users' loads at once send their pages one a turn of the event loop", async () => {
    const sql = await sharedPglite();
    const t = uid("tenant");
    const exactly = { sql, exactBelowRows: Number.MAX_SAFE_INTEGER };
    for (const user of ["u", "v"]) await createLocalVectorIndex(exactly).upsert(await corpus(t, user, 30, 5, user));
    const stamped = stampingTurns(sql, (text) => text.includes("string_agg(encode(embedding"));
    const index = createLocalVectorIndex({ ...exactly, sql: stamped.client, loadPageRows: 3 });
    const [vector] = await queryVectors(1, 6);
    const found = await Promise.all(["u", "v"].map((userId) => index.query({ tenantId: t, userId, vector: vector!, topK: 100 })));
    stamped.stop();
    expect(found.map((f) => f.length)).toEqual([30, 30]);
    expect(stamped.turns.length).toBeGreaterThanOrEqual(18);
    expect(new Set(stamped.turns).size).toBe(stamped.turns.length);
  });

  it("builds a loading user's matrix in slices, with turns of the event loop between them, and replays writes that land on those turns", async () => {
    const sql = await sharedPglite();
    const t = uid("tenant");
    const exactly = { sql, exactBelowRows: Number.MAX_SAFE_INTEGER };
    const rows = await corpus(t, "u", 300, 5);
    await createLocalVectorIndex(exactly).upsert(rows);
    // A turn after every row loaded (0 ms slices), in pages of 7 rows.
    const index = createLocalVectorIndex({ ...exactly, loadSliceMs: 0, loadPageRows: 7 });
    const [vector] = await queryVectors(1, 6);
    const added = await corpus(t, "u", 3, 7, "x");
    const { turns } = await turnsUntil(index.query({ tenantId: t, userId: "u", vector: vector!, topK: 400 }), async (turn) => {
      // On the load's first turns: rows added, and one of the loaded ones deleted.
      if (turn === 1) await index.upsert(added);
      if (turn === 2) await index.deleteByIds(t, [rows[0]!.id]);
    });
    expect(turns).toBeGreaterThan(100);
    const after = await index.query({ tenantId: t, userId: "u", vector: vector!, topK: 400 });
    expect(after).toHaveLength(302);
    expect(after.map((m) => m.id)).toContain("x0");
    expect(after.map((m) => m.id)).not.toContain(rows[0]!.id);
    // As a fresh load of the same rows answers.
    expect(after).toEqual(await createLocalVectorIndex(exactly).query({ tenantId: t, userId: "u", vector: vector!, topK: 400 }));
  });

  // Rows of the same text score the same: the K-th place falls inside a run of equal scores,
  // and of that run the least ids must be kept, whichever order the rows were written in.
  // With offloadMinWork 0 the sums run on the scan thread and come back to this one for the
  // top-K: the ties at the K-th place must be broken the same way on that path.
  for (const offloadMinWork of [undefined, 0]) {
    it(`keeps the least ids of equal scores at the K-th place, exactly and approximately${offloadMinWork === 0 ? ", summed on the scan thread" : ""}`, async () => {
      const { exact, approx } = await pair({ probeFraction: 1, ...(offloadMinWork === 0 ? { offloadMinWork } : {}) });
      const t = uid("tenant");
      const texts = ["alpha bravo charlie", "alpha bravo delta", "alpha echo foxtrot", "golf hotel alpha", "india juliet kilo"];
      const vectors = await embedder.embed(texts);
      const r = rng(9);
      const order = Array.from({ length: 200 }, (_, i) => i).sort(() => r() - 0.5);
      const records: VectorRecord[] = order.map((i) => ({
        id: `r${String((i * 7919) % 1000).padStart(3, "0")}`,
        tenantId: t,
        userId: "u",
        sessionId: `s${i % 3}`,
        kind: "message",
        model: embedder.model,
        vector: vectors[i % texts.length]!,
      }));
      await exact.upsert(records);
      expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
      const [query] = await embedder.embed(["alpha bravo charlie delta"]);
      for (const index of [exact, approx]) {
        const all = await index.query({ tenantId: t, userId: "u", vector: query!, topK: 200 });
        expect(all).toHaveLength(200);
        // The reference: every row, by score, then id.
        const sorted = [...all].sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
        expect(ids(all)).toEqual(ids(sorted));
        for (const topK of [1, 30, 45, 100, 199]) {
          expect(ids(await index.query({ tenantId: t, userId: "u", vector: query!, topK }))).toEqual(ids(sorted.slice(0, topK)));
        }
      }
    });
  }

  // Blocks of 64 rows as well: rows grow into new blocks, the last row moves into a hole in
  // another block, and the clustering reorders rows across blocks.
  for (const matrixBlockRows of [undefined, 64]) {
    it(`keeps every row in exactly one list through upserts, moves, removes and clears (probing every list = exact)${matrixBlockRows ? `, blocks of ${matrixBlockRows} rows` : ""}`, async () => {
      const { exact, approx } = await pair({ probeFraction: 1, ...(matrixBlockRows ? { matrixBlockRows, offloadMinWork: 0 } : {}) });
      const t = uid("tenant");
      const rows = await corpus(t, "u", 1500, 3);
      await exact.upsert(rows.slice(0, 1000));
      expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
      const queries = await queryVectors(20, 4);
      // A fresh exact index each time: one instance does not see another's later writes.
      const same = async () => {
        const exact = createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: Number.MAX_SAFE_INTEGER });
        for (const vector of queries) {
          for (const kinds of [undefined, ["summary" as const]]) {
            const q = { tenantId: t, userId: "u", vector, topK: 30, ...(kinds ? { kinds } : {}) };
            expect(await approx.query(q)).toEqual(await exact.query(q));
          }
        }
      };
      await same();
      // New rows (through the approximate index itself), changed vectors, deletes that move
      // the last row into the hole, a row moved to another user, then the user forgotten.
      await approx.upsert(rows.slice(1000, 1500));
      await approx.upsert(rows.slice(0, 200).map((r, i) => ({ ...r, vector: rows[1499 - i]!.vector })));
      await approx.deleteByIds(t, rows.filter((_, i) => i % 7 === 0).map((r) => r.id));
      await approx.upsert([{ ...rows[1]!, userId: "other" }]);
      await same();
      await approx.deleteByUser(t, "u");
      expect(await approx.query({ tenantId: t, userId: "u", vector: queries[0]!, topK: 5 })).toEqual([]);
      await approx.upsert(rows.slice(0, 300));
      expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
      await same();
    });
  }

  it("refuses a matrix block size that is not a power of two", async () => {
    const sql = await sharedPglite();
    expect(() => createLocalVectorIndex({ sql, matrixBlockRows: 100 })).toThrow(/matrixBlockRows must be a power of two/);
    expect(() => createLocalVectorIndex({ sql, matrixBlockRows: 8 })).toThrow(/matrixBlockRows/);
  });

  it("finds a stored vector first when queried with it, at the default probe", async () => {
    const { approx } = await pair();
    const t = uid("tenant");
    const rows = await corpus(t, "u", 2000, 5);
    await approx.upsert(rows.slice(0, 1500));
    expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
    await approx.upsert(rows.slice(1500));
    for (const r of rows.filter((_, i) => i % 50 === 0 || i >= 1990)) {
      const [top] = await approx.query({ tenantId: t, userId: "u", vector: r.vector, topK: 1, kinds: [r.kind] });
      expect(top!.score).toBeCloseTo(1, 5);
    }
  });

  it("keeps session-filtered searches exact", async () => {
    const { exact, approx } = await pair({ probeFraction: 0.01 });
    const t = uid("tenant");
    await exact.upsert(await corpus(t, "u", 2000, 6));
    expect(await approx.indexed(t, "u", embedder.dimensions)).toBe(true);
    for (const vector of await queryVectors(10, 7)) {
      const q = { tenantId: t, userId: "u", vector, topK: 20, sessionId: "s3" };
      const a = await approx.query(q);
      expect(a).toEqual(await exact.query(q));
      expect(a.every((m) => m.sessionId === "s3")).toBe(true);
    }
  });

  // The index drops a kinds filter that every row passes (it counts each kind's rows): the
  // counts must follow rows removed, moved to another user and written again.
  it("keeps a kinds filter while any row fails it, through removes and moves", async () => {
    for (const options of [{ exactBelowRows: Number.MAX_SAFE_INTEGER }, { exactBelowRows: 0, probeFraction: 1 }]) {
      const index = createLocalVectorIndex({ sql: await sharedPglite(), ...options });
      const t = uid("tenant");
      const rows = (await corpus(t, "u", 40, 10)).map((r, i) => ({ ...r, kind: (i === 5 ? "summary" : "message") as VectorKind }));
      const summary = rows[5]!;
      await index.upsert(rows);
      expect(await index.indexed(t, "u", embedder.dimensions)).toBe(options.exactBelowRows === 0);
      // The summary's own vector: unfiltered, the summary comes first.
      const search = (kinds?: VectorKind[]) => index.query({ tenantId: t, userId: "u", vector: summary.vector, topK: 100, ...(kinds ? { kinds } : {}) });
      expect((await search())[0]!.id).toBe(summary.id);
      const messages = async () => (await search(["message"])).map((m) => m.id).sort();
      const others = (gone: string[]) => rows.filter((r) => r.kind === "message" && !gone.includes(r.id)).map((r) => r.id).sort();
      expect(await messages()).toEqual(others([]));
      // One message removed, then one moved to another user.
      await index.deleteByIds(t, [rows[0]!.id]);
      expect(await messages()).toEqual(others([rows[0]!.id]));
      await index.upsert([{ ...rows[1]!, userId: "other" }]);
      expect(await messages()).toEqual(others([rows[0]!.id, rows[1]!.id]));
      expect(await search(["summary"])).toMatchObject([{ id: summary.id, kind: "summary" }]);
      // The summary gone: the filter passes every row.
      await index.deleteByIds(t, [summary.id]);
      expect(await messages()).toEqual(others([rows[0]!.id, rows[1]!.id]));
      expect(await search(["summary"])).toEqual([]);
      // The user forgotten and written again, the summary with them.
      await index.deleteByUser(t, "u");
      await index.upsert(rows);
      expect(await messages()).toEqual(others([]));
      expect(await search(["summary"])).toMatchObject([{ id: summary.id }]);
    }
  });

  it("gives the same answers whatever order the rows were loaded in", async () => {
    const sql = await sharedPglite();
    const t1 = uid("tenant"), t2 = uid("tenant");
    const rows = await corpus(t1, "u", 1200, 8);
    const writer = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
    await writer.upsert(rows);
    // The same rows under another tenant, written (and so loaded) in reverse order.
    await writer.upsert([...rows].reverse().map((r) => ({ ...r, tenantId: t2 })));
    const index = createLocalVectorIndex({ sql, exactBelowRows: 0, probeFraction: 0.05 });
    expect(await index.indexed(t1, "u", embedder.dimensions)).toBe(true);
    expect(await index.indexed(t2, "u", embedder.dimensions)).toBe(true);
    for (const vector of await queryVectors(20, 9)) {
      const a = await index.query({ tenantId: t1, userId: "u", vector, topK: 20 });
      expect(a).toHaveLength(20);
      expect(await index.query({ tenantId: t2, userId: "u", vector, topK: 20 })).toEqual(a);
    }
  });

  it("answers exactly while a large index builds in the background, and keeps writes made meanwhile", async () => {
    const { exact } = await pair();
    const sql = await sharedPglite();
    const big = createLocalVectorIndex({ sql, exactBelowRows: 6000, probeFraction: 1 });
    const t = uid("tenant");
    const rows = await corpus(t, "u", 6600, 10);
    await exact.upsert(rows.slice(0, 6200));
    const queries = await queryVectors(10, 11);
    const q = (vector: Float32Array) => ({ tenantId: t, userId: "u", vector, topK: 25 });
    // The first query loads the user and starts the build; it answers from the exact scan.
    expect(await big.query(q(queries[0]!))).toEqual(await exact.query(q(queries[0]!)));
    const built = big.indexed(t, "u", embedder.dimensions);
    await big.upsert(rows.slice(6200));
    await big.deleteByIds(t, rows.filter((_, i) => i % 11 === 0).map((r) => r.id));
    await big.upsert(rows.slice(100, 150).map((r, i) => ({ ...r, vector: rows[6000 + i]!.vector })));
    expect(await built).toBe(true);
    const fresh = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
    for (const vector of queries) expect(await big.query(q(vector))).toEqual(await fresh.query(q(vector)));
  });
  // The build's last part copies the rows, in the new index's order, into new blocks over
  // many event-loop turns. Writes keep landing between the turns: vectors changed, sessions
  // moved, and rows added (into new blocks) faster than others are removed, or removed faster
  // than others are added (the copy ends with holes, and rows past the new size).
  for (const [pattern, matrixBlockRows] of [["grows", undefined], ["grows", 512], ["shrinks", undefined], ["shrinks", 512]] as const) {
    it(`keeps every write made while the rows are reordered in slices, as the matrix ${pattern}${matrixBlockRows ? `, blocks of ${matrixBlockRows} rows` : ""}`, async () => {
      const sql = await sharedPglite();
      // A slice of 2 or 3 columns of 6,100 to 6,900 rows: the reorder alone takes 170 turns or more.
      // The scans stay in this thread (offloadMinWork: Infinity): the first query's exact scan
      // would otherwise start the scan thread, and on a loaded machine starting it took longer
      // than much of the build, which then ran while the query waited: a CI run found it over
      // ("expected 'ready' to be 'building'"), and with both cores kept busy it had fewer than
      // the 150 turns left that the writes below need.
      const big = createLocalVectorIndex({ sql, exactBelowRows: 6000, probeFraction: 1, reorderSliceValues: 20_000, offloadMinWork: Infinity, ...(matrixBlockRows ? { matrixBlockRows } : {}) });
      const t = uid("tenant");
      const rows = await corpus(t, "u", 7000, 30);
      // Shrinking, it stays above the threshold (a smaller matrix is searched exactly).
      const start = pattern === "grows" ? 6100 : 6900;
      await big.upsert(rows.slice(0, start));
      const queries = await queryVectors(8, 31);
      const q = (vector: Float32Array) => ({ tenantId: t, userId: "u", vector, topK: 25 });
      await big.query(q(queries[0]!));
      expect(big.indexState(t, "u")).toBe("building");
      expect(big.buildsInFlight(t)).toBe(1);
      expect(big.buildsInFlight(uid("tenant"))).toBe(0);
      const r = rng(32);
      const live = rows.slice(0, start);
      const gone: VectorRecord[] = [];
      const pick = () => live[Math.floor(r() * live.length)]!;
      const remove = async (n: number) => {
        const out = Array.from({ length: n }, () => live.splice(Math.floor(r() * live.length), 1)[0]!);
        gone.push(...out);
        await big.deleteByIds(t, out.map((row) => row.id));
      };
      let added = start, turns = 0;
      while (big.indexState(t, "u") === "building") {
        await new Promise((resolve) => setImmediate(resolve));
        const changed = pick(), moved = pick();
        const writes = [{ ...changed, vector: rows[Math.floor(r() * 7000)]!.vector }, { ...moved, sessionId: `moved${turns % 5}` }];
        if (pattern === "grows" && added < 7000) writes.push(rows[added++]!);
        // Now and then a removed row comes back: it has no place in the copy.
        if (turns % 10 === 9 && gone.length > 0) writes.push(gone.shift()!);
        await big.upsert(writes);
        for (const w of writes) {
          const at = live.findIndex((row) => row.id === w.id);
          if (at >= 0) live[at] = w;
          else live.push(w);
        }
        if (pattern === "shrinks") await remove(2);
        else if (turns % 40 === 39) await remove(1);
        turns++;
      }
      expect(turns).toBeGreaterThan(150);
      expect(big.indexState(t, "u")).toBe("ready");
      expect(big.buildsInFlight(t)).toBe(0);
      const fresh = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
      for (const vector of queries) {
        expect(await big.query(q(vector))).toEqual(await fresh.query(q(vector)));
        const session = { ...q(vector), sessionId: "moved3" };
        expect(await big.query(session)).toEqual(await fresh.query(session));
      }
      // Keys of rows removed during the copy lead nowhere: the rows come back as new ones, and
      // rows removed now move the last row into their own place, not another's.
      await big.upsert(gone);
      live.push(...gone.splice(0));
      await remove(50);
      // A fresh exact index: one instance does not see another's later writes.
      const after = createLocalVectorIndex({ sql, exactBelowRows: Number.MAX_SAFE_INTEGER });
      for (const vector of queries) expect(await big.query(q(vector))).toEqual(await after.query(q(vector)));
      // Every row is where its key says: each finds itself among the best (rows changed to
      // another's vector tie with it).
      for (const row of live.filter((_, i) => i % 97 === 0)) {
        const top = await big.query({ ...q(row.vector), topK: 5, sessionId: row.sessionId });
        expect(top.find((m) => m.id === row.id)?.score).toBeCloseTo(1, 5);
      }
    });
  }

  it("runs a background build's slices through its scheduler, and advances only when they run", async () => {
    const { exact } = await pair();
    // A scheduler that holds each slice until the test runs it (the server's runs them
    // between requests: request-gate.ts, sliceScheduler).
    const held: (() => void)[] = [];
    // Every list probed: once built it answers as the exact scan does.
    const index = createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: 6000, probeFraction: 1, scheduleSlice: (run) => void held.push(run) });
    const t = uid("tenant");
    await exact.upsert(await corpus(t, "u", 6200, 23));
    const queries = await queryVectors(4, 24);
    const q = (vector: Float32Array) => ({ tenantId: t, userId: "u", vector, topK: 20 });
    expect(await index.query(q(queries[0]!))).toEqual(await exact.query(q(queries[0]!)));
    expect(index.indexState(t, "u")).toBe("building");
    // Turns of the event loop alone do not advance it.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(1);
    expect(index.indexState(t, "u")).toBe("building");
    let slices = 0;
    while (held.length > 0) {
      held.shift()!();
      slices++;
      // The reorder's last step waits for the scans in flight (none here) on a promise.
      await Promise.resolve();
    }
    expect(slices).toBeGreaterThan(10);
    expect(index.indexState(t, "u")).toBe("ready");
    for (const vector of queries) expect(await index.query(q(vector))).toEqual(await exact.query(q(vector)));
  });

  it("lays a grown user's rows out again once 1,024 were placed outside the layout, the index answering the same throughout", async () => {
    // Slices held until the test runs them, as in the test above.
    const held: (() => void)[] = [];
    const sql = await sharedPglite();
    const index = createLocalVectorIndex({ sql, exactBelowRows: 3000, reorderSliceValues: 50_000, scheduleSlice: (run) => void held.push(run) });
    const t = uid("tenant");
    const rows = await corpus(t, "u", 7400, 40);
    const runSlices = async () => {
      let slices = 0;
      while (held.length > 0) {
        held.shift()!();
        slices++;
        await Promise.resolve();
      }
      return slices;
    };
    await index.upsert(rows.slice(0, 6000));
    const queries = await queryVectors(12, 41);
    const q = (vector: Float32Array) => ({ tenantId: t, userId: "u", vector, topK: 20 });
    await index.query(q(queries[0]!));
    const built = index.indexed(t, "u", embedder.dimensions);
    await runSlices();
    expect(await built).toBe(true);
    expect(index.buildsInFlight(t)).toBe(0);
    // Rows added after the layout: fewer than 1,024 (more than a thirty-second here) start nothing.
    await index.upsert(rows.slice(6000, 6700));
    expect(index.buildsInFlight(t)).toBe(0);
    expect(held).toHaveLength(0);
    // 1,400 rows placed outside it start the layout; the index answers meanwhile,
    // and, its lists unchanged, with the answers it gave before.
    await index.upsert(rows.slice(6700, 7400));
    await index.deleteByIds(t, rows.filter((_, i) => i % 50 === 0).map((r) => r.id));
    const before = await Promise.all(queries.map((v) => index.query(q(v))));
    expect(index.buildsInFlight(t)).toBe(1);
    expect(index.indexState(t, "u")).toBe("ready");
    // Writes land between the slices.
    const extra = await corpus(t, "u", 40, 42, "late");
    let turns = 0;
    while (held.length > 0) {
      held.shift()!();
      await Promise.resolve();
      if (turns < extra.length) await index.upsert([extra[turns]!]);
      turns++;
    }
    expect(turns).toBeGreaterThan(5);
    expect(index.buildsInFlight(t)).toBe(0);
    // The late rows took part in no answer above; with them gone the answers are the ones before.
    await index.deleteByIds(t, extra.map((r) => r.id));
    for (const [i, vector] of queries.entries()) expect(await index.query(q(vector))).toEqual(before[i]);
    expect(index.indexState(t, "u")).toBe("ready");
  });

  it("starts a loaded user's build when writes take it past the threshold, before any query asks", async () => {
    const { exact } = await pair();
    const index = createLocalVectorIndex({ sql: await sharedPglite(), exactBelowRows: 3000 });
    const t = uid("tenant");
    const rows = await corpus(t, "u", 3500, 20);
    const [query] = await queryVectors(1, 21);
    const q = { tenantId: t, userId: "u", vector: query!, topK: 10 };
    expect(index.indexState(t, "u")).toBe("not loaded");
    await index.upsert(rows.slice(0, 2000));
    // Loaded by a query below the threshold: exact, no build.
    expect(await index.query(q)).toEqual(await exact.query(q));
    expect(index.indexState(t, "u")).toBe("exact");
    await index.upsert(rows.slice(2000));
    expect(["building", "ready"]).toContain(index.indexState(t, "u"));
    // Another user's writes, not loaded here, load nothing.
    await exact.upsert(await corpus(t, "other", 3100, 22));
    expect(index.indexState(t, "other")).toBe("not loaded");
    expect(await index.indexed(t, "u", embedder.dimensions)).toBe(true);
    expect(index.indexState(t, "u")).toBe("ready");
  });
});

describe("local vector index, memory budget", () => {
  it("holds the larger of two users queried in turn when the budget holds one, and answers both exactly", async () => {
    const { exact } = await pair();
    const t = uid("tenant");
    // About 2.2 KB a row (512 floats and the row's overhead): 2.6 MB and 0.2 MB.
    await exact.upsert([...(await corpus(t, "large", 1200, 30)), ...(await corpus(t, "small", 100, 31, "s"))]);
    const index = createLocalVectorIndex({ sql: await sharedPglite(), memoryBudgetBytes: 2_750_000 });
    const queries = await queryVectors(6, 32);
    for (const [i, vector] of queries.entries()) {
      for (const userId of ["large", "small"]) {
        const q = { tenantId: t, userId, vector, topK: 10 };
        expect(await index.query(q)).toEqual(await exact.query(q));
      }
      // The small user, loaded for each of its queries, never pushes the large one out (evict.ts).
      expect([i, index.indexState(t, "large"), index.indexState(t, "small")]).toEqual([i, "exact", "not loaded"]);
    }
  });
});
