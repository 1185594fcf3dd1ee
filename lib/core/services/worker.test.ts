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

describe("runJobs, embed beside extract", () => {
  it("starts the embed runs while an extract run is still in flight, and runs each type's runs one at a time", async () => {
    let releaseExtract!: () => void;
    const extractHeld = new Promise<void>((r) => (releaseExtract = r));
    const events: string[] = [];
    const inFlight = new Map<string, number>();
    const done = runJobs(
      [job("x1", "extract", ["a"]), job("x2", "extract", ["b"], "other"), job("e1", "embed", ["a"]), job("e2", "embed", ["b"], "other")],
      async (j) => {
        const n = (inFlight.get(j.type) ?? 0) + 1;
        inFlight.set(j.type, n);
        events.push(`${j.type} ${j.tenantId} start (${n} of its type)`);
        if (j.type === "extract" && j.tenantId === "t") await extractHeld;
        else await new Promise((r) => setImmediate(r));
        inFlight.set(j.type, inFlight.get(j.type)! - 1);
        events.push(`${j.type} ${j.tenantId} end`);
      },
    );
    // Both embed runs finish while the first extract run is held.
    for (let i = 0; i < 20 && !events.includes("embed other end"); i++) await new Promise((r) => setImmediate(r));
    expect(events).toEqual(["extract t start (1 of its type)", "embed t start (1 of its type)", "embed t end", "embed other start (1 of its type)", "embed other end"]);
    releaseExtract();
    expect((await done).size).toBe(0);
    expect(events.slice(5)).toEqual(["extract t end", "extract other start (1 of its type)", "extract other end"]);
  });
});

describe("runJobs, paused between runs", () => {
  it("awaits the pause before each run", async () => {
    let pauses = 0;
    const seen: [string, number][] = [];
    await runJobs(
      [job("x1", "extract", ["a"]), job("x2", "extract", ["b"], "other"), job("e1", "embed", ["a"]), job("e2", "embed", ["b"], "other")],
      async (j) => {
        seen.push([`${j.type} ${j.tenantId}`, pauses]);
      },
      async () => {
        await new Promise((r) => setImmediate(r));
        pauses++;
      },
    );
    expect(pauses).toBe(4);
    // Each run found one more pause finished than the run of its type before it.
    for (const type of ["extract", "embed"]) {
      const counts = seen.filter(([name]) => name.startsWith(type)).map(([, n]) => n);
      expect(counts).toHaveLength(2);
      expect(counts[0]).toBeGreaterThanOrEqual(1);
      expect(counts[1]).toBeGreaterThan(counts[0]!);
    }
  });

  it("awaits it before each job that is not merged too (summaries)", async () => {
    let pauses = 0;
    const seen: number[] = [];
    const summary = (id: string) => ({ ...job(id, "summarize", []), payload: { sessionId: id } }) as Job;
    await runJobs(
      [summary("s1"), summary("s2"), summary("s3")],
      async () => {
        seen.push(pauses);
      },
      async () => {
        await new Promise((r) => setImmediate(r));
        pauses++;
      },
    );
    expect(seen).toEqual([1, 2, 3]);
  });
});
