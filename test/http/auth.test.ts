// With STRATA_API_KEY set every request needs a valid key; keys are stored hashed and each
// maps to one tenant, whose data no other tenant's key can reach.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../lib/http/app.ts";
import type { Strata } from "../../lib/runtime.ts";
import { uid } from "../fixtures/pglite.ts";
import { call, startTestStrata } from "../fixtures/strata.ts";

const KEY = "test-key-0123456789abcdef";
let strata: Strata;
beforeAll(async () => {
  strata = await startTestStrata({ apiKey: KEY });
});
afterAll(async () => {
  await strata?.close();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("API keys", () => {
  it("refuses requests without a key or with an unknown one", async () => {
    for (const headers of [{}, bearer("not-a-key-at-all-xxxx"), { authorization: "Basic abc" }]) {
      const r = await call(strata, "GET", "/v1/status", undefined, headers);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe("UNAUTHORIZED");
    }
    const r = await call(strata, "POST", `/v1/sessions/${uid("s")}/messages`, { userId: "u", messages: [{ role: "user", content: "x" }] });
    expect(r.status).toBe(401);
  });

  it("accepts the configured key and stores only its hash", async () => {
    expect((await call(strata, "GET", "/v1/status", undefined, bearer(KEY))).status).toBe(200);
    expect(await strata.deps.archive.tenantForKey(await hashApiKey(KEY))).toBe("default");
    expect(await strata.deps.archive.tenantForKey(KEY)).toBeNull();
  });

  it("scopes every call to the key's tenant", async () => {
    const other = await strata.deps.archive.createTenant({ name: "Other" });
    const otherKey = `sk_${uid("k")}_secret`;
    await strata.deps.archive.addApiKey({ tenantId: other.id, keyHash: await hashApiKey(otherKey) });
    const s = uid("s");
    const ingest = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: "u", messages: [{ id: "shared-id", role: "user", content: "the default tenant's secret plan" }] }, bearer(KEY));
    expect(ingest.status).toBe(201);
    // Same message id in another tenant is a different message, not a conflict.
    const theirs = await call(strata, "POST", `/v1/sessions/${s}/messages`, { userId: "u", messages: [{ id: "shared-id", role: "user", content: "another tenant" }] }, bearer(otherKey));
    expect(theirs.status).toBe(201);
    await strata.idle();
    const mine = await call(strata, "GET", `/v1/sessions/${s}/messages`, undefined, bearer(otherKey));
    expect(mine.body.messages.map((m: { content: string }) => m.content)).toEqual(["another tenant"]);
    const search = await call(strata, "POST", "/v1/search", { userId: "u", query: "secret plan" }, bearer(otherKey));
    expect(search.body.results.map((m: { content: string }) => m.content)).not.toContain("the default tenant's secret plan");
  });
});
