import { describe, expect, it } from "vitest";
import { createRetention } from "./evict.ts";

// Values are their sizes: one budget of 10.
const budget = (limit = 10, window?: number) => createRetention<number>([{ size: (n) => n, limit }], window ? { window } : {});

/** Registers `k` (already used) as a load does: at the end of the map, then the budget. */
function load(loaded: Map<string, number>, r: ReturnType<typeof budget>, k: string, size: number): boolean {
  loaded.delete(k);
  loaded.set(k, size);
  return r.enforce(loaded, k);
}

describe("retention of loaded users", () => {
  it("evicts least recently used first while the newcomer is worth more than they are", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    for (const k of ["a", "b", "c"]) {
      r.use(k);
      expect(load(loaded, r, k, 3)).toBe(true);
    }
    // d, used twice, is worth more than a (used once, of the same size): a goes.
    r.use("d");
    r.use("d");
    expect(load(loaded, r, "d", 3)).toBe(true);
    expect([...loaded.keys()]).toEqual(["b", "c", "d"]);
    // Read since: c moved to the end, so b is the least recent and the one that goes.
    r.use("c");
    loaded.delete("c");
    loaded.set("c", 3);
    r.use("e");
    r.use("e");
    expect(load(loaded, r, "e", 3)).toBe(true);
    expect([...loaded.keys()]).toEqual(["d", "c", "e"]);
  });

  it("keeps a large user against a small one used as often, and serves the small one unheld", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    r.use("big");
    load(loaded, r, "big", 9);
    for (let i = 0; i < 20; i++) {
      r.use("small");
      // Worth is uses × size: small would need 4.5 times big's uses.
      expect(load(loaded, r, "small", 2)).toBe(false);
      expect([...loaded.keys()]).toEqual(["big"]);
      r.use("big");
      loaded.delete("big");
      loaded.set("big", 9);
    }
  });

  it("does not swap two users of equal worth at every use", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    r.use("a");
    load(loaded, r, "a", 6);
    for (let i = 0; i < 10; i++) {
      r.use("b");
      expect(load(loaded, r, "b", 6)).toBe(false);
      r.use("a");
      expect(loaded.has("a")).toBe(true);
    }
  });

  it("admits the newcomer once the held user's uses have faded", () => {
    const r = budget(10, 8);
    const loaded = new Map<string, number>();
    for (let i = 0; i < 6; i++) r.use("big");
    load(loaded, r, "big", 9);
    // Each window halves every count: big's 6 uses fade to 0 while small is used on.
    let heldAt = -1;
    for (let i = 0; i < 40 && heldAt < 0; i++) {
      r.use("small");
      if (load(loaded, r, "small", 2)) heldAt = i;
    }
    expect(heldAt).toBeGreaterThan(0);
    expect([...loaded.keys()]).toEqual(["small"]);
  });

  it("holds a lone user past the budget, and evicts without a newcomer to weigh", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    r.use("huge");
    expect(load(loaded, r, "huge", 25)).toBe(true);
    expect([...loaded.keys()]).toEqual(["huge"]);
    // Grown by writes past the budget with another held: without `keep`, least recent first.
    r.use("other");
    load(loaded, r, "other", 1);
    expect([...loaded.keys()]).toEqual(["huge"]);
    loaded.set("x", 1);
    loaded.set("y", 1);
    expect(r.enforce(loaded)).toBe(true);
    expect([...loaded.keys()]).toEqual(["x", "y"]);
  });

  it("refuses a load in advance only for a user it would refuse by the size last seen", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    r.use("big");
    load(loaded, r, "big", 8);
    r.use("small");
    // Never seen: its size is unknown, so the load is worth trying.
    expect(r.refuses(loaded, "small")).toBe(false);
    expect(load(loaded, r, "small", 4)).toBe(false);
    expect(r.refuses(loaded, "small")).toBe(true);
    // Room now: nothing to push out.
    loaded.delete("big");
    expect(r.refuses(loaded, "small")).toBe(false);
    // A user held is never refused in advance.
    loaded.set("small", 4);
    expect(r.refuses(loaded, "small")).toBe(false);
  });

  it("weighs each user by the budget it fills most", () => {
    const r = createRetention<{ turns: number; chars: number }>([
      { size: (v) => v.turns, limit: 10 },
      { size: (v) => v.chars, limit: 1000 },
    ]);
    const loaded = new Map<string, { turns: number; chars: number }>();
    r.use("few-long");
    loaded.set("few-long", { turns: 1, chars: 900 });
    expect(r.enforce(loaded, "few-long")).toBe(true);
    // Eight turns of 800 characters: together over the characters' budget; worth 1 × 0.8 against few-long's 1 × 0.9.
    r.use("many");
    loaded.set("many", { turns: 8, chars: 800 });
    expect(r.enforce(loaded, "many")).toBe(false);
    expect([...loaded.keys()]).toEqual(["few-long"]);
  });

  it("rejects a window below one", () => {
    expect(() => budget(10, 0.5)).toThrow(/window/);
  });
});
