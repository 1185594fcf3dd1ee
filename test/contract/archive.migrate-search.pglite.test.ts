// Migration 5 drops the stored tsvector of messages (and its GIN index): ingest no longer
// computes it, and the archive's keyword fallback computes the same vector per query. An
// archive written before the migration keeps its messages and ranks them as it did.

import { afterAll, describe, expect, it } from "vitest";
import { createPgliteClient } from "../../lib/adapters/pglite/client.ts";
import { createSqlArchive, keywordTsQuery } from "../../lib/adapters/sql/archive.ts";
import { MIGRATIONS, migrate } from "../../lib/adapters/sql/migrations.ts";
import type { NewMessage } from "../../lib/core/types.ts";

const msg = (id: string, content: string, name: string | null = null): NewMessage => ({
  id, role: "user", content, name, createdAt: new Date().toISOString(), metadata: {}, tokens: content.split(" ").length,
});

describe("migration 5: no stored tsvector", () => {
  let close: (() => Promise<void>) | null = null;
  afterAll(async () => close?.());

  it("keeps an older archive's messages and their keyword ranking, and stores no search column after it", async () => {
    const sql = await createPgliteClient({ dataDir: "memory://" });
    close = () => sql.close();
    expect(await migrate(sql, MIGRATIONS.filter((m) => m.version < 5))).toEqual([1, 2, 3, 4]);
    const archive = createSqlArchive({ sql });
    await archive.ensureTenant({ id: "t", name: "t" });
    const ingest = (sessionId: string, messages: NewMessage[]) => archive.ingest({ tenantId: "t", sessionId, userId: "u", messages, jobsFor: () => [] });
    await ingest("s1", [msg("hike", "We went hiking in the mountains near Lake Tahoe", "Caroline"), msg("weather", "The weather is nice today")]);
    await ingest("s2", [msg("camp", "Camping trip to the mountains with the kids, hiking every day, hiking again")]);
    const query = "Where did they go hiking in the mountains?";
    // What the stored column ranked, before the migration.
    const stored = await sql.query<{ id: string; score: number }>(
      `select id, ts_rank(search, to_tsquery('english', $1), 1) as score from messages
       where tenant_id = 't' and search @@ to_tsquery('english', $1) order by score desc, seq desc`,
      [keywordTsQuery(query)],
    );
    const before = await archive.keywordSearch({ tenantId: "t", userId: "u", query, limit: 10 });
    expect(before.map((h) => h.id)).toEqual(stored.map((r) => r.id));
    expect(before.map((h) => h.score)).toEqual(stored.map((r) => Number(r.score)));
    expect(before.map((h) => h.id).sort()).toEqual(["camp", "hike"]);

    expect(await migrate(sql, MIGRATIONS.filter((m) => m.version <= 5))).toEqual([5]);
    const columns = await sql.query<{ column_name: string }>("select column_name from information_schema.columns where table_name = 'messages'");
    expect(columns.map((c) => c.column_name)).not.toContain("search");
    expect(await sql.query("select 1 from pg_indexes where indexname = 'messages_search'")).toEqual([]);
    expect(await archive.keywordSearch({ tenantId: "t", userId: "u", query, limit: 10 })).toEqual(before);
    // The speaker's name is part of the document, as it was in the stored vector.
    expect((await archive.keywordSearch({ tenantId: "t", userId: "u", query: "caroline", limit: 10 })).map((h) => h.id)).toEqual(["hike"]);

    // Ingest after the migration writes without the column and is found the same way.
    await ingest("s3", [msg("climb", "Climbing in the mountains")]);
    expect((await archive.keywordSearch({ tenantId: "t", userId: "u", query: "climbing", limit: 10, sessionId: "s3" })).map((h) => h.id)).toEqual(["climb"]);
  });
});
