import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** A Node process with bench/ballast.ts imported first and `env` added: its RSS and V8 heap in MB, as it prints them. */
const sizes = (env: Record<string, string>) => {
  const r = spawnSync(process.execPath, ["--import=./bench/ballast.ts", "-e", "const m = process.memoryUsage(); console.log(JSON.stringify({ rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 }))"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, BALLAST_OFF_HEAP_MB: "", BALLAST_HEAP_OBJECTS: "", ...env },
  });
  return { status: r.status, stderr: r.stderr, ...(r.status === 0 ? (JSON.parse(r.stdout) as { rss: number; heap: number }) : { rss: NaN, heap: NaN }) };
};

describe("bench/ballast.ts", () => {
  it("holds resident memory outside the heap, and objects in it, as the environment says", () => {
    const none = sizes({});
    const offHeap = sizes({ BALLAST_OFF_HEAP_MB: "300" });
    const objects = sizes({ BALLAST_HEAP_OBJECTS: "500000" });
    expect(none.status).toBe(0);
    // Every page written: resident, not only reserved.
    expect(offHeap.rss - none.rss).toBeGreaterThan(290);
    expect(Math.abs(offHeap.heap - none.heap)).toBeLessThan(20);
    // About 100 bytes an object, in V8's heap.
    expect(objects.heap - none.heap).toBeGreaterThan(40);
  });

  it("refuses a value that is not a whole number, naming the variable, with exit code 2", () => {
    const r = sizes({ BALLAST_HEAP_OBJECTS: "1e3.5" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("BALLAST_HEAP_OBJECTS must be a whole number ≥ 0, got 1e3.5");
  });
});
