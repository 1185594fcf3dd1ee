import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { abBuilds, envPairs } from "../../bench/serve-client.ts";

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
