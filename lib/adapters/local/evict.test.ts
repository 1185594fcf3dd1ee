import { describe, expect, it } from "vitest";
import { createRetention, type Retention } from "./evict.ts";

// Values are their sizes: one budget of 10.
const budget = (limit = 10) => createRetention<number>([{ size: (n) => n, limit }]);

/** A read of `k` of `size`: noted, then found held (moved to the end) or loaded and admitted. */
function read(loaded: Map<string, number>, r: Retention<number>, k: string, size: number): "held" | "admitted" | "refused" {
  r.use(k);
  const have = loaded.get(k);
  loaded.delete(k);
  loaded.set(k, size);
  if (have !== undefined) return "held";
  return r.admit(loaded, k) ? "admitted" : "refused";
}

/** Reads `other` and then `holder`, `times` over: `other` is refused each time, `holder` found held. */
function inTurn(loaded: Map<string, number>, r: Retention<number>, holder: [string, number], other: [string, number], times: number): void {
  for (let i = 0; i < times; i++) {
    expect(read(loaded, r, ...other)).toBe("refused");
    expect(read(loaded, r, ...holder)).toBe("held");
  }
}

describe("retention of loaded users", () => {
  it("admits a user that fits, and one that costs more than the least recently used it pushes out", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    for (const k of ["a", "b", "c"]) expect(read(loaded, r, k, 3)).toBe("admitted");
    expect(read(loaded, r, "a", 3)).toBe("held");
    // d, larger than b (now the least recently used), pushes it out at once.
    expect(read(loaded, r, "d", 4)).toBe("admitted");
    expect([...loaded.keys()]).toEqual(["c", "a", "d"]);
  });

  it("keeps the larger of two users used in turn, and loads the smaller for each of its uses", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    expect(read(loaded, r, "large", 9)).toBe("admitted");
    inTurn(loaded, r, ["large", 9], ["small", 2], 20);
    // The other way round: the larger, coming second, takes the place at once.
    const s = budget();
    const l2 = new Map<string, number>();
    expect(read(l2, s, "small", 2)).toBe("admitted");
    expect(read(l2, s, "large", 9)).toBe("admitted");
    inTurn(l2, s, ["large", 9], ["small", 2], 5);
  });

  it("does not swap two users as large at every use", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    read(loaded, r, "a", 6);
    inTurn(loaded, r, ["a", 6], ["b", 6], 10);
  });

  it("holds a newcomer used on its own once its loads have cost more than the idle users it pushes out", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    read(loaded, r, "idle", 9);
    // 2 + 2 + 2 + 2 = 8 is not more than 9; the fifth load (10) is.
    for (let i = 0; i < 4; i++) expect(read(loaded, r, "busy", 2)).toBe("refused");
    expect(read(loaded, r, "busy", 2)).toBe("admitted");
    expect([...loaded.keys()]).toEqual(["busy"]);
    // A use of the idle user between starts the count again.
    const s = budget();
    const l2 = new Map<string, number>();
    read(l2, s, "idle", 9);
    for (let i = 0; i < 3; i++) read(l2, s, "busy", 2);
    read(l2, s, "idle", 9);
    for (let i = 0; i < 4; i++) expect(read(l2, s, "busy", 2)).toBe("refused");
    expect(read(l2, s, "busy", 2)).toBe("admitted");
  });

  it("holds a lone user past the budget, and spares the user a write grew", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    expect(read(loaded, r, "huge", 25)).toBe("admitted");
    expect(read(loaded, r, "other", 1)).toBe("refused");
    expect([...loaded.keys()]).toEqual(["huge"]);
    const s = budget();
    const l2 = new Map<string, number>([["x", 4], ["y", 4], ["z", 1]]);
    // z grew by writes to 5: the least recently used others go, z stays.
    l2.set("z", 5);
    s.enforce(l2, "z");
    expect([...l2.keys()]).toEqual(["y", "z"]);
    // Without a user to spare, least recently used first.
    l2.set("w", 3);
    s.enforce(l2);
    expect([...l2.keys()]).toEqual(["z", "w"]);
  });

  it("refuses a load in advance only for a user it refused before and would refuse at this use", () => {
    const r = budget();
    const loaded = new Map<string, number>();
    read(loaded, r, "large", 8);
    // Never refused: its size is unknown, so the load is worth trying.
    r.use("small");
    expect(r.refuses(loaded, "small")).toBe(false);
    loaded.set("small", 3);
    expect(r.admit(loaded, "small")).toBe(false);
    // Refused in advance while its uses (counted as loads) come to no more than large's 8: 3, 6.
    r.use("small");
    expect(r.refuses(loaded, "small")).toBe(true);
    r.use("small");
    expect(r.refuses(loaded, "small")).toBe(false);
    // Room, or held: never refused.
    loaded.delete("large");
    expect(r.refuses(loaded, "small")).toBe(false);
    loaded.set("small", 3);
    expect(r.refuses(loaded, "small")).toBe(false);
  });

  it("weighs each user by its share of the budget it fills most", () => {
    const r = createRetention<{ turns: number; chars: number }>([
      { size: (v) => v.turns, limit: 10 },
      { size: (v) => v.chars, limit: 1000 },
    ]);
    const loaded = new Map<string, { turns: number; chars: number }>();
    r.use("few-long");
    loaded.set("few-long", { turns: 1, chars: 900 });
    expect(r.admit(loaded, "few-long")).toBe(true);
    // Eight turns of 800 characters: together over the characters' budget; 0.8 of a budget
    // against few-long's 0.9.
    r.use("many");
    loaded.set("many", { turns: 8, chars: 800 });
    expect(r.admit(loaded, "many")).toBe(false);
    expect([...loaded.keys()]).toEqual(["few-long"]);
  });
});
