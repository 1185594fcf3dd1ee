// strata.close() releases everything that keeps a process alive, the extractor's worker
// thread included: before it did, a script (npm run eval) printed its results and hung.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";

it("an embedded Strata's process ends on its own once it is closed, after its workers extracted", async () => {
  const dir = mkdtempSync(join(tmpdir(), "strata-close-"));
  try {
    const child = spawn(process.execPath, ["test/fixtures/close-and-exit.ts", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b));
    child.stderr.on("data", (b: Buffer) => (out += b));
    // A process that does not end is killed after a minute, and then the exit is a signal.
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    clearTimeout(killer);
    expect({ ...exit, out }).toEqual({ code: 0, signal: null, out: expect.stringMatching(/^closed after deriving [1-9]\d* mentions\n$/) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
