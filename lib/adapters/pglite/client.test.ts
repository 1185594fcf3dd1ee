import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isStrataError } from "../../core/errors.ts";
import { createPgliteClient, DEFAULT_SHARED_BUFFERS_MB } from "./client.ts";

const root = mkdtempSync(join(tmpdir(), "strata-pglite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function sharedBuffers(options: Parameters<typeof createPgliteClient>[0]): Promise<string> {
  const sql = await createPgliteClient(options);
  try {
    const [row] = await sql.query<{ shared_buffers: string }>("show shared_buffers");
    return row!.shared_buffers;
  } finally {
    await sql.close();
  }
}

describe("the PGlite archive's buffer pool", () => {
  it("is DEFAULT_SHARED_BUFFERS_MB unless told, not PGlite's 128 MB", async () => {
    expect(DEFAULT_SHARED_BUFFERS_MB).toBe(16);
    expect(await sharedBuffers({ dataDir: "memory://" })).toBe("16MB");
  });

  it("takes the size given for that start only, leaving the directory's postgresql.conf as initdb wrote it", async () => {
    const dir = join(root, "pg");
    expect(await sharedBuffers({ dataDir: dir, sharedBuffersMb: 4 })).toBe("4MB");
    const conf = readFileSync(join(dir, "postgresql.conf"), "utf8");
    // initdb's settings are still there (PGlite's postgresqlconf option would have replaced the file).
    expect(conf).toMatch(/^shared_buffers = 128MB/m);
    expect(conf).toMatch(/^datestyle = 'iso, mdy'/m);
    expect(await sharedBuffers({ dataDir: dir })).toBe("16MB");
    expect(readFileSync(join(dir, "postgresql.conf"), "utf8")).toBe(conf);
  });

  it("refuses a size that is not a whole number of MB, naming it, before it makes or locks the directory", async () => {
    const dir = join(root, "refused");
    for (const bad of [0, 1.5, Number.NaN]) {
      const error = await createPgliteClient({ dataDir: dir, sharedBuffersMb: bad }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isStrataError(error) && error.code).toBe("CONFIG_INVALID");
      expect((error as Error).message).toMatch(new RegExp(`sharedBuffersMb must be a whole number of MB, at least 1: got ${bad}`));
      expect(existsSync(dir)).toBe(false);
    }
    expect(await sharedBuffers({ dataDir: dir, sharedBuffersMb: 2 })).toBe("2MB");
  });
});
