import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { abBuilds, envPairs, watchServer } from "../../bench/serve-client.ts";

const usage = (message: string): never => {
  throw new Error(message);
};

describe("abBuilds: the two checkouts of an A/B tool and their servers' extra environment", () => {
  it("resolves both checkouts and reads NAME=VALUE pairs, a value keeping its own = signs", () => {
    const builds = abBuilds({ a: ".", b: "./", envA: [], envB: ["STRATA_PGLITE_THREAD=on", "X=a=b", "EMPTY="] }, usage);
    expect(builds.roots).toEqual({ A: resolve("."), B: resolve(".") });
    expect(builds.env).toEqual({ A: {}, B: { STRATA_PGLITE_THREAD: "on", X: "a=b", EMPTY: "" } });
  });

  it("refuses a pair without a name, naming the flag", () => {
    expect(() => abBuilds({ a: ".", b: ".", envA: ["=on"], envB: [] }, usage)).toThrow("--env-a takes NAME=VALUE, got =on");
    expect(() => abBuilds({ a: ".", b: ".", envA: [], envB: ["on"] }, usage)).toThrow("--env-b takes NAME=VALUE, got on");
  });

  it("refuses a directory that is not a Strata checkout, naming the flag", () => {
    expect(() => abBuilds({ a: ".", b: "/tmp", envA: [], envB: [] }, usage)).toThrow("--b /tmp is not a Strata checkout (no bin/strata.mjs)");
  });
});

describe("envPairs: a repeatable NAME=VALUE option (bench/peers.ts --strata-env)", () => {
  it("reads the pairs, the last of a name winning, and refuses one without a name", () => {
    expect(envPairs("--strata-env", ["STRATA_PGLITE_THREAD=off", "STRATA_PGLITE_THREAD=on"], usage)).toEqual({ STRATA_PGLITE_THREAD: "on" });
    expect(envPairs("--strata-env", [], usage)).toEqual({});
    expect(() => envPairs("--strata-env", ["STRATA_PGLITE_THREAD"], usage)).toThrow("--strata-env takes NAME=VALUE, got STRATA_PGLITE_THREAD");
  });
});

describe("watchServer: a bench tool's server, watched until the tool stops it", () => {
  const node = (code: string) => spawn(process.execPath, ["-e", code], { stdio: "ignore" });
  const exitOf = (child: ReturnType<typeof node>) => new Promise((r) => child.once("exit", r));

  it("says how a server ended that the tool did not stop", async () => {
    const told: string[] = [];
    const exits = node("process.exit(3)");
    watchServer(exits, (how) => told.push(how));
    await exitOf(exits);
    await watchServer(exits, () => undefined).exited; // watched after it exited: resolves at once
    const killed = node("setTimeout(() => {}, 60_000)");
    watchServer(killed, (how) => told.push(how));
    killed.kill("SIGKILL");
    await exitOf(killed);
    expect(told).toEqual(["exited with 3", "was stopped by SIGKILL"]);
  });

  it("stop() sends the signal and waits for the exit, which is not reported; a second stop() resolves too", async () => {
    const told: string[] = [];
    const child = node("process.on('SIGINT', () => setTimeout(() => process.exit(0), 100)); setTimeout(() => {}, 60_000)");
    const server = watchServer(child, (how) => told.push(how));
    await new Promise((r) => setTimeout(r, 300)); // its SIGINT handler in place
    await server.stop("SIGINT");
    expect(child.exitCode).toBe(0);
    await server.stop();
    expect(told).toEqual([]);
  });
});
