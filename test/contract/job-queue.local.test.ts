import { describe, expect, it } from "vitest";
import { createLocalJobQueue } from "../../lib/adapters/local/job-queue.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import { createRequestGate } from "../../lib/core/request-gate.ts";
import type { JobHandler } from "../../lib/core/ports.ts";
import { closeSharedPglite, sharedPglite, uid } from "../fixtures/pglite.ts";
import { jobQueueContract } from "./job-queue.contract.ts";

jobQueueContract("local (outbox runner)", async () => {
  const archive = createSqlArchive({ sql: await sharedPglite() });
  return {
    archive,
    makeQueue: ({ maxAttempts }) => createLocalJobQueue({ archive, maxAttempts, backoffMs: () => 50, pollMs: 50 }),
    cleanup: closeSharedPglite,
  };
});

describe("local runner: the runs of a round", () => {
  // PGlite answers through promises alone, so runs that only wait on it never give the event
  // loop a turn: a round of them held the embedded server's thread for seconds.
  it("give the event loop a turn, and wait for a moment without requests, before each run", async () => {
    const archive = createSqlArchive({ sql: await sharedPglite() });
    const tenantId = uid("t");
    await archive.ensureTenant({ id: tenantId, name: tenantId });
    const { jobs } = await archive.ingest({
      tenantId,
      sessionId: uid("s"),
      userId: "u",
      messages: Array.from({ length: 3 }, (_, i) => ({ id: uid(`m${i}`), role: "user", content: `m${i}`, name: null, createdAt: new Date().toISOString(), metadata: {}, tokens: 1 })),
      jobsFor: (ms) => ms.map((m) => ({ type: "embed", payload: { messageIds: [m.id] } })),
    });
    const gate = createRequestGate();
    const queue = createLocalJobQueue({ archive, gate, pollMs: 50, yieldMs: 200, settleMs: 0 });
    const turns: number[] = [];
    let turn = 0;
    const inFlightAtRun: number[] = [];
    const handler: JobHandler = Object.assign(async () => {}, {
      async batch(batch: typeof jobs, pause?: () => Promise<void>) {
        // A request arrives on the next turn and is answered 20 ms later.
        setImmediate(() => {
          gate.enter();
          setTimeout(() => gate.leave(), 20);
        });
        for (let i = 0; i < batch.length; i++) {
          await pause?.();
          turns.push(turn);
          inFlightAtRun.push(gate.inFlight);
          await Promise.resolve(); // a run that never leaves the microtask queue
        }
        return new Map<string, unknown>();
      },
    });
    // Counts turns of the event loop (its check phase) while the queue runs.
    let counting = true;
    const tick = () => {
      turn++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    queue.start(handler);
    await queue.dispatch(jobs);
    await queue.idle();
    await queue.stop();
    counting = false;
    expect(turns).toHaveLength(3);
    expect(turns[1]! > turns[0]! && turns[2]! > turns[1]!).toBe(true);
    expect(inFlightAtRun).toEqual([0, 0, 0]);
  });
});
