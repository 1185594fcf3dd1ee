import { afterAll, describe, expect, it } from "vitest";
import { closeSharedPglite, sharedPglite, uid } from "../../../test/fixtures/pglite.ts";
import { readColumns, type RunQuery } from "./columns.ts";

afterAll(closeSharedPglite);

describe("readColumns", () => {
  it("reads a user's rows a column at a time, in chunks, with every row's values lined up", async () => {
    const sql = await sharedPglite();
    const table = uid("cols").replace(/[^a-z0-9_]/gi, "_");
    await sql.query(`create table ${table} (tenant_id text, user_id text, id text, name text, words text[], n int, w float8)`);
    const names = ['plain', 'a "quoted" name', "back\\slash", "new\nline", "ünïcødé ✓", "", "tab\there"];
    const rows: [string, string | null, string[] | null, number, number][] = [];
    for (let i = 0; i < 23; i++) rows.push([`e-${i}`, i % 5 === 4 ? null : names[i % names.length]!, i % 3 === 0 ? null : [`w${i}`, "x y"], i * 7, i / 3]);
    for (const [id, name, words, n, w] of rows) {
      await sql.query(`insert into ${table} values ($1, $2, $3, $4, $5, $6, $7)`, ["t", "u", id, name, words, n, w]);
    }
    // Another user's rows are not read.
    await sql.query(`insert into ${table} values ('t', 'other', 'e-x', 'x', null, 0, 0)`);
    const run: RunQuery = (text, params) => sql.query(text, params);
    for (const chunkRows of [1, 4, 100]) {
      const [ids, nameCol, wordCol, ns, ws] = await readColumns(run, table, "tenant_id = $1 and user_id = $2", ["id", "name", "words", "n", "w"], ["t", "u"], chunkRows);
      expect(ids).toHaveLength(rows.length);
      const got = ids!.map((id, i) => [id, nameCol![i], wordCol![i], ns![i], ws![i]]);
      const byId = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
      expect(got.sort(byId)).toEqual([...rows].sort(byId));
    }
    // No rows: empty columns.
    expect(await readColumns(run, table, "tenant_id = $1 and user_id = $2", ["id", "n"], ["t", "nobody"])).toEqual([[], []]);
    await sql.query(`drop table ${table}`);
  });
});
