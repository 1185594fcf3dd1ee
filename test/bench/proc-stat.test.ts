import { describe, expect, it } from "vitest";
import { machineCpuMs, procMemory, procStat } from "../../bench/proc-stat.ts";

const ownMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

describe("bench/proc-stat.ts", () => {
  it("counts this process' CPU as the kernel does, and the machine's busy CPU at least as that", () => {
    const p0 = procStat(process.pid)!;
    const m0 = machineCpuMs();
    const o0 = ownMs();
    const until = performance.now() + 300;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const p1 = procStat(process.pid)!;
    const m1 = machineCpuMs();
    const own = ownMs() - o0;
    expect(x).toBeGreaterThan(0);
    expect(p1.ppid).toBe(process.ppid);
    // /proc counts in ticks of 10 ms: the same CPU as process.cpuUsage(), give or take a tick each end.
    expect(Math.abs(p1.cpuMs - p0.cpuMs - own)).toBeLessThanOrEqual(40);
    // The machine's busy time holds this process' (and whatever else ran meanwhile).
    expect(m1 - m0).toBeGreaterThanOrEqual(own - 40);
    expect(procStat(2 ** 22 + 1)).toBeNull();
  });

  it("reads this process' resident memory as Node does, and its peak at least as high", () => {
    const m = procMemory(process.pid)!;
    const rss = process.memoryUsage().rss / 1024 / 1024;
    // The two reads are a moment apart: within a few MB of each other.
    expect(Math.abs(m.rssMb - rss)).toBeLessThan(16);
    expect(m.peakMb).toBeGreaterThanOrEqual(m.rssMb);
    expect(procMemory(2 ** 22 + 1)).toBeNull();
  });
});
