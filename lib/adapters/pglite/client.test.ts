import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isStrataError } from "../../core/errors.ts";
import { createPgliteClient, DEFAULT_SHARED_BUFFERS_MB, STATISTICS_TARGET } from "./client.ts";

const root = mkdtempSync(join(tmpdir(), "strata-pglite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function sharedBuffers(options: Parameters<typeof createPgliteClient>[0]): Promise<string> {
  const sql = await createPgliteClient(options);
  try {
    const [row] = await sql.query<{ shared_buffers: string }>("show shared_buffers");
    return row!.shared_buffers;
  } finally {
    await sql.close();
  }
}

describe("the PGlite archive's buffer pool", () => {
  it("is DEFAULT_SHARED_BUFFERS_MB unless told, not PGlite's 128 MB", async () => {
    expect(DEFAULT_SHARED_BUFFERS_MB).toBe(16);
    expect(await sharedBuffers({ dataDir: "memory://" })).toBe("16MB");
  });

  it("analyses with a statistics target of STATISTICS_TARGET, not Postgres's 100, leaving postgresql.conf as initdb wrote it", async () => {
    expect(STATISTICS_TARGET).toBe(10);
    const dir = join(root, "stats");
    const sql = await createPgliteClient({ dataDir: dir });
    try {
      expect(await sql.query("show default_statistics_target")).toEqual([{ default_statistics_target: "10" }]);
      // What the target sets: ANALYZE's sample, 300 rows per unit of it, so 3,000 of these 5,000.
      await sql.exec("create table t (id int primary key, g int not null)");
      await sql.exec("insert into t select i, i % 7 from generate_series(1, 5000) i");
      await sql.exec("analyze t");
      const [stats] = await sql.query<{ n: number; hist: number }>(
        "select n_distinct::float8 as n, coalesce(array_length(histogram_bounds::text::text[], 1), 0) as hist from pg_stats where tablename = 't' and attname = 'id'",
      );
      expect(stats!.n).toBe(-1); // every id distinct, as a full sample would say
      expect(stats!.hist).toBe(STATISTICS_TARGET + 1); // a histogram of 10 buckets, not 100
    } finally {
      await sql.close();
    }
    expect(readFileSync(join(dir, "postgresql.conf"), "utf8")).toMatch(/^#default_statistics_target = 100/m);
  });

  it("takes the size given for that start only, leaving the directory's postgresql.conf as initdb wrote it", async () => {
    const dir = join(root, "pg");
    expect(await sharedBuffers({ dataDir: dir, sharedBuffersMb: 4 })).toBe("4MB");
    const conf = readFileSync(join(dir, "postgresql.conf"), "utf8");
    // initdb's settings are still there (PGlite's postgresqlconf option would have replaced the file).
    expect(conf).toMatch(/^shared_buffers = 128MB/m);
    expect(conf).toMatch(/^datestyle = 'iso, mdy'/m);
    expect(await sharedBuffers({ dataDir: dir })).toBe("16MB");
    expect(readFileSync(join(dir, "postgresql.conf"), "utf8")).toBe(conf);
  });

  it("refuses a size that is not a whole number of MB, naming it, before it makes or locks the directory", async () => {
    const dir = join(root, "refused");
    for (const bad of [0, 1.5, Number.NaN]) {
      const error = await createPgliteClient({ dataDir: dir, sharedBuffersMb: bad }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isStrataError(error) && error.code).toBe("CONFIG_INVALID");
      expect((error as Error).message).toMatch(new RegExp(`sharedBuffersMb must be a whole number of MB, at least 1: got ${bad}`));
      expect(existsSync(dir)).toBe(false);
    }
    expect(await sharedBuffers({ dataDir: dir, sharedBuffersMb: 2 })).toBe("2MB");
  });
});

describe("PGlite on a worker thread (thread: true)", () => {
  const values = `select now()::date::text as d, 12345678901234::int8 as big, '\\x0102ff'::bytea as bytes, array['a', 'b'] as arr,
    '{"x": [1, 2]}'::jsonb as doc, 1.5::numeric as num, null::text as nothing, $1::text as param, $2::int[] as ints`;

  it("answers with the rows PGlite gives in the caller's thread, types and parameters alike", async () => {
    const here = await createPgliteClient({ dataDir: "memory://" });
    const there = await createPgliteClient({ dataDir: "memory://", thread: true });
    try {
      const params = ["it's", [3, 1, 2]];
      const [a, b] = await Promise.all([here.query(values, params), there.query(values, params)]);
      expect(b).toEqual(a);
      expect(b[0]).toMatchObject({ big: 12345678901234, arr: ["a", "b"], doc: { x: [1, 2] }, num: "1.5", nothing: null, param: "it's", ints: [3, 1, 2] });
      expect([...(b[0]!.bytes as Uint8Array)]).toEqual([1, 2, 255]);
      expect(there.driver).toBe("pglite");
      expect([here.onThread, there.onThread]).toEqual([false, true]);
    } finally {
      await Promise.all([here.close(), there.close()]);
    }
  });

  it("runs statements in the order sent, and its errors carry PGlite's message and code", async () => {
    const sql = await createPgliteClient({ dataDir: "memory://", thread: true });
    try {
      await sql.exec("create table t (id int primary key); create table log (n int)");
      const sent = Array.from({ length: 50 }, (_, i) => sql.query("insert into log values ($1) returning n", [i]));
      expect((await Promise.all(sent)).map((rows) => (rows[0] as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(await sql.query("select n from log order by ctid")).toEqual(Array.from({ length: 50 }, (_, n) => ({ n })));
      await sql.query("insert into t values (1)");
      const error = await sql.query("insert into t values (1)").then(
        () => null,
        (e: unknown) => e,
      );
      expect(isStrataError(error) && error.code).toBe("UPSTREAM_ERROR");
      expect((error as Error).message).toMatch(/^pglite: duplicate key value violates unique constraint "t_pkey"/);
      expect(((error as Error).cause as { code?: string }).code).toBe("23505");
      // The thread goes on after an error.
      expect(await sql.query("select count(*)::int as n from t")).toEqual([{ n: 1 }]);
    } finally {
      await sql.close();
    }
  });

  it("keeps other callers' statements out of a transaction, and rolls it back when its function throws", async () => {
    const sql = await createPgliteClient({ dataDir: "memory://", thread: true });
    try {
      await sql.exec("create table t (v text)");
      let outside: Promise<unknown> | null = null;
      const failed = sql
        .transaction(async (tx) => {
          await tx.query("insert into t values ('inside')");
          // Sent by someone else while the transaction is open: it must not become part of it.
          outside = sql.query("insert into t values ('outside')");
          await new Promise((r) => setTimeout(r, 20));
          expect(await tx.query("select v from t order by v")).toEqual([{ v: "inside" }]);
          // A nested transaction is the same one (PGlite has none of its own).
          await tx.transaction((inner) => inner.query("insert into t values ('nested')"));
          throw new Error("give up");
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(((await failed) as Error).message).toBe("give up");
      await outside;
      expect(await sql.query("select v from t order by v")).toEqual([{ v: "outside" }]);
      expect(await sql.transaction(async (tx) => (await tx.query("insert into t values ('kept') returning v"))[0])).toEqual({ v: "kept" });
      expect(await sql.query("select v from t order by v")).toEqual([{ v: "kept" }, { v: "outside" }]);
    } finally {
      await sql.close();
    }
  });

  it("runs a long statement beside the caller's thread, which goes on meanwhile", async () => {
    const sql = await createPgliteClient({ dataDir: "memory://", thread: true });
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      try {
        await sql.query("select pg_sleep(0.3)");
      } finally {
        clearInterval(timer);
      }
      // On the caller's thread the statement would have held the timer for all of its 300 ms.
      expect(ticks).toBeGreaterThan(10);
    } finally {
      await sql.close();
    }
  });

  it("keeps a data directory between opens, releases its lock on close, and refuses statements after it", async () => {
    const dir = join(root, "threaded");
    const first = await createPgliteClient({ dataDir: dir, thread: true, sharedBuffersMb: 4 });
    await first.exec("create table kept (v text); insert into kept values ('there')");
    expect(await first.query("show shared_buffers")).toEqual([{ shared_buffers: "4MB" }]);
    expect(await first.query("show default_statistics_target")).toEqual([{ default_statistics_target: String(STATISTICS_TARGET) }]);
    // A second open of the directory is refused while the first holds it.
    const refused = await createPgliteClient({ dataDir: dir, thread: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isStrataError(refused) && refused.code).toBe("DATA_DIR_IN_USE");
    await first.close();
    await first.close(); // twice is harmless
    const after = await first.query("select 1").then(
      () => null,
      (e: unknown) => e,
    );
    expect((after as Error).message).toMatch(/closed/);
    const second = await createPgliteClient({ dataDir: dir, thread: true });
    try {
      expect(await second.query("select v from kept")).toEqual([{ v: "there" }]);
    } finally {
      await second.close();
    }
  });

  it("opens the database in the caller's thread when the thread cannot start (a bundle without its script)", async () => {
    const dir = join(root, "no-thread");
    const sql = await createPgliteClient({ dataDir: dir, thread: true, threadScript: new URL("./no-such-thread.ts", import.meta.url) });
    try {
      expect(sql.onThread).toBe(false);
      await sql.exec("create table t (v int)");
      expect(await sql.transaction(async (tx) => tx.query("insert into t values (7) returning v"))).toEqual([{ v: 7 }]);
    } finally {
      await sql.close();
    }
    expect(existsSync(`${dir}.lock`)).toBe(false);
  });

  it("fails to open with ARCHIVE_OPEN_FAILED, releasing the directory, when PGlite cannot open it", async () => {
    const dir = join(root, "not-a-database");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "PG_VERSION"), "9\n"); // a data directory of another major version
    const error = await createPgliteClient({ dataDir: dir, thread: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isStrataError(error) && error.code).toBe("ARCHIVE_OPEN_FAILED");
    expect(existsSync(`${dir}.lock`)).toBe(false);
  });
});
