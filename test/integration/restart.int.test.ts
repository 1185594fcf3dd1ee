// Durability of the embedded server across a stop: data written before the stop is there
// after the start, and derived jobs that were still pending at the stop run after it.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { call, startTestStrata } from "../fixtures/strata.ts";

const dir = mkdtempSync(join(tmpdir(), "strata-restart-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("keeps data and finishes pending jobs after a restart", async () => {
  // First run: the runner is off, as if the process stopped before it got to the jobs.
  const first = await startTestStrata({ dataDir: dir, workers: false });
  const messages = Array.from({ length: 30 }, (_, i) => ({ id: `turn-${i}`, role: i % 2 ? "assistant" : "user", content: `Turn ${i} about the garden and tomatoes` }));
  expect((await call(first, "POST", "/v1/sessions/s1/messages", { userId: "ann", messages })).status).toBe(201);
  expect((await call(first, "GET", "/v1/status")).body.queue.pending).toBe(2);
  await first.close();

  const second = await startTestStrata({ dataDir: dir });
  try {
    const history = await call(second, "GET", "/v1/sessions/s1/messages?limit=100");
    expect(history.body.messages.map((m: { id: string }) => m.id)).toEqual(messages.map((m) => m.id));
    await second.idle();
    expect((await call(second, "GET", "/v1/status")).body.queue).toMatchObject({ pending: 0, failed: 0 });
    expect(await second.deps.vectors.count("default", "ann")).toBe(30);
    expect((await second.deps.graph.counts("default", "ann")).mentions).toBeGreaterThan(0);
    const search = await call(second, "POST", "/v1/search", { userId: "ann", query: "tomatoes in the garden", limit: 5 });
    expect(search.body.results[0].sources).toContain("vector");
  } finally {
    await second.close();
  }
});
