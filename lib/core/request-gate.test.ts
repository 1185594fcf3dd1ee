import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { createRequestGate, eachInSlices, loadSlicer, loadStatementTurn, sliceScheduler } from "./request-gate.ts";

const after = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("request gate", () => {
  it("is quiet at once when no request was ever in flight", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    await Promise.all([gate.quiet(1_000, 50).then(() => events.push("quiet")), after(200).then(() => events.push("timer"))]);
    expect(events).toEqual(["quiet", "timer"]);
  });

  it("waits for the requests in flight, then for a settle period without any", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    gate.enter();
    const quiet = gate.quiet(5_000, 40).then(() => events.push("quiet"));
    await after(20);
    gate.leave();
    events.push("first left");
    // A second request starts inside the settle period (as a context call follows the post of
    // a turn): the gate stays closed until it has ended and the period has passed again.
    await after(10);
    gate.enter();
    events.push("second entered");
    await after(60);
    events.push("second leaving");
    gate.leave();
    await quiet;
    expect(events).toEqual(["first left", "second entered", "second leaving", "quiet"]);
    expect(gate.inFlight).toBe(0);
  });

  it("without a settle period, is quiet as soon as none is in flight", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    gate.enter();
    const quiet = gate.quiet(5_000).then(() => events.push("quiet"));
    await after(10);
    gate.leave();
    gate.enter();
    events.push("next entered");
    await quiet;
    expect(events).toEqual(["next entered", "quiet"]);
  });

  it("quiet and idleTurn give up waiting after the bound, so derived and background work advance under sustained load", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    gate.enter();
    await Promise.all([
      gate.quiet(30, 10).then(() => events.push("quiet")),
      gate.idleTurn(30).then(() => events.push("idle")),
      after(1_000).then(() => events.push("timer")),
    ]);
    // Both bounds end long before the timer, in either order.
    expect([...events.slice(0, 2)].sort()).toEqual(["idle", "quiet"]);
    expect(events[2]).toBe("timer");
    expect(gate.inFlight).toBe(1);
  });

  it("gives the event loop a turn before it answers, so a request read on that turn counts", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    // A request whose handler the loop starts on its next turn (as a server reads one).
    setImmediate(() => {
      gate.enter();
      events.push("request");
      setTimeout(() => {
        events.push("answered");
        gate.leave();
      }, 20);
    });
    await gate.quiet(5_000);
    events.push("quiet");
    expect(events).toEqual(["request", "answered", "quiet"]);
  });

  it("idleTurn: resolves on a turn after the last request in flight left, when no other came on it", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    gate.enter();
    const idle = gate.idleTurn(5_000).then(() => events.push("idle"));
    await after(10);
    gate.leave();
    // What the request still does after it leaves (a server writes its response) comes first.
    void Promise.resolve().then(() => events.push("response written"));
    // A request the loop reads on the next turn is waited for as well.
    setImmediate(() => {
      gate.enter();
      events.push("next entered");
      setTimeout(() => {
        events.push("next left");
        gate.leave();
      }, 20);
    });
    await idle;
    expect(events).toEqual(["response written", "next entered", "next left", "idle"]);
    expect(gate.inFlight).toBe(0);
  });

  it("loadSlicer: lets a load run on until its slice is spent, then gives the event loop a turn", async () => {
    // A slice longer than the test: never a turn, however many items.
    const long = loadSlicer(60_000);
    for (let i = 0; i < 10_000; i++) expect(long()).toBeNull();

    // At 0 ms, a turn after every item; what was queued for the loop runs before the load goes on.
    const every = loadSlicer(0);
    const events: string[] = [];
    for (let i = 0; i < 3; i++) {
      setImmediate(() => events.push(`loop ${i}`));
      const turn = every();
      expect(turn).not.toBeNull();
      await turn;
      events.push(`item ${i}`);
    }
    expect(events).toEqual(["loop 0", "item 0", "loop 1", "item 1", "loop 2", "item 2"]);

    // A slice of 30 ms: no turn while it lasts, one after (the clock is read every 128 items).
    const timed = loadSlicer(30);
    const t0 = performance.now();
    let turns = 0;
    let items = 0;
    while (turns === 0) {
      items++;
      const turn = timed();
      if (turn) {
        turns++;
        await turn;
      }
    }
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    expect(items % 128).toBe(0);
  });

  it("eachInSlices: runs every item in order, and what was queued for the loop between the items its slicer gives turns after", async () => {
    const events: string[] = [];
    setImmediate(() => events.push("loop"));
    await eachInSlices(3, loadSlicer(0), (i) => events.push(`item ${i}`));
    expect(events).toEqual(["item 0", "loop", "item 1", "item 2"]);
    const none: string[] = [];
    await eachInSlices(0, loadSlicer(0), (i) => none.push(`item ${i}`));
    expect(none).toEqual([]);
  });

  it("loadStatementTurn: three loads' statements go one a turn of the event loop, so what arrives while one runs goes before the next", async () => {
    const events: string[] = [];
    const load = async (name: string) => {
      for (let page = 0; page < 2; page++) {
        await loadStatementTurn();
        events.push(`${name} ${page}`);
        // A request's bytes read on the loop's next turn, while the first page's statement runs.
        if (name === "a" && page === 0) setImmediate(() => events.push("request"));
      }
    };
    await Promise.all([load("a"), load("b"), load("c")]);
    expect(events).toEqual(["a 0", "request", "b 0", "c 0", "a 1", "b 1", "c 1"]);
  });

  it("sliceScheduler: runs a slice on the next turn without a gate, after the requests in flight with one", async () => {
    const events: string[] = [];
    sliceScheduler(undefined)(() => events.push("slice, no gate"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(["slice, no gate"]);

    const gate = createRequestGate();
    gate.enter();
    sliceScheduler(gate)(() => events.push("slice"));
    await after(20);
    events.push("request left");
    gate.leave();
    await after(20);
    expect(events).toEqual(["slice, no gate", "request left", "slice"]);
  });

  it("a wait's bound does not hold the process open once nothing else does", () => {
    // A child holds a request in flight (a server closed with one stuck) while background work
    // waits a minute for quiet, with quiet() and idleTurn() alike; it has nothing else to do
    // after 50 ms. Held open by the bound's timer, it would run a minute and be killed at 15 s.
    const gateUrl = pathToFileURL(join(import.meta.dirname, "request-gate.ts")).href;
    const script = [
      `const { createRequestGate } = await import(${JSON.stringify(gateUrl)});`,
      "const gate = createRequestGate();",
      "gate.enter();",
      "void gate.quiet(60_000, 10).then(() => console.log('quiet resolved'));",
      "void gate.idleTurn(60_000).then(() => console.log('idleTurn resolved'));",
      "setTimeout(() => console.log('done'), 50);",
    ].join("\n");
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 15_000 });
    expect(run.error).toBeUndefined();
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe("");
    // Neither wait resolved: the request was still in flight when the process ended.
    expect(run.stdout.trim().split("\n")).toEqual(["done"]);
    expect(run.status).toBe(0);
  });
});
