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
