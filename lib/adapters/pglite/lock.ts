// One process at a time in a PGlite data directory. PGlite is Postgres in this process' memory,
// writing the directory's files itself; unlike a Postgres server it does not refuse a second
// process that opens the same files (it writes a postmaster.pid but never reads one). Two
// processes writing one directory corrupt it: a second `strata serve` on another port, or
// `strata reindex` run beside the server, left an archive whose indexes failed Postgres' own
// checks ("right sibling's left-link doesn't match", seen on this machine). So the embedded
// archive takes a lock file beside the directory (`<dir>.lock`, holding the process id) before
// it opens it, and a process that finds it held by a live process stops with DATA_DIR_IN_USE.
//
// A lock left behind by a process that died without closing (a crash, SIGKILL) names a process
// that is gone, or, after a container restart, this process' own id: either way it is stale
// and taken over. The file is written whole before it appears (written aside, then hard-linked
// into place, which fails if one is there), so a reader never sees a half-written id.

import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { StrataError } from "../../core/errors.ts";

/** Lock files this process holds (a second open of one directory in one process is refused too). */
const held = new Set<string>();

/** The process id a lock file's text names, or null when it names none. */
function holderIn(text: string): number | null {
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function removeIfEqual(path: string, content: string | null): void {
  try {
    if (content === null || readFileSync(path, "utf8") === content) unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/**
 * Takes the lock of data directory `dir` (the file `<dir>.lock`) for this process, or throws
 * DATA_DIR_IN_USE naming the process that holds it. Returns the function that releases it.
 */
export function lockDataDir(dir: string): () => void {
  const lockPath = `${dir}.lock`;
  if (held.has(lockPath)) {
    throw new StrataError("config", "DATA_DIR_IN_USE", `data directory ${dir} is already open in this process: one Strata per data directory`);
  }
  const content = `${process.pid}\n`;
  const aside = `${lockPath}.${process.pid}`;
  const fd = openSync(aside, "w");
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(aside, lockPath);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (attempt >= 3) {
          throw new StrataError("config", "DATA_DIR_IN_USE", `data directory ${dir}: its lock ${lockPath} kept changing hands while this process tried to take it; another process is opening it`);
        }
      }
      let stale: string;
      try {
        stale = readFileSync(lockPath, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile
        throw e;
      }
      const pid = holderIn(stale);
      if (pid !== null && pid !== process.pid && alive(pid)) {
        throw new StrataError(
          "config",
          "DATA_DIR_IN_USE",
          `data directory ${dir} is in use by process ${pid} (another strata serve, or a strata command run beside it): ` +
            `stop it first, or give this one another STRATA_DATA_DIR. If no such process is Strata, delete ${lockPath}.`,
          { details: { pid, lockFile: lockPath } },
        );
      }
      // Its process is gone: take it over (only if it still says what was read).
      removeIfEqual(lockPath, stale);
    }
  } finally {
    removeIfEqual(aside, null);
  }
  held.add(lockPath);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.delete(lockPath);
    removeIfEqual(lockPath, content);
  };
}
