import { describe, expect, it } from "vitest";
import { spawnReady, stopChild } from "../../bench/peers/stand-in-procs.ts";

const script = (code: string) => ["--input-type=module", "-e", code];

describe("spawnReady (bench/peers/stand-in-procs.ts)", () => {
  it("waits for the whole READY line, when a chunk ends inside its JSON after an inner brace", async () => {
    const { child, ready } = spawnReady<{ ports: Record<string, number>; roundTripMs: number }>(
      "split",
      script(`process.stdout.write('READY {"ports": {"127.0.0.1:5432": 40001}'); setTimeout(() => process.stdout.write(', "roundTripMs": 2.5}\\n'), 100); setInterval(() => {}, 1000);`),
      undefined,
    );
    try {
      expect(await ready).toEqual({ ports: { "127.0.0.1:5432": 40001 }, roundTripMs: 2.5 });
    } finally {
      await stopChild(child);
    }
  });

  it("rejects with the process's name, exit code and last output when it exits before it is ready", async () => {
    const { ready } = spawnReady("the thing", script(`console.error("no database named x"); process.exit(3);`), undefined);
    await expect(ready).rejects.toThrow(/^the thing exited before it was ready \(3\): no database named x/);
  });

  it("tells onLateExit when the process exits after it was ready", async () => {
    let late: { code: number | string | null; tail: string } | null = null;
    const exited = new Promise<void>((resolve) => {
      const { ready } = spawnReady("late", script(`process.stdout.write('READY {}\\n'); setTimeout(() => { console.log("gone"); process.exit(5); }, 50);`), undefined, (code, tail) => {
        late = { code, tail };
        resolve();
      });
      void ready;
    });
    await exited;
    expect(late!.code).toBe(5);
    expect(late!.tail).toContain("gone");
  });
});
