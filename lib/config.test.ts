import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";

describe("scheduled work settings", () => {
  it("defaults to a summary run a minute and a retention sweep an hour", () => {
    const c = loadConfig({});
    expect([c.summaryEverySeconds, c.retentionEverySeconds]).toEqual([60, 3600]);
  });

  it("reads them, 0 turning them off", () => {
    const c = loadConfig({ STRATA_SUMMARY_EVERY_SECONDS: "0", STRATA_RETENTION_EVERY_SECONDS: "120" });
    expect([c.summaryEverySeconds, c.retentionEverySeconds]).toEqual([0, 120]);
  });

  it("rejects a bad value with a message that names the variable", () => {
    expect(() => loadConfig({ STRATA_SUMMARY_EVERY_SECONDS: "soon" })).toThrow(/STRATA_SUMMARY_EVERY_SECONDS must be a whole number/);
    expect(() => loadConfig({ STRATA_RETENTION_EVERY_SECONDS: "-5" })).toThrow(/STRATA_RETENTION_EVERY_SECONDS/);
    expect(() => loadConfig({ STRATA_SUMMARY_EVERY_SECONDS: "100000" })).toThrow(/STRATA_SUMMARY_EVERY_SECONDS must be between 0 and 86400/);
  });
});
