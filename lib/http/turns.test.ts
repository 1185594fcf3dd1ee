import { describe, expect, it } from "vitest";
import { createTurns } from "./turns.ts";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("turns: one request handler started per event-loop turn", () => {
  it("lets callers go one per turn, in the order they came", async () => {
    const turns = createTurns();
    const started: number[] = [];
    const all = [0, 1, 2, 3, 4].map((i) => turns.next().then(() => started.push(i)));
    expect(turns.waiting).toBe(5);
    expect(started).toEqual([]);
    for (let k = 1; k <= 5; k++) {
      await turn();
      expect(started).toEqual([0, 1, 2, 3, 4].slice(0, k));
      expect(turns.waiting).toBe(5 - k);
    }
    await Promise.all(all);
  });

  it("queues callers that come while others wait behind them, and starts again once drained", async () => {
    const turns = createTurns();
    const started: string[] = [];
    const a = turns.next().then(() => started.push("a"));
    await turn();
    const b = turns.next().then(() => started.push("b"));
    const c = turns.next().then(() => started.push("c"));
    await Promise.all([a, b, c]);
    expect(started).toEqual(["a", "b", "c"]);
    expect(turns.waiting).toBe(0);
    await turns.next();
    expect(turns.waiting).toBe(0);
  });

  it("settles once no waiting caller writes, or after the turns it was given", async () => {
    const turns = createTurns();
    await turns.settled(5); // none waiting: at once
    const started: string[] = [];
    const all = ["read", "write", "read", "write", "read", "read"].map((kind, i) =>
      turns.next(kind === "write" ? "write" : undefined).then(() => started.push(`${kind}${i}`)),
    );
    await turns.settled(2);
    expect(started).toEqual(["read0", "write1"]);
    await turns.settled(100);
    // Up to the last write, not the reads behind it.
    expect(started).toEqual(["read0", "write1", "read2", "write3"]);
    expect(turns.waiting).toBe(2);
    await turns.settled(100);
    expect(turns.waiting).toBe(2);
    await Promise.all(all);
    expect(turns.waiting).toBe(0);
  });
});
