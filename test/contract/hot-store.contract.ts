// The behaviour every HotStore adapter must show (in-process LRU, Upstash, ...). An
// adapter's test file calls hotStoreContract() with a setup that builds it; tests an
// adapter cannot pass are listed by title in `skip`, not hidden behind ifs.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HotStore } from "../../lib/core/ports.ts";
import type { Message } from "../../lib/core/types.ts";
import { uid } from "../fixtures/pglite.ts";

export interface HotStoreSetup {
  store: HotStore;
  cleanup?: () => Promise<void>;
}

export interface ContractOptions {
  /** Titles of tests this adapter is known not to pass. */
  skip?: string[];
}

function message(tenantId: string, sessionId: string, seq: number, over: Partial<Message> = {}): Message {
  return {
    tenantId,
    sessionId,
    userId: "u1",
    id: `${sessionId}-m${seq}`,
    seq,
    role: seq % 2 ? "user" : "assistant",
    content: `message ${seq} of ${sessionId}`,
    name: null,
    createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString(),
    metadata: {},
    tokens: 4,
    ...over,
  };
}

const seqs = (window: Message[] | null) => window?.map((m) => m.seq) ?? null;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function hotStoreContract(name: string, setup: () => Promise<HotStoreSetup>, options: ContractOptions = {}): void {
  const skip = new Set(options.skip ?? []);
  const test = (title: string, fn: () => Promise<void>) => (skip.has(title) ? it.skip : it)(title, fn);

  describe(`HotStore contract: ${name}`, () => {
    let store: HotStore;
    let cleanup: (() => Promise<void>) | undefined;
    const ids = () => ({ t: uid("tenant"), s: uid("session") });

    beforeAll(async () => {
      ({ store, cleanup } = await setup());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    test("names its adapter and answers ping", async () => {
      expect(store.adapter).toMatch(/\S/);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    test("readWindow misses with null for a session never cached", async () => {
      const { t, s } = ids();
      expect(await store.readWindow(t, s, 10)).toBeNull();
    });

    test("appendWindow on a miss caches nothing", async () => {
      const { t, s } = ids();
      await store.appendWindow(t, s, [message(t, s, 1), message(t, s, 2)], 10);
      expect(await store.readWindow(t, s, 10)).toBeNull();
    });

    test("replaceWindow orders by seq, drops duplicate seqs and keeps the newest maxLength", async () => {
      const { t, s } = ids();
      const input = [5, 1, 3, 2, 4, 3, 6].map((q) => message(t, s, q));
      await store.replaceWindow(t, s, input, 4);
      expect(seqs(await store.readWindow(t, s, 10))).toEqual([3, 4, 5, 6]);
    });

    test("readWindow returns the newest `limit` messages, ascending", async () => {
      const { t, s } = ids();
      await store.replaceWindow(t, s, range(1, 8).map((q) => message(t, s, q)), 20);
      expect(seqs(await store.readWindow(t, s, 3))).toEqual([6, 7, 8]);
      expect(seqs(await store.readWindow(t, s, 100))).toEqual(range(1, 8));
      expect(await store.readWindow(t, s, 0)).toEqual([]);
    });

    test("replaceWindow replaces what was there", async () => {
      const { t, s } = ids();
      await store.replaceWindow(t, s, range(1, 5).map((q) => message(t, s, q)), 10);
      await store.replaceWindow(t, s, [message(t, s, 9, { content: "only" })], 10);
      const window = await store.readWindow(t, s, 10);
      expect(seqs(window)).toEqual([9]);
      expect(window?.[0]?.content).toBe("only");
    });

    test("appendWindow merges by seq without duplicates and trims to maxLength", async () => {
      const { t, s } = ids();
      await store.replaceWindow(t, s, range(1, 4).map((q) => message(t, s, q)), 6);
      // 4 repeats, 5..7 are new; one arrives out of order.
      await store.appendWindow(t, s, [7, 4, 5, 6].map((q) => message(t, s, q)), 6);
      expect(seqs(await store.readWindow(t, s, 10))).toEqual([2, 3, 4, 5, 6, 7]);
      await store.appendWindow(t, s, [message(t, s, 8)], 3);
      expect(seqs(await store.readWindow(t, s, 10))).toEqual([6, 7, 8]);
    });

    test("appendWindow of an older seq than the window keeps ascending order", async () => {
      const { t, s } = ids();
      await store.replaceWindow(t, s, [message(t, s, 10), message(t, s, 12)], 10);
      await store.appendWindow(t, s, [message(t, s, 11)], 10);
      expect(seqs(await store.readWindow(t, s, 10))).toEqual([10, 11, 12]);
    });

    test("round-trips every field of a message", async () => {
      const { t, s } = ids();
      const m = message(t, s, 1, {
        id: "client-id-1",
        role: "tool",
        name: "calculator",
        content: "résumé ✓ — 42\nline two",
        metadata: { source: "discord", nested: { n: 1, list: [1, "two"] } },
        tokens: 17,
      });
      await store.replaceWindow(t, s, [m], 5);
      expect(await store.readWindow(t, s, 5)).toEqual([m]);
    });

    test("dropSession makes the next read miss and later appends no-ops", async () => {
      const { t, s } = ids();
      await store.replaceWindow(t, s, [message(t, s, 1)], 10);
      await store.dropSession(t, s);
      expect(await store.readWindow(t, s, 10)).toBeNull();
      await store.appendWindow(t, s, [message(t, s, 2)], 10);
      expect(await store.readWindow(t, s, 10)).toBeNull();
      await expect(store.dropSession(t, s)).resolves.toBeUndefined();
    });

    test("isolates tenants and sessions", async () => {
      const { t: tenantA, s } = ids();
      const tenantB = uid("tenant");
      const other = uid("session");
      await store.replaceWindow(tenantA, s, [message(tenantA, s, 1, { content: "A" })], 10);
      expect(await store.readWindow(tenantB, s, 10)).toBeNull();
      expect(await store.readWindow(tenantA, other, 10)).toBeNull();

      await store.replaceWindow(tenantB, s, [message(tenantB, s, 1, { content: "B" })], 10);
      await store.appendWindow(tenantB, s, [message(tenantB, s, 2, { content: "B2" })], 10);
      expect((await store.readWindow(tenantA, s, 10))?.map((m) => m.content)).toEqual(["A"]);
      expect((await store.readWindow(tenantB, s, 10))?.map((m) => m.content)).toEqual(["B", "B2"]);

      await store.dropSession(tenantB, s);
      expect((await store.readWindow(tenantA, s, 10))?.map((m) => m.content)).toEqual(["A"]);
    });

    test("callers cannot change the cache through what they pass in or get back", async () => {
      const { t, s } = ids();
      const input = [message(t, s, 1, { metadata: { tag: "x" } }), message(t, s, 2)];
      await store.replaceWindow(t, s, input, 10);
      input[0]!.content = "changed by caller";
      (input[0]!.metadata as { tag: string }).tag = "y";
      input.pop();

      const first = (await store.readWindow(t, s, 10))!;
      // A store may hand out frozen objects: mutating them throws, which is fine too.
      try {
        first[0]!.content = "changed by reader";
        (first[0]!.metadata as { tag: string }).tag = "z";
      } catch {}
      try {
        first.reverse();
        first.push(message(t, s, 3));
      } catch {}

      const again = await store.readWindow(t, s, 10);
      expect(seqs(again)).toEqual([1, 2]);
      expect(again?.[0]?.content).toBe("message 1 of " + s);
      expect(again?.[0]?.metadata).toEqual({ tag: "x" });
    });
  });
}
