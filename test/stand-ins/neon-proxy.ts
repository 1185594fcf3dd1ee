// A local stand-in for one Neon endpoint, in front of a real Postgres, speaking the two
// protocols @neondatabase/serverless speaks:
//
// - WebSocket (Pool/Client): the driver opens `ws://<wsProxy>?address=<host>:<port>` and
//   sends the Postgres wire protocol in binary frames; each connection is piped to a TCP
//   connection to Postgres. Like Neon's wsproxy it honours `address`, but only for the one
//   Postgres it fronts, so it is not an open relay.
// - HTTP (`neon()`): POST `/sql` with `{ query, params }` (or `{ queries: [...] }` for a
//   transaction), the connection string in `Neon-Connection-String`, and always
//   `Neon-Raw-Text-Output: true` and `Neon-Array-Mode: true`. The answer is
//   `{ fields, command, rowCount, rows, rowAsArray }` (or `{ results: [...] }`) with every value
//   as Postgres's text output, so the driver's own type parsers apply. A Postgres error is
//   status 400 with `{ message, code, ... }`, which the driver turns into a NeonDbError.
//   Statements run through `pg` with raw-string types and the extended protocol (one
//   statement per query, as on Neon), on a pool per role and database (Neon keeps such
//   connections warm too).

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { readBody } from "./read-body.ts";

export interface NeonStandIn {
  /** For the driver's `wsProxy`: host:port/path, no scheme (plain ws://). */
  wsProxyHost: string;
  /** For the driver's `fetchEndpoint`: the full http:// URL of `/sql`. */
  fetchEndpoint: string;
  /** The Postgres this stand-in fronts, as the driver should be given it. */
  connectionString: string;
  close(): Promise<void>;
}

const WS_PATH = "/v2";
// Postgres's text output, untouched: the driver parses it.
const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;
const ISOLATION: Record<string, string> = {
  ReadUncommitted: "read uncommitted",
  ReadCommitted: "read committed",
  RepeatableRead: "repeatable read",
  Serializable: "serializable",
};
// What Neon sends back of a Postgres error (the driver's `errorFields`).
const ERROR_FIELDS = [
  "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;
const MAX_BUFFERED = 1 << 20;

interface SqlQuery {
  query: string;
  params?: unknown[];
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function isQuery(v: unknown): v is SqlQuery {
  const q = v as SqlQuery;
  return typeof v === "object" && v !== null && typeof q.query === "string" && (q.params === undefined || Array.isArray(q.params));
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export async function startNeonStandIn(options: { postgresUrl: string }): Promise<NeonStandIn> {
  const target = new URL(options.postgresUrl);
  if (target.protocol !== "postgres:" && target.protocol !== "postgresql:") {
    throw new Error(`postgresUrl must be a postgres:// URL, got ${options.postgresUrl}`);
  }
  const pgHost = target.hostname;
  const pgPort = Number(target.port || 5432);
  const allowedAddress = `${pgHost}:${pgPort}`;

  const pools = new Map<string, pg.Pool>();
  const tunnels = new Set<{ ws: WebSocket; tcp: Socket }>();

  /** The pool for the role and database a request's connection string names. */
  function poolFor(connectionString: string): pg.Pool {
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      throw new HttpError(400, "Neon-Connection-String is not a valid URL");
    }
    const address = `${url.hostname}:${Number(url.port || 5432)}`;
    if (address !== allowedAddress) throw new HttpError(400, `this endpoint serves ${allowedAddress}, not ${address}`);
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    const database = decodeURIComponent(url.pathname.slice(1));
    if (!user || !database) throw new HttpError(400, "Neon-Connection-String needs a user and a database");
    const key = JSON.stringify([user, password, database]);
    let pool = pools.get(key);
    if (!pool) {
      pool = new pg.Pool({
        host: pgHost,
        port: pgPort,
        user,
        password: password || undefined,
        database,
        application_name: url.searchParams.get("application_name") ?? "neon-stand-in",
        max: 10,
      });
      pool.on("error", () => {}); // an idle connection dropped: the pool replaces it
      pools.set(key, pool);
    }
    return pool;
  }

  async function run(client: pg.PoolClient, q: SqlQuery, arrayMode: boolean) {
    const res = await client.query({
      text: q.query,
      values: q.params ?? [],
      rowMode: "array",
      types: RAW_TEXT,
      queryMode: "extended",
    } as pg.QueryArrayConfig);
    const fields = res.fields.map((f) => ({
      name: f.name,
      dataTypeID: f.dataTypeID,
      tableID: f.tableID,
      columnID: f.columnID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: "text",
    }));
    const rows = arrayMode ? res.rows : res.rows.map((r) => Object.fromEntries(fields.map((f, i) => [f.name, r[i]])));
    return { fields, command: res.command, rowCount: res.rowCount, rows, rowAsArray: arrayMode };
  }

  async function handleSql(req: IncomingMessage): Promise<unknown> {
    if (req.method !== "POST") throw new HttpError(405, "POST only");
    const connectionString = req.headers["neon-connection-string"];
    if (typeof connectionString !== "string") throw new HttpError(400, "missing Neon-Connection-String header");
    if (req.headers["neon-raw-text-output"] !== "true") throw new HttpError(400, "this stand-in answers with raw text output only");
    const arrayMode = req.headers["neon-array-mode"] === "true";
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      throw new HttpError(400, "request body is not JSON");
    }
    const pool = poolFor(connectionString);
    const batch = (body as { queries?: unknown }).queries;

    if (batch === undefined) {
      if (!isQuery(body)) throw new HttpError(400, "body must be { query, params } or { queries: [...] }");
      const client = await pool.connect();
      try {
        return await run(client, body, arrayMode);
      } finally {
        client.release();
      }
    }

    if (!Array.isArray(batch) || !batch.every(isQuery)) throw new HttpError(400, "queries must be a list of { query, params }");
    let begin = "begin";
    const isolation = req.headers["neon-batch-isolation-level"];
    if (typeof isolation === "string") {
      const level = ISOLATION[isolation];
      if (!level) throw new HttpError(400, `unknown Neon-Batch-Isolation-Level ${isolation}`);
      begin += ` isolation level ${level}`;
    }
    if (req.headers["neon-batch-read-only"] === "true") begin += " read only";
    if (req.headers["neon-batch-deferrable"] === "true") begin += " deferrable";
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const results = [];
      for (const q of batch) results.push(await run(client, q, arrayMode));
      await client.query("commit");
      return { results };
    } catch (e) {
      await client.query("rollback").catch((r: Error) => (broken = r));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  function answer(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://stand-in").pathname;
    if (path !== "/sql") return answer(res, 404, { message: `no route ${path}` });
    handleSql(req).then(
      (body) => answer(res, 200, body),
      (e: unknown) => {
        if (e instanceof HttpError) return answer(res, e.status, { message: e.message });
        if (e instanceof pg.DatabaseError) {
          const out: Record<string, unknown> = { message: e.message };
          for (const f of ERROR_FIELDS) if (e[f] !== undefined) out[f] = e[f];
          return answer(res, 400, out);
        }
        answer(res, 500, { message: e instanceof Error ? e.message : String(e) });
      },
    );
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const address = url.searchParams.get("address");
    if (url.pathname !== WS_PATH || address !== allowedAddress) {
      socket.end(`HTTP/1.1 ${url.pathname !== WS_PATH ? "404 Not Found" : "403 Forbidden"}\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tcp = connect(pgPort, pgHost);
      tcp.setNoDelay(true);
      const tunnel = { ws, tcp };
      tunnels.add(tunnel);
      // Backpressure both ways: a slow side pauses the other.
      ws.on("message", (data) => {
        if (!tcp.write(toBuffer(data))) ws.pause();
      });
      tcp.on("drain", () => ws.resume());
      tcp.on("data", (chunk) => {
        ws.send(chunk, { binary: true }, () => {
          if (tcp.isPaused() && ws.bufferedAmount < MAX_BUFFERED) tcp.resume();
        });
        if (ws.bufferedAmount >= MAX_BUFFERED) tcp.pause();
      });
      const done = () => {
        tunnels.delete(tunnel);
        tcp.destroy();
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
      };
      tcp.on("close", done);
      tcp.on("error", done);
      ws.on("close", done);
      ws.on("error", done);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const connectionString = new URL(options.postgresUrl);
  connectionString.protocol = "postgresql:";

  return {
    wsProxyHost: `127.0.0.1:${port}${WS_PATH}`,
    fetchEndpoint: `http://127.0.0.1:${port}/sql`,
    connectionString: connectionString.href,
    async close() {
      for (const { ws, tcp } of tunnels) {
        tcp.destroy();
        ws.terminate();
      }
      tunnels.clear();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...pools.values()].map((p) => p.end()));
      pools.clear();
    },
  };
}
