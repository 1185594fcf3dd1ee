// Migrations that move data: run against a database left at the version before them, with
// rows in it, as an archive that shipped would be.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteClient } from "../pglite/client.ts";
import type { SqlClient } from "./client.ts";
import { MIGRATIONS, migrate } from "./migrations.ts";

let sql: SqlClient;
beforeAll(async () => {
  sql = await createPgliteClient({ dataDir: "memory://" });
});
afterAll(async () => {
  await sql?.close();
});

describe("migration 7: each session's summarized seq", () => {
  it("sets it from the session's latest summary (0 without one) and indexes the distance to it", async () => {
    expect(await migrate(sql, MIGRATIONS.filter((m) => m.version < 7))).toEqual([1, 2, 3, 4, 5, 6]);
    await sql.exec(`
      insert into tenants (id, name) values ('t', 't');
      insert into users (tenant_id, id) values ('t', 'u');
      insert into sessions (tenant_id, id, user_id, last_seq) values ('t', 'rolled', 'u', 90), ('t', 'once', 'u', 40), ('t', 'never', 'u', 30);
      insert into summaries (tenant_id, session_id, user_id, up_to_seq, content, tokens)
      values ('t', 'rolled', 'u', 30, 'a', 1), ('t', 'rolled', 'u', 70, 'b', 1), ('t', 'once', 'u', 20, 'c', 1);`);
    expect(await migrate(sql, MIGRATIONS.filter((m) => m.version <= 7))).toEqual([7]);
    const rows = await sql.query<{ id: string; summarized_seq: number }>("select id, summarized_seq from sessions order by id");
    expect(rows.map((r) => [r.id, Number(r.summarized_seq)])).toEqual([
      ["never", 0],
      ["once", 20],
      ["rolled", 70],
    ]);
    const index = await sql.query<{ indexdef: string }>("select indexdef from pg_indexes where indexname = 'sessions_summary_lag'");
    expect(index[0]?.indexdef).toContain("(tenant_id, ((last_seq - summarized_seq)))");
  });
});

describe("migration 8: a user's vectors in key order", () => {
  it("indexes the vectors by user, kind and id in place of the index by user alone", async () => {
    // The first describe left this database at version 7.
    expect(await migrate(sql)).toEqual([8]);
    const indexes = await sql.query<{ indexname: string; indexdef: string }>("select indexname, indexdef from pg_indexes where tablename = 'vectors' order by indexname");
    expect(indexes.map((i) => i.indexname)).toEqual(["vectors_pkey", "vectors_user_key"]);
    expect(indexes[1]!.indexdef).toContain("(tenant_id, user_id, kind, id)");
  });
});
