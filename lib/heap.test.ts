import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// A child process builds many long-lived objects at one allocation site, as loading a user's
// indexes does, then makes short-lived ones at the same site, as a query does. V8 traces its
// pretenuring decisions (--trace-pretenuring-statistics); a young generation of 1 MB is full at
// every collection, the condition under which V8 decides to tenure a site.
const dir = mkdtempSync(join(tmpdir(), "strata-heap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** How many times the child's sites were decided to be tenured, and how many were suspected (maybe tenure). */
function decisions(tune: boolean): { tenured: number; suspected: number } {
  const script = join(dir, `load-${tune ? "tuned" : "plain"}.mjs`);
  writeFileSync(
    script,
    [
      `import { tuneHeap } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "heap.ts")).href)};`,
      tune ? "tuneHeap();" : "",
      "function make(i) { return { id: i, tags: [i, i + 1], name: 'n' + i }; }",
      "const kept = [];",
      "for (let i = 0; i < 1_000_000; i++) kept.push(make(i));",
      "let sum = 0;",
      "for (let i = 0; i < 1_000_000; i++) sum += make(i).id;",
      "console.log(kept.length, sum);",
    ].join("\n"),
  );
  const run = spawnSync(process.execPath, ["--max-semi-space-size=1", "--trace-pretenuring-statistics", script], { encoding: "utf8" });
  expect(run.status, run.stderr).toBe(0);
  const lines = run.stdout.split("\n");
  return {
    tenured: lines.filter((l) => /=> tenure$/.test(l)).length,
    suspected: lines.filter((l) => /=> maybe tenure$/.test(l)).length,
  };
}

describe("tuneHeap", () => {
  it("keeps V8 from tenuring an allocation site whose objects outlived a load", () => {
    // Without it the site is tenured (at once, or suspected first): its later, short-lived
    // objects would be allocated in the old generation.
    const plain = decisions(false);
    expect(plain.tenured).toBeGreaterThan(0);
    const tuned = decisions(true);
    expect(tuned).toEqual({ tenured: 0, suspected: 0 });
  });
});

/** The new space's size (MB) in a child started with npm start's kind of semi-space flag, on its main thread and on a worker that asks for a young generation of 4 MB. */
function youngSizes(tune: boolean): { main: number; worker: number } {
  const script = join(dir, `young-${tune ? "tuned" : "plain"}.mjs`);
  writeFileSync(
    script,
    [
      `import { tuneHeap } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "heap.ts")).href)};`,
      `import { Worker, isMainThread, parentPort } from "node:worker_threads";`,
      `import { getHeapSpaceStatistics } from "node:v8";`,
      // Short-lived garbage until the young generation has grown as far as it may.
      "function churn() { let keep = []; for (let i = 0; i < 2_000_000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20_000) keep = []; } return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576; }",
      "if (isMainThread) {",
      tune ? "  tuneHeap();" : "",
      "  const w = new Worker(new URL(import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });",
      "  w.once('message', (worker) => { console.log(JSON.stringify({ main: churn(), worker })); });",
      "} else parentPort.postMessage(churn());",
    ].join("\n"),
  );
  const run = spawnSync(process.execPath, ["--max-semi-space-size=16", script], { encoding: "utf8" });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { main: number; worker: number };
}

describe("tuneHeap and worker threads", () => {
  it("leaves the main thread the command line's young generation and a worker the one it asks for", () => {
    // Without it V8 gives the command line's flag precedence over the worker's resourceLimits.
    const plain = youngSizes(false);
    expect(plain.worker).toBeGreaterThan(4);
    const tuned = youngSizes(true);
    expect(tuned.worker).toBeLessThanOrEqual(4);
    expect(tuned.main).toBe(plain.main);
    expect(tuned.main).toBeGreaterThan(4);
  });
});
