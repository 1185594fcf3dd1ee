// Neo4j for tests, as far as a scripted server can stand in for it: a TCP server on
// 127.0.0.1 that speaks enough Bolt 5.x for neo4j-driver to connect, authenticate, run
// queries in auto-commit and explicit transactions, and read routing tables.
//
// It never parses Cypher. Each RUN is matched against a script (regex or predicate, first
// match wins) that says which fields and records to return, or which FAILURE to send; a
// query no entry matches gets a FAILURE, so an unexpected statement fails the test instead
// of passing silently. Everything received is kept (`received`, `transactions`, `messages`)
// so a test can assert the query text and parameters an adapter sent.
//
// Wire format (Bolt handshake and message specification, checked against the installed
// neo4j-driver-bolt-connection): the client opens with the magic 60 60 B0 17 and four
// 4-byte version proposals [reserved, range, minor, major]; the server answers with the
// one version it picked. neo4j-driver 6 proposes 255.1 (the handshake manifest), 5.8 down
// to 5.0, 4.4 down to 4.2, and 3.0; this stub ignores the manifest and picks a 5.x from
// 5.1 (the first with LOGON) to 5.8. After that, each message is a PackStream structure
// split into chunks (u16 size + bytes) and closed by an empty chunk.
//
// PackStream integers decode to bigint and floats to number, exactly as the wire carries
// them, so a test can tell `LIMIT 10` sent as an integer (10n) from one sent as 10.0. For
// replies, a bigint encodes as an integer (the driver reads it back as a neo4j Integer) and
// a number as a float, the same rule the driver applies to parameters.

import { createServer, type Server, type Socket } from "node:net";

// ---------------------------------------------------------------------------------------
// PackStream v1

/** A PackStream structure other than the message envelopes (nodes, dates, ...). */
export class BoltStruct {
  readonly signature: number;
  readonly fields: unknown[];
  constructor(signature: number, fields: unknown[]) {
    this.signature = signature;
    this.fields = fields;
  }
}

class Writer {
  private readonly parts: Buffer[] = [];

  byte(b: number): void {
    this.parts.push(Buffer.from([b & 0xff]));
  }

  raw(b: Buffer): void {
    this.parts.push(b);
  }

  sized(small: number, markers: [number, number, number], size: number, tinyLimit = 16): void {
    if (size < tinyLimit) this.byte(small | size);
    else if (size < 0x100) this.raw(Buffer.from([markers[0], size]));
    else if (size < 0x10000) {
      const b = Buffer.alloc(3);
      b[0] = markers[1];
      b.writeUInt16BE(size, 1);
      this.raw(b);
    } else {
      const b = Buffer.alloc(5);
      b[0] = markers[2];
      b.writeUInt32BE(size, 1);
      this.raw(b);
    }
  }

  value(v: unknown): void {
    if (v === null || v === undefined) return this.byte(0xc0);
    if (v === true) return this.byte(0xc3);
    if (v === false) return this.byte(0xc2);
    if (typeof v === "bigint") return this.int(v);
    if (typeof v === "number") {
      const b = Buffer.alloc(9);
      b[0] = 0xc1;
      b.writeDoubleBE(v, 1);
      return this.raw(b);
    }
    if (typeof v === "string") {
      const bytes = Buffer.from(v, "utf8");
      this.sized(0x80, [0xd0, 0xd1, 0xd2], bytes.length);
      return this.raw(bytes);
    }
    if (v instanceof Uint8Array) {
      this.sized(0, [0xcc, 0xcd, 0xce], v.length, 0);
      return this.raw(Buffer.from(v));
    }
    if (Array.isArray(v)) {
      this.sized(0x90, [0xd4, 0xd5, 0xd6], v.length);
      for (const item of v) this.value(item);
      return;
    }
    if (v instanceof BoltStruct) {
      if (v.fields.length >= 16) throw new Error("bolt stub: structures take at most 15 fields");
      this.byte(0xb0 | v.fields.length);
      this.byte(v.signature);
      for (const f of v.fields) this.value(f);
      return;
    }
    if (typeof v === "object") {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      this.sized(0xa0, [0xd8, 0xd9, 0xda], entries.length);
      for (const [k, x] of entries) {
        this.value(k);
        this.value(x);
      }
      return;
    }
    throw new Error(`bolt stub: cannot encode ${typeof v}`);
  }

  private int(v: bigint): void {
    if (v >= -16n && v < 128n) return this.byte(Number(v));
    if (v >= -128n && v < 128n) return this.raw(Buffer.from([0xc8, Number(v) & 0xff]));
    if (v >= -32768n && v < 32768n) {
      const b = Buffer.alloc(3);
      b[0] = 0xc9;
      b.writeInt16BE(Number(v), 1);
      return this.raw(b);
    }
    if (v >= -2147483648n && v < 2147483648n) {
      const b = Buffer.alloc(5);
      b[0] = 0xca;
      b.writeInt32BE(Number(v), 1);
      return this.raw(b);
    }
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeBigInt64BE(v, 1);
    this.raw(b);
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** PackStream bytes of one value. */
export function packValue(v: unknown): Buffer {
  const w = new Writer();
  w.value(v);
  return w.done();
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private u8(): number {
    if (this.pos >= this.buf.length) throw new Error("bolt stub: truncated PackStream value");
    return this.buf[this.pos++]!;
  }

  private take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new Error("bolt stub: truncated PackStream value");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private size(marker: number, m8: number, m16: number, m32: number): number | null {
    if (marker === m8) return this.u8();
    if (marker === m16) return this.take(2).readUInt16BE(0);
    if (marker === m32) return this.take(4).readUInt32BE(0);
    return null;
  }

  value(): unknown {
    const m = this.u8();
    const high = m & 0xf0;
    const low = m & 0x0f;
    if (m < 0x80) return BigInt(m);
    if (m >= 0xf0) return BigInt(m - 0x100);
    if (high === 0x80) return this.take(low).toString("utf8");
    if (high === 0x90) return this.list(low);
    if (high === 0xa0) return this.map(low);
    if (high === 0xb0) return this.struct(low);
    switch (m) {
      case 0xc0:
        return null;
      case 0xc1:
        return this.take(8).readDoubleBE(0);
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc8:
        return BigInt(this.take(1).readInt8(0));
      case 0xc9:
        return BigInt(this.take(2).readInt16BE(0));
      case 0xca:
        return BigInt(this.take(4).readInt32BE(0));
      case 0xcb:
        return this.take(8).readBigInt64BE(0);
      case 0xdc:
        return this.struct(this.u8());
      case 0xdd:
        return this.struct(this.take(2).readUInt16BE(0));
    }
    const bytes = this.size(m, 0xcc, 0xcd, 0xce);
    if (bytes !== null) return new Uint8Array(this.take(bytes));
    const str = this.size(m, 0xd0, 0xd1, 0xd2);
    if (str !== null) return this.take(str).toString("utf8");
    const list = this.size(m, 0xd4, 0xd5, 0xd6);
    if (list !== null) return this.list(list);
    const map = this.size(m, 0xd8, 0xd9, 0xda);
    if (map !== null) return this.map(map);
    throw new Error(`bolt stub: unknown PackStream marker 0x${m.toString(16)}`);
  }

  private list(n: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(this.value());
    return out;
  }

  private map(n: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = this.value();
      if (typeof k !== "string") throw new Error("bolt stub: map key is not a string");
      out[k] = this.value();
    }
    return out;
  }

  private struct(n: number): BoltStruct {
    const signature = this.u8();
    return new BoltStruct(signature, this.list(n));
  }
}

/** The value PackStream bytes hold (throws when they hold more or less than one). */
export function unpackValue(buf: Buffer): unknown {
  const r = new Reader(buf);
  const v = r.value();
  if (r.remaining !== 0) throw new Error("bolt stub: trailing bytes after PackStream value");
  return v;
}

// ---------------------------------------------------------------------------------------
// Messages

const REQUEST: Record<number, string> = {
  0x01: "HELLO",
  0x02: "GOODBYE",
  0x0f: "RESET",
  0x10: "RUN",
  0x11: "BEGIN",
  0x12: "COMMIT",
  0x13: "ROLLBACK",
  0x2f: "DISCARD",
  0x3f: "PULL",
  0x54: "TELEMETRY",
  0x66: "ROUTE",
  0x6a: "LOGON",
  0x6b: "LOGOFF",
};
const SUCCESS = 0x70;
const RECORD = 0x71;
const IGNORED = 0x7e;
const FAILURE = 0x7f;

const MAX_CHUNK = 0xffff;

/** One message as the wire carries it: chunks of at most 64 KiB, then the empty chunk. */
function frame(signature: number, fields: unknown[]): Buffer {
  const body = packValue(new BoltStruct(signature, fields));
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += MAX_CHUNK) {
    const chunk = body.subarray(at, Math.min(at + MAX_CHUNK, body.length));
    const header = Buffer.alloc(2);
    header.writeUInt16BE(chunk.length, 0);
    parts.push(header, chunk);
  }
  parts.push(Buffer.from([0, 0]));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------
// Script and records

export interface ReceivedQuery {
  query: string;
  parameters: Record<string, unknown>;
  /** The RUN's own metadata (auto-commit: db, mode, bookmarks, ...). */
  metadata: Record<string, unknown>;
  /** Id of the explicit transaction (see `transactions`) the query ran in; null in auto-commit. */
  transaction: number | null;
  /** Which connection (1-based, in order of connecting) sent it. */
  connection: number;
}

export interface ReceivedTransaction {
  id: number;
  connection: number;
  /** BEGIN's metadata: db, mode ("r" for reads; absent for writes), bookmarks, tx_timeout, ... */
  metadata: Record<string, unknown>;
  /** How it ended; null while open. RESET covers a connection reset or a failure cleared by RESET. */
  end: "COMMIT" | "ROLLBACK" | "RESET" | "CLOSED" | null;
}

export interface ReceivedMessage {
  connection: number;
  type: string;
  fields: unknown[];
}

export interface ScriptedFailure {
  /** A Neo4j status code, e.g. "Neo.ClientError.Statement.SyntaxError". */
  code: string;
  message: string;
  /** GQL status sent to Bolt 5.7+ clients (defaults to 50N42, "unexpected error"). */
  gqlStatus?: string;
}

export interface ScriptedReply {
  fields?: string[];
  /** Rows in `fields` order. */
  records?: unknown[][];
  /** Answer the RUN with this FAILURE instead. */
  failure?: ScriptedFailure;
  /** Extra entries for the SUCCESS that ends the stream (e.g. `stats`). */
  summary?: Record<string, unknown>;
}

export interface ScriptEntry {
  match: RegExp | ((q: ReceivedQuery) => boolean);
  reply: ScriptedReply | ((q: ReceivedQuery) => ScriptedReply);
}

export interface BoltStubOptions {
  /** Pin the Bolt version to negotiate, e.g. "5.4" (5.1 to 5.8); default: the highest the client proposes. */
  version?: string;
  /** Server agent in HELLO's SUCCESS. */
  agent?: string;
  /** Accept LOGON only with these credentials (scheme "basic"); any credentials otherwise. */
  auth?: { username: string; password: string };
}

export interface BoltStub {
  /** bolt://127.0.0.1:PORT */
  uri: string;
  port: number;
  /** Read on every RUN, so a test may replace or extend it between queries. */
  script: ScriptEntry[];
  /** Every RUN, in arrival order. */
  received: ReceivedQuery[];
  /** Every explicit transaction (BEGIN), in order. */
  transactions: ReceivedTransaction[];
  /** Every request message, in arrival order. */
  messages: ReceivedMessage[];
  /** The Bolt version negotiated on the last connection, e.g. "5.8". */
  readonly negotiated: string | null;
  /** Forgets what was received (not the script). */
  clear(): void;
  close(): Promise<void>;
}

const SUPPORTED = new Set(["5.1", "5.2", "5.3", "5.4", "5.5", "5.6", "5.7", "5.8"]);

function pickVersion(proposals: Buffer, pinned: string | undefined): [number, number] | null {
  const offered: [number, number][] = [];
  for (let i = 0; i < 4; i++) {
    const range = proposals[i * 4 + 1]!;
    const minor = proposals[i * 4 + 2]!;
    const major = proposals[i * 4 + 3]!;
    if (major === 255) continue; // handshake manifest: not spoken here, so fall back to the plain proposals
    for (let m = minor; m >= Math.max(0, minor - range); m--) offered.push([major, m]);
  }
  const ok = offered.filter(([ma, mi]) => SUPPORTED.has(`${ma}.${mi}`) && (pinned === undefined || pinned === `${ma}.${mi}`));
  ok.sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  return ok[0] ?? null;
}

function int(n: number): bigint {
  return BigInt(n);
}

function toRecordMap(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof BoltStruct) ? (v as Record<string, unknown>) : {};
}

// ---------------------------------------------------------------------------------------
// Server

interface Stream {
  records: unknown[][];
  summary: Record<string, unknown>;
}

/** Starts a scripted Bolt server on 127.0.0.1 (an ephemeral port). */
export async function startBoltStub(script: ScriptEntry[] = [], options: BoltStubOptions = {}): Promise<BoltStub> {
  if (options.version !== undefined && !SUPPORTED.has(options.version)) {
    throw new Error(`bolt stub: version ${options.version} is not one of ${[...SUPPORTED].join(", ")}`);
  }
  const agent = options.agent ?? "Neo4j/5.26.0";
  const sockets = new Set<Socket>();
  let connections = 0;
  let bookmarks = 0;
  let negotiated: string | null = null;

  const stub: BoltStub = {
    uri: "",
    port: 0,
    script,
    received: [],
    transactions: [],
    messages: [],
    get negotiated() {
      return negotiated;
    },
    clear() {
      stub.received.length = 0;
      stub.transactions.length = 0;
      stub.messages.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  function serve(socket: Socket): void {
    const connection = ++connections;
    const connectionId = `bolt-${connection}`;
    let minor = 0;
    let pending: Buffer = Buffer.alloc(0);
    let handshaken = false;
    let message: Buffer[] = [];
    let failed = false; // Bolt's FAILED state: everything but RESET is IGNORED
    let tx: ReceivedTransaction | null = null;
    let stream: Stream | null = null;

    const send = (signature: number, fields: unknown[]) => {
      if (!socket.destroyed) socket.write(frame(signature, fields));
    };
    const success = (metadata: Record<string, unknown> = {}) => send(SUCCESS, [metadata]);
    const failure = (f: ScriptedFailure) => {
      failed = true;
      stream = null;
      const metadata: Record<string, unknown> =
        minor >= 7
          ? {
              neo4j_code: f.code,
              message: f.message,
              gql_status: f.gqlStatus ?? "50N42",
              description: `error: general processing exception - unexpected error. ${f.message}`,
              diagnostic_record: { OPERATION: "", OPERATION_CODE: "0", CURRENT_SCHEMA: "/" },
            }
          : { code: f.code, message: f.message };
      send(FAILURE, [metadata]);
    };
    const endTx = (end: ReceivedTransaction["end"]) => {
      if (tx) tx.end = end;
      tx = null;
    };
    const nextBookmark = () => `stub:bookmark:${++bookmarks}`;

    function run(fields: unknown[]): void {
      const q: ReceivedQuery = {
        query: typeof fields[0] === "string" ? fields[0] : "",
        parameters: toRecordMap(fields[1]),
        metadata: toRecordMap(fields[2]),
        transaction: tx?.id ?? null,
        connection,
      };
      stub.received.push(q);
      const entry = stub.script.find((e) => (e.match instanceof RegExp ? e.match.test(q.query) : e.match(q)));
      if (!entry) {
        failure({
          code: "Neo.ClientError.Statement.SyntaxError",
          message: `bolt stub: no script entry matches ${JSON.stringify(q.query.slice(0, 120))}`,
        });
        return;
      }
      let reply: ScriptedReply;
      try {
        reply = typeof entry.reply === "function" ? entry.reply(q) : entry.reply;
      } catch (e) {
        failure({ code: "Neo.DatabaseError.General.UnknownError", message: `bolt stub: script threw: ${String(e)}` });
        return;
      }
      if (reply.failure) {
        failure(reply.failure);
        return;
      }
      const columns = reply.fields ?? [];
      const records = reply.records ?? [];
      for (const r of records) {
        if (r.length !== columns.length) {
          failure({ code: "Neo.DatabaseError.General.UnknownError", message: `bolt stub: record has ${r.length} values for ${columns.length} fields` });
          return;
        }
      }
      stream = { records: [...records], summary: { type: "rw", ...reply.summary } };
      success({ fields: columns, t_first: int(0), ...(tx ? { qid: int(0) } : {}) });
    }

    function pull(fields: unknown[], discard: boolean): void {
      if (!stream) {
        failure({ code: "Neo.ClientError.Request.Invalid", message: "bolt stub: PULL/DISCARD without an open result" });
        return;
      }
      const n = Number(toRecordMap(fields[0]).n ?? -1n);
      const take = n < 0 ? stream.records.length : Math.min(n, stream.records.length);
      const batch = stream.records.splice(0, take);
      if (!discard) for (const r of batch) send(RECORD, [r]);
      if (stream.records.length > 0) {
        success({ has_more: true });
        return;
      }
      const summary: Record<string, unknown> = { ...stream.summary, t_last: int(0), db: tx?.metadata.db ?? "neo4j" };
      if (!tx) summary.bookmark = nextBookmark();
      stream = null;
      success(summary);
    }

    function handle(signature: number, fields: unknown[]): void {
      const type = REQUEST[signature] ?? `UNKNOWN(0x${signature.toString(16)})`;
      stub.messages.push({ connection, type, fields });
      if (type === "GOODBYE") {
        endTx("CLOSED");
        socket.end();
        return;
      }
      if (type === "RESET") {
        failed = false;
        stream = null;
        endTx("RESET");
        success();
        return;
      }
      if (failed) {
        send(IGNORED, []);
        return;
      }
      switch (type) {
        case "HELLO":
          success({ server: agent, connection_id: connectionId, hints: {} });
          return;
        case "LOGON": {
          const token = toRecordMap(fields[0]);
          if (options.auth && (token.scheme !== "basic" || token.principal !== options.auth.username || token.credentials !== options.auth.password)) {
            failure({ code: "Neo.ClientError.Security.Unauthorized", message: "The client is unauthorized due to authentication failure." });
            return;
          }
          success();
          return;
        }
        case "LOGOFF":
        case "TELEMETRY":
          success();
          return;
        case "BEGIN":
          tx = { id: stub.transactions.length + 1, connection, metadata: toRecordMap(fields[0]), end: null };
          stub.transactions.push(tx);
          success();
          return;
        case "RUN":
          run(fields);
          return;
        case "PULL":
          pull(fields, false);
          return;
        case "DISCARD":
          pull(fields, true);
          return;
        case "COMMIT":
          endTx("COMMIT");
          success({ bookmark: nextBookmark() });
          return;
        case "ROLLBACK":
          endTx("ROLLBACK");
          success();
          return;
        case "ROUTE": {
          const db = toRecordMap(fields[2]).db ?? "neo4j";
          const self = [`127.0.0.1:${stub.port}`];
          success({
            rt: {
              ttl: int(300),
              db,
              servers: [
                { addresses: self, role: "ROUTE" },
                { addresses: self, role: "READ" },
                { addresses: self, role: "WRITE" },
              ],
            },
          });
          return;
        }
        default:
          failure({ code: "Neo.ClientError.Request.Invalid", message: `bolt stub: unsupported message ${type}` });
      }
    }

    function onData(data: Buffer): void {
      pending = pending.length ? Buffer.concat([pending, data]) : data;
      if (!handshaken) {
        if (pending.length < 20) return;
        if (pending.readUInt32BE(0) !== 0x6060b017) {
          socket.destroy();
          return;
        }
        const version = pickVersion(pending.subarray(4, 20), options.version);
        pending = pending.subarray(20);
        if (!version) {
          socket.end(Buffer.alloc(4));
          return;
        }
        [, minor] = version;
        negotiated = `${version[0]}.${version[1]}`;
        socket.write(Buffer.from([0, 0, version[1], version[0]]));
        handshaken = true;
      }
      for (;;) {
        if (pending.length < 2) return;
        const size = pending.readUInt16BE(0);
        if (pending.length < 2 + size) return;
        const chunk = pending.subarray(2, 2 + size);
        pending = pending.subarray(2 + size);
        if (size > 0) {
          message.push(chunk);
          continue;
        }
        if (message.length === 0) continue; // a NOOP keep-alive chunk
        const body = Buffer.concat(message);
        message = [];
        let decoded: unknown;
        try {
          decoded = unpackValue(body);
        } catch {
          socket.destroy();
          return;
        }
        if (!(decoded instanceof BoltStruct)) {
          socket.destroy();
          return;
        }
        handle(decoded.signature, decoded.fields);
      }
    }

    sockets.add(socket);
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      sockets.delete(socket);
      if (tx && tx.end === null) tx.end = "CLOSED";
    });
  }

  const server: Server = createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("bolt stub: no TCP address");
  stub.port = address.port;
  stub.uri = `bolt://127.0.0.1:${address.port}`;
  return stub;
}
