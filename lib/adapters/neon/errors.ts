// Neon driver errors as StrataErrors, apart from client.ts so the HTTP-only client of the
// edge read path (http-client.ts) shares them without loading the WebSocket transport.

import { StrataError } from "../../core/errors.ts";

export const DRIVER = "neon";
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Whether a driver error came from Postgres (it carries a SQLSTATE) rather than the connection. */
export function hasSqlState(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && SQLSTATE.test(code);
}

/**
 * A driver error (NeonDbError over HTTP, DatabaseError over WebSocket: both carry the
 * SQLSTATE in `code`) as a StrataError, categorised by what the caller can do about it.
 */
export function neonError(e: unknown): StrataError {
  if (e instanceof StrataError) return e;
  const err = e as { code?: unknown; constraint?: unknown; message?: unknown } | null;
  const message = `${DRIVER}: ${e instanceof Error ? e.message : String(e)}`;
  const code = hasSqlState(e) ? String(err?.code) : undefined;
  if (!code) return new StrataError("upstream", "UPSTREAM_ERROR", message, { cause: e });
  const details: Record<string, unknown> = { sqlState: code };
  if (typeof err?.constraint === "string") details.constraint = err.constraint;
  const make = (category: ConstructorParameters<typeof StrataError>[0], strataCode: string, text = message) =>
    new StrataError(category, strataCode, text, { cause: e, details });
  switch (code) {
    case "23505":
      return make("conflict", "UNIQUE_VIOLATION");
    case "23503":
      return make("conflict", "FOREIGN_KEY_VIOLATION");
    case "23P01":
      return make("conflict", "EXCLUSION_VIOLATION");
    case "40001":
    case "40P01":
      return make("upstream", "TRANSACTION_CONFLICT"); // retry the transaction
    case "3D000":
      return make("config", "DATABASE_NOT_FOUND", `${message} (check the database name in DATABASE_URL)`);
  }
  if (code.startsWith("28")) return make("config", "DATABASE_AUTH_FAILED", `${message} (check the user and password in DATABASE_URL)`);
  if (code.startsWith("23") || code.startsWith("22")) return make("validation", "INVALID_DATA");
  return make("upstream", "UPSTREAM_ERROR");
}
