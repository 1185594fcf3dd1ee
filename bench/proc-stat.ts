// A process' parent and CPU time from Linux's /proc/<pid>/stat, for the bench tools that count
// a server's or a counterpart's CPU per item (a figure the other load on a shared machine moves
// far less than latency or throughput).

import { readFileSync } from "node:fs";

/** `pid`'s parent and its user plus system CPU so far, in ms; null when it has exited. */
export function procStat(pid: number): { ppid: number; cpuMs: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The fields after the command's name, which is in parentheses and may hold spaces or ")".
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * 10 }; // utime, stime at USER_HZ 100
}
