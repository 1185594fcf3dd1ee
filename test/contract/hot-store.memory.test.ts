import { describe, expect, it } from "vitest";
import { createMemoryHotStore } from "../../lib/adapters/local/hot-store.ts";
import type { Message } from "../../lib/core/types.ts";
import { hotStoreContract } from "./hot-store.contract.ts";

hotStoreContract("memory", async () => ({ store: createMemoryHotStore() }));

describe("memory hot store", () => {
  it("forgets the least recently used session beyond maxSessions", async () => {
    const store = createMemoryHotStore({ maxSessions: 2 });
    const m = (sessionId: string): Message => ({
      tenantId: "t", sessionId, userId: "u", id: `${sessionId}-1`, seq: 1, role: "user",
      content: "hi", name: null, createdAt: "2024-01-01T00:00:00.000Z", metadata: {}, tokens: 1,
    });
    await store.replaceWindow("t", "a", [m("a")], 5);
    await store.replaceWindow("t", "b", [m("b")], 5);
    await store.readWindow("t", "a", 5); // a is now the most recently used
    await store.replaceWindow("t", "c", [m("c")], 5);
    expect(await store.readWindow("t", "b", 5)).toBeNull();
    expect(await store.readWindow("t", "a", 5)).toHaveLength(1);
    expect(await store.readWindow("t", "c", 5)).toHaveLength(1);
  });
});
