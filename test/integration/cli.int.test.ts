// The CLI as an operator runs it: a real `node bin/strata.mjs` child process on a data dir.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { call, startTestStrata } from "../fixtures/strata.ts";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "strata-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const strataCli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ["bin/strata.mjs", ...args], { env: { ...process.env, STRATA_DATA_DIR: dir, STRATA_LOG_LEVEL: "silent", ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

it("migrates, checks the tiers, and re-drives dead-lettered jobs", async () => {
  const migrated = await strataCli(["migrate"]);
  expect(migrated.code).toBe(0);
  expect(migrated.stdout).toMatch(/archive schema up to date \(pglite/);

  const doctor = await strataCli(["doctor"]);
  expect(doctor.code).toBe(0);
  expect(doctor.stdout).toMatch(/^ok +archive +pglite/m);
  expect(doctor.stdout).toMatch(/^ok +schema +at version \d+/m);

  // A job that exhausted its attempts, as a failing embedder would leave it.
  const strata = await startTestStrata({ dataDir: dir, workers: false });
  expect((await call(strata, "POST", "/v1/sessions/s1/messages", { userId: "u", messages: [{ role: "user", content: "hello there" }] })).status).toBe(201);
  const [job] = await strata.deps.archive.claimJobs({ limit: 1, leaseMs: 60_000, types: ["embed"] });
  await strata.deps.archive.failJob(job!.id, "embedder was down", null);
  expect((await strata.deps.archive.queueStats("default")).failed).toBe(1);
  await strata.close();

  const retried = await strataCli(["jobs", "retry", "--failed"]);
  expect(retried.code).toBe(0);
  expect(retried.stdout).toContain("re-driven 1 failed job(s): 1 embed");
  expect((await strataCli(["jobs", "retry"])).code).toBe(1);

  const after = await startTestStrata({ dataDir: dir });
  try {
    await after.idle();
    expect(await after.deps.archive.queueStats("default")).toMatchObject({ pending: 0, failed: 0 });
    expect(await after.deps.vectors.count("default", "u")).toBe(1);
  } finally {
    await after.close();
  }

  const bad = await strataCli(["doctor"], { PORT: "not-a-port" });
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain("PORT: PORT must be a whole number");
});

it("rebuilds every vector with another embedder, and says what is wrong with its settings", async () => {
  const { startOpenAiEmbeddingsServer } = await import("../stand-ins/openai-embeddings-server.ts");
  const server = await startOpenAiEmbeddingsServer();
  try {
    const embedEnv = { STRATA_EMBEDDER: "openai", STRATA_EMBED_BASE_URL: server.url, STRATA_EMBED_MODEL: "text-embedding-3-small", OPENAI_API_KEY: server.apiKey! };
    const rebuilt = await strataCli(["reindex", "--vectors"], embedEnv);
    expect(rebuilt.stderr).toContain("openai:text-embedding-3-small");
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(server.stats().requests).toBeGreaterThan(0);
    const strata = await startTestStrata({ dataDir: dir, workers: false });
    try {
      expect(await strata.deps.vectors.count("default", "u")).toBe(1);
    } finally {
      await strata.close();
    }
    const missing = await strataCli(["reindex", "--vectors"], { STRATA_EMBEDDER: "openai" });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("STRATA_EMBEDDER=openai needs STRATA_EMBED_MODEL");
  } finally {
    await server.close();
  }
});

it("refuses a data directory another process has open, and opens it once that one has closed", async () => {
  // This test process holds the directory, as a running `strata serve` would.
  const strata = await startTestStrata({ dataDir: dir, workers: false });
  try {
    const refused = await strataCli(["migrate"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("DATA_DIR_IN_USE");
    expect(refused.stderr).toContain(`in use by process ${process.pid}`);
    const doctor = await strataCli(["doctor"]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(new RegExp(`^FAIL archive +data directory .* is in use by process ${process.pid}`, "m"));
    expect(doctor.stdout).toContain("fix: stop the process named above");
    // What the server wrote is still there and still served.
    expect((await call(strata, "POST", "/v1/sessions/lock-s/messages", { userId: "u", messages: [{ role: "user", content: "still here" }] })).status).toBe(201);
  } finally {
    await strata.close();
  }
  const migrated = await strataCli(["migrate"]);
  expect(migrated.code).toBe(0);
});
