import { afterAll, describe, expect, it } from "vitest";
import { createLocalVectorIndex } from "../../lib/adapters/local/vector-index.ts";
import type { SqlClient } from "../../lib/adapters/sql/client.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { vectorIndexContract } from "./vector-index.contract.ts";

vectorIndexContract("local", async () => ({ store: createLocalVectorIndex({ sql: await sharedPglite() }) }));

// With no memory budget every other user is evicted on each query: the reload path runs throughout.
vectorIndexContract("local, evicting", async () => ({
  store: createLocalVectorIndex({ sql: await sharedPglite(), memoryBudgetBytes: 0 }),
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
        if (text.startsWith("select id, kind")) {
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
});

afterAll(closeSharedPglite);
