import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isStrataError } from "../../core/errors.ts";
import { lockDataDir } from "./lock.ts";

const root = mkdtempSync(join(tmpdir(), "strata-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `pg${n++}`);

/** What lockDataDir threw, or null. */
function refusal(dir: string): { code: string; message: string } | null {
  try {
    lockDataDir(dir)();
    return null;
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** A live process other than this one, stopped by the returned function (SIGKILL: it leaves no clean-up). */
async function otherProcess(): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("spawn", resolve));
  return {
    pid: child.pid!,
    kill: () => new Promise<void>((resolve) => (child.once("exit", () => resolve()), child.kill("SIGKILL"))),
  };
}

describe("lockDataDir", () => {
  it("writes this process' id beside the directory and removes it on release", () => {
    const dir = freshDir();
    const release = lockDataDir(dir);
    expect(readFileSync(`${dir}.lock`, "utf8")).toBe(`${process.pid}\n`);
    release();
    expect(existsSync(`${dir}.lock`)).toBe(false);
    release(); // twice is harmless
    expect(refusal(dir)).toBeNull(); // and it can be taken again
  });

  it("refuses a directory this process holds already", () => {
    const dir = freshDir();
    const release = lockDataDir(dir);
    try {
      expect(refusal(dir)).toMatchObject({ code: "DATA_DIR_IN_USE", message: expect.stringContaining("already open in this process") });
    } finally {
      release();
    }
  });

  it("refuses a directory a live process holds, naming it, and takes it over once that process is gone", async () => {
    const dir = freshDir();
    const other = await otherProcess();
    writeFileSync(`${dir}.lock`, `${other.pid}\n`);
    try {
      const refused = refusal(dir);
      expect(refused?.code).toBe("DATA_DIR_IN_USE");
      expect(refused?.message).toContain(`in use by process ${other.pid}`);
      expect(refused?.message).toContain(`${dir}.lock`);
      expect(readFileSync(`${dir}.lock`, "utf8")).toBe(`${other.pid}\n`); // left as it was
    } finally {
      await other.kill();
    }
    const release = lockDataDir(dir);
    expect(readFileSync(`${dir}.lock`, "utf8")).toBe(`${process.pid}\n`);
    release();
  });

  it("takes over a lock naming no process, or this process' own id without holding it (a restarted container)", () => {
    for (const stale of ["", "not a pid\n", `${process.pid}\n`]) {
      const dir = freshDir();
      writeFileSync(`${dir}.lock`, stale);
      const release = lockDataDir(dir);
      expect(readFileSync(`${dir}.lock`, "utf8")).toBe(`${process.pid}\n`);
      release();
    }
  });

  it("on release leaves a lock file that another process has taken since", () => {
    const dir = freshDir();
    const release = lockDataDir(dir);
    writeFileSync(`${dir}.lock`, "4242424\n");
    release();
    expect(readFileSync(`${dir}.lock`, "utf8")).toBe("4242424\n");
  });
});
