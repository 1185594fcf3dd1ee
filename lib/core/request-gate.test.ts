import { describe, expect, it } from "vitest";
import { createRequestGate } from "./request-gate.ts";

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

  it("gives up waiting after the bound, so derived work advances under sustained load", async () => {
    const gate = createRequestGate();
    const events: string[] = [];
    gate.enter();
    await Promise.all([gate.quiet(30, 10).then(() => events.push("quiet")), after(1_000).then(() => events.push("timer"))]);
    expect(events).toEqual(["quiet", "timer"]);
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
});
