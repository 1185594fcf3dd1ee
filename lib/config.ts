// The one reader of the environment. Everything else takes the plain StrataConfig this
// returns, so Lambda entry points, the CLI and tests can build one without touching
// process.env. Invalid values fail at start with a message that says what to set.

import { resolve } from "node:path";
import { z } from "zod";
import { StrataError } from "./core/errors.ts";

const intFrom = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

const EnvSchema = z.object({
  PORT: intFrom("PORT", 1, 65535).optional(),
  HOST: z.string().trim().min(1).optional(),
  STRATA_DATA_DIR: z.string().trim().min(1).optional(),
  STRATA_API_KEY: z.string().trim().min(16, "STRATA_API_KEY must be at least 16 characters").optional(),
  STRATA_RECENT_WINDOW: intFrom("STRATA_RECENT_WINDOW", 1, 1000).optional(),
  STRATA_WORKERS: z.enum(["on", "off"], { message: 'STRATA_WORKERS must be "on" or "off"' }).optional(),
  STRATA_LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).optional(),
});

export interface StrataConfig {
  port: number;
  /** Interface to bind; 127.0.0.1 unless an API key protects the server. */
  host: string;
  /** Where the embedded archive lives; "memory://" for a throwaway one. */
  dataDir: string;
  /** When set, every request needs `Authorization: Bearer <key>`; unset means one open default tenant on loopback. */
  apiKey: string | null;
  /** Messages kept in each session's hot window. */
  recentWindow: number;
  /** Run the in-process job runner (embedded queue). */
  workers: boolean;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
}

export const DEFAULT_TENANT = "default";

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Reads the environment (or the given record) into a validated config. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<StrataConfig> = {}): StrataConfig {
  const blankToUndefined = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "" ? undefined : v]));
  const parsed = EnvSchema.safeParse(blankToUndefined);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? "environment");
    throw new StrataError("config", "CONFIG_INVALID", `${field}: ${issue?.message ?? "invalid"} (fix or unset it)`);
  }
  const e = parsed.data;
  const apiKey = e.STRATA_API_KEY ?? null;
  const dataDir = e.STRATA_DATA_DIR ?? "./.strata";
  if (!apiKey && e.HOST && !isLoopback(e.HOST)) {
    throw new StrataError("config", "CONFIG_INVALID", `HOST=${e.HOST} needs STRATA_API_KEY: without a key the server is open and stays on loopback`);
  }
  return {
    port: e.PORT ?? 8787,
    host: e.HOST ?? (apiKey ? "0.0.0.0" : "127.0.0.1"),
    dataDir: dataDir.startsWith("memory://") ? dataDir : resolve(dataDir),
    apiKey,
    recentWindow: e.STRATA_RECENT_WINDOW ?? 20,
    workers: (e.STRATA_WORKERS ?? "on") === "on",
    logLevel: e.STRATA_LOG_LEVEL ?? "info",
    ...overrides,
  };
}
