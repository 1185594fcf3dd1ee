import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRequestGate } from "../../core/request-gate.ts";
import type { SqlClient } from "../sql/client.ts";
import { createPgliteClient } from "./client.ts";
import { createStatsKeeper, STATS_QUIET_WAIT_MS } from "./stats.ts";

let sql: SqlClient;

beforeAll(async () => {
  sql = await createPgliteClient({ dataDir: "memory://" });
  await sql.exec("create table busy (id int primary key); create table quiet (id int primary key)");
});
afterAll(() => sql.close());

const insert = (table: string, from: number, count: number) => sql.query(`insert into ${table} select generate_series($1::int, $2::int)`, [from, from + count - 1]);
/** The planner's row count for the table (-1 before its first analysis). */
const planned = async (table: string) => Number((await sql.query<{ n: number }>("select reltuples as n from pg_class where relname = $1", [table]))[0]!.n);

describe("the embedded archive's statistics", () => {
  it("analyses a table once more than 50 + 10% of its rows changed, and leaves the others", async () => {
    const keeper = createStatsKeeper(sql);
    await insert("busy", 1, 1000);
    await insert("quiet", 1, 40);
    expect(await keeper.check()).toEqual(["public.busy"]);
    expect(await planned("busy")).toBe(1000);
    expect(await planned("quiet")).toBe(-1); // 40 changes: under the threshold of 50
    // 1,000 rows analysed: due again after more than 150 changes.
    await insert("busy", 1001, 150);
    expect(await keeper.check()).toEqual([]);
    await sql.query("delete from busy where id <= 10");
    expect(await keeper.check()).toEqual(["public.busy"]);
    expect(await planned("busy")).toBe(1140);
    await keeper.close();
  });

  it("waits for a moment without a request in flight before each analysis", async () => {
    const gate = createRequestGate();
    const keeper = createStatsKeeper(sql, { gate, yieldMs: 60_000, settleMs: 0 });
    await insert("quiet", 41, 100);
    gate.enter();
    let left = false;
    setTimeout(() => {
      left = true;
      gate.leave();
    }, 50);
    expect(await keeper.check()).toEqual(["public.quiet"]);
    expect(left).toBe(true);
    expect(await planned("quiet")).toBe(140);
    await keeper.close();
  });

  it("waits up to a minute unless told otherwise, and close() ends the wait at once, analysing nothing more", async () => {
    expect(STATS_QUIET_WAIT_MS).toBe(60_000);
    const gate = createRequestGate();
    const keeper = createStatsKeeper(sql, { gate, settleMs: 0 });
    const before = await planned("busy");
    await insert("busy", 2001, 1000);
    gate.enter(); // a request that stays in flight
    try {
      const checked = keeper.check();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await planned("busy")).toBe(before); // still waiting for a quiet moment
      const t0 = performance.now();
      await keeper.close();
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(await checked).toEqual([]);
      expect(await planned("busy")).toBe(before);
    } finally {
      gate.leave();
    }
  });

  it("checks on its own when given a period, and stops when closed", async () => {
    const keeper = createStatsKeeper(sql, { everyMs: 20 });
    await insert("quiet", 141, 100);
    await expect.poll(() => planned("quiet"), { timeout: 5_000 }).toBe(240);
    await keeper.close();
    await insert("quiet", 241, 100);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await planned("quiet")).toBe(240);
  });
});
