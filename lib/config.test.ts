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

describe("the embedded archive's buffer pool", () => {
  it("is left to the adapter's default unless STRATA_PGLITE_BUFFERS_MB says", () => {
    expect(loadConfig({ STRATA_DATA_DIR: "/srv/strata" }).tiers.archive).toEqual({ kind: "pglite", dataDir: "/srv/strata" });
    expect(loadConfig({ STRATA_DATA_DIR: "/srv/strata", STRATA_PGLITE_BUFFERS_MB: "64" }).tiers.archive).toEqual({ kind: "pglite", dataDir: "/srv/strata", sharedBuffersMb: 64 });
  });

  it("puts PGlite on a thread of its own only when STRATA_PGLITE_THREAD is on", () => {
    expect(loadConfig({ STRATA_PGLITE_THREAD: "on" }).tiers.archive).toMatchObject({ kind: "pglite", thread: true });
    expect(loadConfig({ STRATA_PGLITE_THREAD: "off" }).tiers.archive).not.toHaveProperty("thread");
    expect(loadConfig({}).tiers.archive).not.toHaveProperty("thread");
    expect(() => loadConfig({ STRATA_PGLITE_THREAD: "yes" })).toThrow(/STRATA_PGLITE_THREAD must be "on" or "off"/);
  });

  it("rejects a bad size with a message that names the variable", () => {
    expect(() => loadConfig({ STRATA_PGLITE_BUFFERS_MB: "lots" })).toThrow(/STRATA_PGLITE_BUFFERS_MB must be a whole number/);
    expect(() => loadConfig({ STRATA_PGLITE_BUFFERS_MB: "0" })).toThrow(/STRATA_PGLITE_BUFFERS_MB must be between 1 and 1024/);
    expect(() => loadConfig({ STRATA_PGLITE_BUFFERS_MB: "2048" })).toThrow(/STRATA_PGLITE_BUFFERS_MB must be between 1 and 1024/);
  });
});
