import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { profileTimes, type Profile } from "../../bench/cpuprofile.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "strata-cpuprofile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (id: number, functionName: string, url: string, lineNumber: number, children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber },
  children,
});

/**
 * (root) → main (lib/a.ts:1) → f (lib/a.ts:10) and → g (lib/b.ts:5) → main again (a recursion);
 * `samples` name the frames caught, each after `deltas` µs.
 */
function profile(samples: number[], deltas: number[]): Profile {
  return {
    nodes: [
      frame(1, "(root)", "", -1, [2]),
      frame(2, "main", "file:///work/x/lib/a.ts", 0, [3, 4]),
      frame(3, "f", "file:///work/x/lib/a.ts", 9),
      frame(4, "g", "file:///work/x/lib/b.ts", 4, [5]),
      frame(5, "main", "file:///work/x/lib/a.ts", 0),
    ],
    samples,
    timeDeltas: deltas,
    startTime: 0,
    endTime: deltas.reduce((a, b) => a + b, 0),
  };
}

describe("bench/cpuprofile.ts and bench/cpuprofile-diff.ts", () => {
  it("counts each sample's time before it as its frame's self time, and once for each function on its stack", () => {
    const t = profileTimes(profile([3, 3, 4, 5, 2], [10, 20, 40, 80, 160]));
    expect(t.totalUs).toBe(310);
    expect(Object.fromEntries(t.self)).toEqual({ "f lib/a.ts:10": 30, "g lib/b.ts:5": 40, "main lib/a.ts:1": 240 });
    // main holds every sample, its recursion under g counted once; g holds its own and the recursion's.
    expect(Object.fromEntries(t.inclusive)).toEqual({ "(root)": 310, "main lib/a.ts:1": 310, "f lib/a.ts:10": 30, "g lib/b.ts:5": 120 });
  });

  it("sets two profiles side by side a call, the largest difference first", () => {
    const a = join(dir, "a.cpuprofile");
    const b = join(dir, "b.cpuprofile");
    // A: 2 calls, f 30 µs and g 40 in all. B: 4 calls, f 200 µs and g 40 in all.
    writeFileSync(a, JSON.stringify(profile([3, 3, 4], [10, 20, 40])));
    writeFileSync(b, JSON.stringify(profile([3, 3, 4], [100, 100, 40])));
    const r = spawnSync(process.execPath, ["bench/cpuprofile-diff.ts", a, b, "--calls-a", "2", "--calls-b", "4"], { cwd: root, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(`A ${a}: 35.0 µs sampled a call (2 calls)`);
    expect(lines[1]).toBe(`B ${b}: 60.0 µs sampled a call (4 calls)`);
    const rows = lines.slice(lines.indexOf("self time a call, µs: A, B, B less A (largest first)") + 1).map((l) => l.trim().split(/\s+/));
    // f: 15 → 50 a call (+35); g: 20 → 10 (−10).
    expect(rows).toEqual([
      ["15.0", "50.0", "+35.0", "f", "lib/a.ts:10"],
      ["20.0", "10.0", "-10.0", "g", "lib/b.ts:5"],
    ]);
    const incl = spawnSync(process.execPath, ["bench/cpuprofile-diff.ts", a, b, "--calls-a", "2", "--calls-b", "4", "--inclusive", "--filter", "main"], { cwd: root, encoding: "utf8" });
    expect(incl.status).toBe(0);
    expect(incl.stdout).toContain("inclusive time a call, µs");
    const inclRows = incl.stdout.trim().split("\n").slice(-1)[0]!.trim().split(/\s+/);
    expect(inclRows).toEqual(["35.0", "60.0", "+25.0", "main", "lib/a.ts:1"]);
  });
});
