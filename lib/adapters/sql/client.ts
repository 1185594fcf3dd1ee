// The narrow seam every SQL adapter depends on: run a statement with positional params and
// get rows back, or run a function inside a transaction. PGlite, node-postgres and Neon's
// Pool all satisfy it with a few lines, so the archive, graph and vector persistence are
// written once against it.

export interface SqlClient {
  /** Runs one parameterised statement ($1, $2, ...) and returns its rows. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Round trip for health checks. */
  ping(): Promise<void>;
  /** Closes what the client opened. */
  close(): Promise<void>;
  /** Driver name for health output, e.g. "pglite". */
  readonly driver: string;
}
