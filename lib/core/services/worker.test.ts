import { describe, expect, it } from "vitest";
import type { Job } from "../types.ts";
import { MERGED_RUN_MESSAGES, runJobs } from "./worker.ts";

const job = (id: string, type: Job["type"], messageIds: string[], tenantId = "t"): Job =>
  ({ id, tenantId, type, payload: { messageIds }, status: "running", attempts: 1, lastError: null, createdAt: "", runAfter: "" }) as Job;

describe("runJobs", () => {
  it("merges embed and extract jobs of one tenant into one run each", async () => {
    const runs: { type: string; tenantId: string; ids: string[] }[] = [];
    const failed = await runJobs(
      [job("1", "embed", ["a"]), job("2", "extract", ["a"]), job("3", "embed", ["b", "c"]), job("4", "embed", ["d"], "other"), job("5", "extract", ["b"])],
      async (j) => {
        runs.push({ type: j.type, tenantId: j.tenantId, ids: (j.payload as { messageIds: string[] }).messageIds });
      },
    );
    expect(failed.size).toBe(0);
    expect(runs).toEqual([
      { type: "embed", tenantId: "t", ids: ["a", "b", "c"] },
      { type: "extract", tenantId: "t", ids: ["a", "b"] },
      { type: "embed", tenantId: "other", ids: ["d"] },
    ]);
  });

  it("retries a failed merged run job by job, so only the bad job fails", async () => {
    const seen: string[][] = [];
    const failed = await runJobs([job("1", "embed", ["a"]), job("2", "embed", ["bad"]), job("3", "embed", ["c"])], async (j) => {
      const ids = (j.payload as { messageIds: string[] }).messageIds;
      seen.push(ids);
      if (ids.includes("bad")) throw new Error("poison");
    });
    expect([...failed.keys()]).toEqual(["2"]);
    expect((failed.get("2") as Error).message).toBe("poison");
    expect(seen).toEqual([["a", "bad", "c"], ["a"], ["bad"], ["c"]]);
  });

  it("runs forget jobs on their own and keeps merged runs within the size bound", async () => {
    const sizes: number[] = [];
    const types: string[] = [];
    const many = Array.from({ length: 5 }, (_, i) => job(`e${i}`, "embed", Array.from({ length: MERGED_RUN_MESSAGES / 2 }, (_, k) => `m${i}-${k}`)));
    await runJobs([...many, job("f", "forget", [])], async (j) => {
      types.push(j.type);
      if (j.type === "embed") sizes.push((j.payload as { messageIds: string[] }).messageIds.length);
    });
    expect(types.filter((t) => t === "forget")).toHaveLength(1);
    expect(sizes.every((n) => n <= MERGED_RUN_MESSAGES)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5 * (MERGED_RUN_MESSAGES / 2));
  });
});
