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
    try {
      await drain(strata, 20);
    } finally {
      write.mockRestore();
    }
    const backlog = lines.map((l) => /^derived work pending: ([\d,]+) \(\d+ s\)\n$/.exec(l)).filter((m) => m !== null);
    expect(backlog.length).toBeGreaterThan(0);
    expect(Number(backlog[0]![1]!.replaceAll(",", ""))).toBeGreaterThan(0);
    expect((await strata.deps.archive.queueStats(DEFAULT_TENANT)).pending).toBe(0);
  }, 60_000);
});
