import { afterAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_TENANT } from "../../lib/config.ts";
import { ingestMessages } from "../../lib/core/services/ingest.ts";
import { drain, openBenchStrata } from "../../bench/in-process.ts";
import { generateMessages } from "../../bench/peers/data.ts";

// The in-process benchmarks wait minutes for a large user's derived work; the wait must say how
// much is left while it lasts, not only once it is over.
describe("bench/in-process.ts drain", () => {
  const opened = openBenchStrata(undefined, "drain-test.json", "{}");
  afterAll(async () => (await opened).strata.close());

  it("prints the backlog while the derived work runs, and returns once none is left", async () => {
    const { strata } = await opened;
    for (let s = 0; s < 4; s++) {
      const messages = generateMessages({ seed: 50 + s, count: 100, profile: "chat", prefix: "d", start: s * 100 });
      await ingestMessages(strata.deps, { tenantId: DEFAULT_TENANT, sessionId: `d-${s}`, userId: "u-drain", messages });
    }
    const before = await strata.deps.archive.queueStats(DEFAULT_TENANT);
    expect(before.pending).toBeGreaterThan(0);
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    // Each backlog read answers 50 ms late, so reads the timer started are still in flight when the drain returns.
    const archive = strata.deps.archive;
    const read = archive.queueStats.bind(archive);
    const slow = vi.spyOn(archive, "queueStats").mockImplementation(async (tenantId) => {
      const stats = await read(tenantId);
      await new Promise((res) => setTimeout(res, 50));
      return stats;
    });
    let printedByReturn = -1;
    try {
      await drain(strata, 20);
      printedByReturn = lines.length;
      // Past the drain, a backlog read that was in flight must not print (the output is the caller's again).
      await new Promise((res) => setTimeout(res, 100));
    } finally {
      write.mockRestore();
      slow.mockRestore();
    }
    expect(lines.length).toBe(printedByReturn);
    // The count is printed in the locale's grouping ("1,234", "1.234", "1 234"): its digits are the number.
    const backlog = lines.map((l) => /^derived work pending: (\d[^\n]*) \(\d+ s\)\n$/.exec(l)).filter((m) => m !== null);
    expect(backlog.length).toBeGreaterThan(0);
    expect(Number(backlog[0]![1]!.replace(/\D/g, ""))).toBeGreaterThan(0);
    expect((await strata.deps.archive.queueStats(DEFAULT_TENANT)).pending).toBe(0);
  }, 60_000);
});
