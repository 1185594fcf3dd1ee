import { describe, expect, it } from "vitest";
import { groupCommits } from "./group-commit.ts";

/** A commit function over numbers (each its weight), recording the groups it ran. */
function recorder(maxWeight: number, refuse = new Set<number>()) {
  const runs: number[][] = [];
  const tick = () => new Promise((r) => setTimeout(r, 1));
  const commit = groupCommits<number, string>({
    async one(n) {
      runs.push([n]);
      await tick();
      if (refuse.has(n)) throw new Error(`refused ${n}`);
      return `one ${n}`;
    },
    async many(ns) {
      runs.push(ns);
      await tick();
      if (ns.some((n) => refuse.has(n))) throw new Error("group refused");
      return ns.map((n) => `many ${n}`);
    },
    weight: (n) => n,
    maxWeight,
  });
  return { commit, runs };
}

describe("groupCommits", () => {
  it("runs a lone request at once, and those that wait for it as groups of at most maxWeight", async () => {
    const { commit, runs } = recorder(10);
    const answers = await Promise.all([1, 2, 3, 4, 5, 6, 20, 1].map(commit));
    expect(runs).toEqual([[1], [2, 3, 4], [5], [6], [20], [1]]);
    expect(answers).toEqual(["one 1", "many 2", "many 3", "many 4", "one 5", "one 6", "one 20", "one 1"]);
  });

  it("groups what arrives while a group commits", async () => {
    const { commit, runs } = recorder(100);
    const first = Promise.all([1, 2, 3].map(commit));
    await new Promise((r) => setTimeout(r, 0));
    const later = Promise.all([4, 5].map(commit));
    expect(await first).toEqual(["one 1", "many 2", "many 3"]);
    expect(await later).toEqual(["many 4", "many 5"]);
    expect(runs).toEqual([[1], [2, 3], [4, 5]]);
  });

  it("runs a refused group's requests alone, in order, each with its own answer", async () => {
    const { commit, runs } = recorder(100, new Set([3]));
    const settled = await Promise.allSettled([1, 2, 3, 4].map(commit));
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message))).toEqual(["one 1", "one 2", "refused 3", "one 4"]);
    expect(runs).toEqual([[1], [2, 3, 4], [2], [3], [4]]);
    // And keeps committing afterwards.
    expect(await commit(7)).toBe("one 7");
  });
});
