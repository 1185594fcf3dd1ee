// Neon (serverless Postgres) behind the SqlClient seam, through @neondatabase/serverless,
// so the archive, graph and vector SQL written for PGlite runs unchanged on Neon.
//
// Two transports, picked per call type:
// - transaction() and exec() take a pooled Client over a WebSocket: an interactive
//   transaction needs one session for BEGIN ... COMMIT, and migration text holds many
//   statements, which only the simple protocol on a session accepts (the HTTP endpoint
//   takes one statement).
// - query(), a single statement, goes over HTTP (`neon()`) while the pool has no idle
//   session: one request, one round trip, with no WebSocket, TLS and Postgres startup
//   first, which is what a cold Lambda or an edge function would pay. Once a session sits
//   idle in the pool (after a transaction) a query takes it: the round trip is the same and
//   the work around it smaller. Against the local stand-in on loopback, a primary-key
//   select took 0.8-1.0 ms at the median on a warm pooled session and 1.8-2.3 ms over
//   HTTP, while a first query took 7-11 ms on a new session and 2-5 ms over HTTP.
//   `queryTransport` pins either transport.
//
// Endpoints follow the driver's defaults, which derive them from the connection string's
// host (wss://<host>/v2, and https://api.<host less its first label>/sql). A self-hosted
// proxy or a local stand-in is reached by passing `wsProxy` and `fetchEndpoint`. WebSocket
// settings are set on each pooled Client, never on the driver's globals; `fetchEndpoint`
// exists only as a global in the driver, so one resolver routes the host:port of every
// connection string given an explicit endpoint to it, and leaves every other host to
// whatever was set before.

import { Client, neon, neonConfig, Pool, type NeonConfig, type PoolClient } from "@neondatabase/serverless";
import WebSocket from "ws";
import { BurstWebSocket } from "./burst-websocket.ts";
import { StrataError } from "../../core/errors.ts";
import type { SqlClient } from "../sql/client.ts";
import { DRIVER, hasSqlState, neonError } from "./errors.ts";

export { neonError };

export type QueryTransport = "auto" | "http" | "websocket";

export interface NeonClientOptions {
  /** postgres://user:password@host/database (DATABASE_URL). */
  connectionString: string;
  /** WebSocket connections kept for transactions and warm queries (default 5). */
  poolSize?: number;
  /**
   * How single statements travel: "http" always, "websocket" always over the pool, or
   * "auto" (default): a pooled connection when one is idle, HTTP otherwise.
   */
  queryTransport?: QueryTransport;
  /**
   * WebSocket proxy: `host[:port]/path` (the driver adds `?address=<db host>:<port>`), or a
   * ws:// or wss:// URL, whose scheme then sets useSecureWebSocket. Default: Neon's.
   */
  wsProxy?: string;
  /** Full http(s):// URL of the HTTP query endpoint. Default: Neon's. */
  fetchEndpoint?: string;
  /** wss:// (true, default) or ws:// to the proxy. */
  useSecureWebSocket?: boolean;
  /**
   * Pipelines startup, password and first query ("password"). Only works with cleartext
   * password auth, as on Neon; default "password" when the URL has a password, else off.
   */
  pipelineConnect?: "password" | false;
  /** Pipelines the TLS handshake (pure-JS TLS only; Neon hosts only). Default false. */
  pipelineTLS?: boolean;
  /**
   * Coalesces the driver's writes into one WebSocket message per timer tick. Default false
   * here (the driver's is true): the tick is a setTimeout(0), at least 1 ms in Node, paid
   * on every query. Off, the default WebSocket holds a statement's messages until its Sync and
   * sends them as one message instead, with no timer (burst-websocket.ts); on, ws's own
   * WebSocket carries the driver's joined writes as they come.
   */
  coalesceWrites?: boolean;
  /** WebSocket implementation for Node (default: the `ws` package's, sending a statement's messages as one WebSocket message: burst-websocket.ts; with coalesceWrites, ws's own). */
  webSocketConstructor?: NeonConfig["webSocketConstructor"];
  /** Idle pooled connections close after this long (default 10 s). */
  idleTimeoutMs?: number;
  /** Gives up opening a pooled connection after this long (default 10 s). */
  connectionTimeoutMs?: number;
}

export interface NeonSqlClient extends SqlClient {
  /** Runs one statement over HTTP, whatever `queryTransport` says (health checks, benches). */
  queryHttp<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs one statement over a pooled WebSocket connection, whatever `queryTransport` says. */
  queryWebSocket<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}


function invalid(message: string): StrataError {
  return new StrataError("config", "CONFIG_INVALID", message);
}

/** Checks the connection string without echoing it (it holds a password). */
function parseConnectionString(connectionString: string): URL {
  const fix = "set it to the Neon connection string, or unset it to use the embedded archive";
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw invalid(`DATABASE_URL is not a postgres:// URL: ${fix}`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw invalid(`DATABASE_URL is not a postgres:// URL (it starts with ${url.protocol}): ${fix}`);
  }
  if (!url.hostname) throw invalid(`DATABASE_URL has no host: ${fix}`);
  if (!url.username) throw invalid(`DATABASE_URL names no user (postgres://user:password@host/database): ${fix}`);
  if (url.pathname.length <= 1) throw invalid(`DATABASE_URL names no database (postgres://user:password@host/database): ${fix}`);
  return url;
}

/** wsProxy as the driver wants it (no scheme), and the security a scheme implied. */
function parseWsProxy(value: string): { proxy: string; secure?: boolean } {
  if (!value.includes("://")) {
    if (value.includes("?")) throw invalid(`wsProxy ${value} must not carry a query: the driver appends ?address=host:port`);
    return { proxy: value };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`wsProxy ${value} is not a URL: give host[:port]/path or a ws:// or wss:// URL`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw invalid(`wsProxy ${value} must be a ws:// or wss:// URL`);
  if (url.search) throw invalid(`wsProxy ${value} must not carry a query: the driver appends ?address=host:port`);
  return { proxy: `${url.host}${url.pathname === "/" ? "" : url.pathname}`, secure: url.protocol === "wss:" };
}

// --- fetchEndpoint routing (a driver global, see the top of the file) -------------------

const routes = new Map<string, { endpoint: string; users: number }>();
let resolverInstalled = false;

/** The key the driver's fetchEndpoint function is called with: hostname and port as URL parts. */
function routeKey(connectionString: string, url: URL): string {
  const asHttp = new URL(`http:${connectionString.slice(url.protocol.length)}`);
  return `${asHttp.hostname}:${asHttp.port}`;
}

function addRoute(key: string, endpoint: string): () => void {
  if (!resolverInstalled) {
    resolverInstalled = true;
    const previous = neonConfig.fetchEndpoint;
    neonConfig.fetchEndpoint = (host, port, options) =>
      routes.get(`${host}:${port}`)?.endpoint ?? (typeof previous === "function" ? previous(host, port, options) : previous);
  }
  const route = routes.get(key);
  if (route && route.endpoint !== endpoint) {
    throw invalid(`another Neon client in this process sends ${key} to ${route.endpoint}, not ${endpoint}: use one fetchEndpoint per database host`);
  }
  if (route) route.users++;
  else routes.set(key, { endpoint, users: 1 });
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    const r = routes.get(key);
    if (r && --r.users === 0) routes.delete(key);
  };
}

// --- the client ---------------------------------------------------------------------------

/** A SqlClient over one pooled session (inside transaction()); nested transactions are savepoints. */
function sessionClient(conn: PoolClient): SqlClient {
  let depth = 0;
  const client: SqlClient = {
    driver: DRIVER,
    async query<T>(text: string, params: unknown[] = []) {
      try {
        return (await conn.query(text, params)).rows as T[];
      } catch (e) {
        throw neonError(e);
      }
    },
    async exec(text: string) {
      try {
        await conn.query(text);
      } catch (e) {
        throw neonError(e);
      }
    },
    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      const savepoint = `strata_sp_${++depth}`;
      await client.exec(`savepoint ${savepoint}`);
      try {
        const result = await fn(client);
        await client.exec(`release savepoint ${savepoint}`);
        return result;
      } catch (e) {
        await client.exec(`rollback to savepoint ${savepoint}`).catch(() => {}); // a lost session fails the outer rollback
        throw e;
      } finally {
        depth--;
      }
    },
    async ping() {
      await client.query("select 1");
    },
    async close() {}, // the session goes back to the pool when the transaction ends
  };
  return client;
}

/** Opens a Neon SqlClient: a WebSocket pool (opened lazily) and the HTTP query function. */
export function createNeonSqlClient(options: NeonClientOptions): NeonSqlClient {
  const url = parseConnectionString(options.connectionString);
  const poolSize = options.poolSize ?? 5;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw invalid(`poolSize must be a whole number ≥ 1, got ${poolSize}`);
  const transport = options.queryTransport ?? "auto";
  if (!["auto", "http", "websocket"].includes(transport)) {
    throw invalid(`queryTransport must be "auto", "http" or "websocket", got ${JSON.stringify(transport)}`);
  }

  // Per-client WebSocket settings; unset ones keep the driver's defaults.
  const settings: Partial<NeonConfig> = {
    // With the driver's coalescing on, its joined writes start with a Parse as often as not:
    // BurstWebSocket would hold each one a microtask more, after the driver's own timer.
    webSocketConstructor: options.webSocketConstructor ?? ((options.coalesceWrites ? WebSocket : BurstWebSocket) as unknown as NeonConfig["webSocketConstructor"]),
    pipelineConnect: options.pipelineConnect ?? (url.password ? "password" : false),
    coalesceWrites: options.coalesceWrites ?? false,
  };
  if (options.wsProxy !== undefined) {
    const { proxy, secure } = parseWsProxy(options.wsProxy);
    settings.wsProxy = proxy;
    if (secure !== undefined) settings.useSecureWebSocket = secure;
  }
  if (options.useSecureWebSocket !== undefined) settings.useSecureWebSocket = options.useSecureWebSocket;
  if (options.pipelineTLS !== undefined) settings.pipelineTLS = options.pipelineTLS;

  let removeRoute = () => {};
  if (options.fetchEndpoint !== undefined) {
    let endpoint: URL;
    try {
      endpoint = new URL(options.fetchEndpoint);
    } catch {
      throw invalid(`fetchEndpoint ${options.fetchEndpoint} is not a URL: give the full http(s)://host/sql address`);
    }
    if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") throw invalid(`fetchEndpoint ${options.fetchEndpoint} must be http(s)://`);
    removeRoute = addRoute(routeKey(options.connectionString, url), endpoint.href);
  }

  class ConfiguredClient extends Client {
    constructor(config?: ConstructorParameters<typeof Client>[0]) {
      super(config);
      Object.assign(this.neonConfig, settings);
    }
  }

  const pool = new Pool({
    connectionString: options.connectionString,
    max: poolSize,
    idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
  });
  pool.Client = ConfiguredClient;
  // An idle connection that drops (Neon suspends idle computes) must not crash the
  // process: the pool discards it and opens another on the next checkout.
  pool.on("error", () => {});
  const http = neon(options.connectionString);
  let closed = false;

  /**
   * Runs `fn` on a pooled session and gives it back; a session `fn` reports lost (a failure
   * below SQL: no SQLSTATE, or a rollback that failed) is discarded, not reused.
   */
  async function withConnection<T>(fn: (conn: PoolClient, lost: (e: Error) => void) => Promise<T>): Promise<T> {
    if (closed) throw new StrataError("internal", "CLIENT_CLOSED", "the Neon client is closed");
    let conn: PoolClient;
    try {
      conn = await pool.connect();
    } catch (e) {
      throw neonError(e);
    }
    let broken: Error | undefined;
    try {
      return await fn(conn, (e) => (broken = e));
    } finally {
      conn.release(broken);
    }
  }

  /** One statement on a session, its failure as a StrataError. */
  async function run(conn: PoolClient, lost: (e: Error) => void, text: string, params?: unknown[]) {
    try {
      return await conn.query(text, params);
    } catch (e) {
      if (!hasSqlState(e)) lost(e as Error);
      throw neonError(e);
    }
  }

  async function queryWebSocket<T>(text: string, params: unknown[] = []): Promise<T[]> {
    return withConnection(async (conn, lost) => (await run(conn, lost, text, params)).rows as T[]);
  }

  async function queryHttp<T>(text: string, params: unknown[] = []): Promise<T[]> {
    if (closed) throw new StrataError("internal", "CLIENT_CLOSED", "the Neon client is closed");
    try {
      return (await http.query(text, params)) as T[];
    } catch (e) {
      throw neonError(e);
    }
  }

  const client: NeonSqlClient = {
    driver: DRIVER,

    query<T>(text: string, params: unknown[] = []) {
      const warm = transport === "websocket" || (transport === "auto" && pool.idleCount > 0);
      return warm ? queryWebSocket<T>(text, params) : queryHttp<T>(text, params);
    },

    queryHttp,
    queryWebSocket,

    async exec(text: string) {
      await withConnection((conn, lost) => run(conn, lost, text));
    },

    async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      return withConnection(async (conn, lost) => {
        await run(conn, lost, "begin");
        let result: T;
        try {
          result = await fn(sessionClient(conn));
          await run(conn, lost, "commit");
        } catch (e) {
          await conn.query("rollback").catch(lost);
          throw e; // the caller's own error as it threw it; the driver's already wrapped
        }
        return result;
      });
    },

    async ping() {
      await client.query("select 1");
    },

    async close() {
      if (closed) return;
      closed = true;
      removeRoute();
      await pool.end();
    },
  };
  return client;
}
