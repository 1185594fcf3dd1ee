// A process' parent and CPU time from Linux's /proc/<pid>/stat, for the bench tools that count
// a server's or a counterpart's CPU per item (a figure the other load on a shared machine moves
// far less than latency or throughput).

import { readFileSync } from "node:fs";

/** /proc/<pid>/<file>; null when the process has exited. */
function procFile(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** `pid`'s parent and its user plus system CPU so far, in ms; null when it has exited. */
export function procStat(pid: number): { ppid: number; cpuMs: number } | null {
  const text = procFile(pid, "stat");
  if (text === null) return null;
  // The fields after the command's name, which is in parentheses and may hold spaces or ")".
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * 10 }; // utime, stime at USER_HZ 100
}

/** `pid`'s resident memory now and at its peak so far (VmRSS, VmHWM), in MB; null when it has exited. */
export function procMemory(pid: number): { rssMb: number; peakMb: number } | null {
  const text = procFile(pid, "status");
  if (text === null) return null;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

/**
 * The whole machine's busy CPU so far, in ms, from /proc/stat: every core's user, nice, system,
 * irq, softirq and steal time (what is not idle or waiting for I/O).
 */
export function machineCpuMs(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 10; // USER_HZ 100
}
