// Pinecone for tests: an HTTP server on loopback that speaks the data-plane REST API of one
// dense serverless index, as @pinecone-database/pinecone 9 calls it (API version 2026-07,
// paths and JSON field names from the client's generated db_data code), and the one
// control-plane call a client makes to resolve an index host by name.
//
// POST /vectors/upsert            { vectors: [{ id, values, metadata }], namespace } -> { upsertedCount }
// POST /query                     { vector | id, topK, filter, namespace, includeValues, includeMetadata }
//                                 -> { matches: [{ id, score, values, metadata }], namespace, usage }
// GET  /vectors/fetch             ?ids=..&ids=..&namespace=   -> { vectors: { id: record }, namespace, usage }
// POST /vectors/fetch_by_metadata { filter, limit, paginationToken, namespace } -> { vectors, pagination, namespace, usage }
// POST /vectors/delete            { ids } | { filter } | { deleteAll: true }, namespace -> {}
// GET  /vectors/list              ?prefix=&limit=&paginationToken=&namespace= -> { vectors: [{ id }], pagination?, namespace, usage }
// POST /describe_index_stats      {} -> { namespaces: { ns: { vectorCount } }, dimension, metric, totalVectorCount, ... }
// GET  /indexes/{name}            the index model, for `controllerHostUrl`: host, and the dimension and metric both
//                                 as API 2026-07 puts them (schema) and as 2024-07 did (top level, with spec)
// POST /indexes                   { name, ... } -> 409 ALREADY_EXISTS for this index's name (a client that creates
//                                 its index on every use, as @mastra/pinecone does, goes on); another name -> 501
//
// As the service does: `Api-Key` is checked on every call (401, plain text); errors are
// `{ code, message, details }` with gRPC codes; scores are exact (cosine by default); the
// metadata filter language is Pinecone's ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists,
// $and, $or, implicit equality and implicit $and); all-zero dense vectors, ids over 512
// characters, more than 1000 vectors or 2 MB in one upsert, more than 1000 ids in one delete
// or fetch, topK over 10,000 and vectors of the wrong dimension are refused with 400; list
// pages come in bitwise (UTF-8 byte) order of ids; describe_index_stats with a filter is
// refused, as serverless indexes do. Writes are visible at once: the real service is
// eventually consistent, which callers cover with the contract suite's `settle`.
//
// The index has one `dimension` when given. Without it each namespace takes the dimension of
// its first vector, as if it were its own index: the shared VectorIndex contract suite puts
// vectors of 8 and 64 dimensions in different tenants of one store.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";

export type PineconeMetric = "cosine" | "dotproduct" | "euclidean";

export interface PineconeServerOptions {
  /** The key every request must carry in `Api-Key`; random when omitted (see `apiKey` on the result). */
  apiKey?: string;
  /** Dimension of the index; when omitted, each namespace takes the dimension of its first vector. */
  dimension?: number;
  /** Similarity metric of the index (cosine by default). */
  metric?: PineconeMetric;
  /** Name answered by GET /indexes/{name} (default "strata-test"). */
  indexName?: string;
  /**
   * Rows per block of a namespace's matrix, a power of two (tests make it small to cross
   * blocks); by default as many as fit 8 MB of the dimension's values, at most 4096.
   */
  blockRows?: number;
}

export interface PineconeServerStats {
  /** Requests served, by "METHOD /path" (unknown paths included). */
  requests: Record<string, number>;
  /** Every distinct X-Pinecone-Api-Version header seen. */
  apiVersions: string[];
  /** Number of vectors in each upsert request, in arrival order. */
  upsertSizes: number[];
  /** Body size in bytes of each upsert request, in arrival order. */
  upsertBytes: number[];
  /** The filters of the most recent queries (up to 500), oldest first; null for an unfiltered query. */
  queryFilters: { namespace: string; filter: unknown }[];
  /** Vectors held per namespace. */
  namespaces: Record<string, number>;
}

export interface PineconeServer {
  /** Index host to hand the client, e.g. "http://127.0.0.1:PORT". */
  host: string;
  /** Same as `host` (the stand-in convention's name); also the `controllerHostUrl` for describe_index. */
  url: string;
  apiKey: string;
  indexName: string;
  stats(): PineconeServerStats;
  close(): Promise<void>;
}

type MetadataValue = string | number | boolean | string[];
type Metadata = Record<string, MetadataValue>;

interface StoredVector {
  id: string;
  /** Its row in the namespace's matrix (Matrix). */
  row: number;
  norm: number;
  metadata: Metadata | undefined;
}

/**
 * A namespace's values by column, in blocks of rows: dimension d of row r is at d × cap + (r
 * mod rows) of block r ÷ rows, `cap` being the rows that block has room for (the last block
 * starts small and doubles up to `rows`). A query reads each of its non-zero dimensions as a
 * run of consecutive numbers per block, where a vector per object made it read one scattered
 * number of each vector's values per dimension. The benchmarks run the stand-in on the
 * server's own cores, and a query cost it 5.2 ms of CPU at 10k vectors a user of the local
 * embedder's 512 dimensions (1.25 ms this way; bench/pinecone-stand-in.ts). The sums are the
 * same numbers: each row's terms are added in the same order.
 */
class Matrix {
  readonly blocks: { data: Float32Array; cap: number }[] = [];
  /** The vector of each row. */
  readonly rows: StoredVector[] = [];
  /** Each row's norm, beside its values: a query reads them for every row, the vectors only for the best. */
  norms = new Float64Array(16);
  /**
   * The rows each recent filter passes (by the filter's JSON), in row order, for as long as the
   * rows are unchanged: Strata asks the same filter for a user's every query. Emptied by put and
   * remove.
   */
  readonly passes = new Map<string, Uint32Array>();
  readonly dimension: number;
  /** Rows per block: a power of two. */
  readonly blockRows: number;
  private readonly shift: number;
  constructor(dimension: number, blockRows: number) {
    this.dimension = dimension;
    this.blockRows = blockRows;
    this.shift = Math.log2(blockRows);
  }
  get size(): number {
    return this.rows.length;
  }
  /** Writes `values` into row `r`, making room for it when it is the next row. */
  write(r: number, values: Float32Array): void {
    const b = r >> this.shift;
    const j = r & (this.blockRows - 1);
    if (b === this.blocks.length) this.blocks.push({ data: new Float32Array(this.dimension * Math.min(16, this.blockRows)), cap: Math.min(16, this.blockRows) });
    const block = this.blocks[b]!;
    if (j >= block.cap) {
      // The last block doubles: its columns move to their new stride.
      const cap = Math.min(this.blockRows, block.cap * 2);
      const data = new Float32Array(this.dimension * cap);
      for (let d = 0; d < this.dimension; d++) data.set(block.data.subarray(d * block.cap, (d + 1) * block.cap), d * cap);
      block.data = data;
      block.cap = cap;
    }
    const { data, cap } = block;
    for (let d = 0; d < this.dimension; d++) data[d * cap + j] = values[d]!;
  }
  /** Row `r`'s values. */
  read(r: number): Float32Array {
    const { data, cap } = this.blocks[r >> this.shift]!;
    const j = r & (this.blockRows - 1);
    const out = new Float32Array(this.dimension);
    for (let d = 0; d < this.dimension; d++) out[d] = data[d * cap + j]!;
    return out;
  }
  /** Adds a row for `v`, or writes over its row when it has one. */
  put(v: StoredVector, values: Float32Array, existing: StoredVector | undefined): void {
    v.row = existing ? existing.row : this.rows.length;
    this.rows[v.row] = v;
    this.passes.clear();
    this.write(v.row, values);
    if (v.row >= this.norms.length) {
      const norms = new Float64Array(2 * this.norms.length);
      norms.set(this.norms);
      this.norms = norms;
    }
    this.norms[v.row] = v.norm;
  }
  /** Takes `v`'s row out: the last row moves into it. */
  remove(v: StoredVector): void {
    this.passes.clear();
    const last = this.rows.length - 1;
    if (v.row !== last) {
      const moved = this.rows[last]!;
      this.write(v.row, this.read(last));
      this.norms[v.row] = this.norms[last]!;
      moved.row = v.row;
      this.rows[v.row] = moved;
    }
    this.rows.pop();
    if (this.rows.length === (this.blocks.length - 1) * this.blockRows) this.blocks.pop();
  }
  /**
   * `sums` for the rows `rows` alone: the same numbers, each row's terms added in the same
   * order, read a row at a time (across the columns) instead of a column at a time.
   */
  sumsAt(q: Float32Array, at: Uint32Array, euclidean: boolean, rows: Uint32Array, out: Float64Array): void {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const { data, cap } = this.blocks[r >> this.shift]!;
      const j = r & (this.blockRows - 1);
      let s = 0;
      if (euclidean) {
        for (let d = 0; d < this.dimension; d++) s = s + (q[d]! - data[d * cap + j]!) ** 2;
      } else {
        let k = 0;
        for (; k + 4 <= at.length; k += 4) {
          s = s + q[at[k]!]! * data[at[k]! * cap + j]! + q[at[k + 1]!]! * data[at[k + 1]! * cap + j]! + q[at[k + 2]!]! * data[at[k + 2]! * cap + j]! + q[at[k + 3]!]! * data[at[k + 3]! * cap + j]!;
        }
        for (; k < at.length; k++) s = s + q[at[k]!]! * data[at[k]! * cap + j]!;
      }
      out[r] = s;
    }
  }
  /**
   * Per row, the dot product of the query with its values over `at` (the query's dimensions
   * to read, in order), or for "euclidean" the squared distance over every dimension.
   */
  sums(q: Float32Array, at: Uint32Array, euclidean: boolean, out: Float64Array): void {
    out.fill(0, 0, this.rows.length);
    for (let b = 0; b < this.blocks.length; b++) {
      const { data, cap } = this.blocks[b]!;
      const from = b * this.blockRows;
      const n = Math.min(this.rows.length - from, cap);
      if (euclidean) {
        for (let d = 0; d < this.dimension; d++) {
          const qd = q[d]!;
          const at0 = d * cap;
          for (let j = 0; j < n; j++) out[from + j] = out[from + j]! + (qd - data[at0 + j]!) ** 2;
        }
      } else {
        // Four dimensions a pass: each row's terms are added left to right, in the same order
        // as one dimension a pass would add them, with a quarter of the reads and writes of
        // the sums.
        let k = 0;
        for (; k + 4 <= at.length; k += 4) {
          const a0 = at[k]! * cap;
          const a1 = at[k + 1]! * cap;
          const a2 = at[k + 2]! * cap;
          const a3 = at[k + 3]! * cap;
          const q0 = q[at[k]!]!;
          const q1 = q[at[k + 1]!]!;
          const q2 = q[at[k + 2]!]!;
          const q3 = q[at[k + 3]!]!;
          for (let j = 0; j < n; j++) out[from + j] = out[from + j]! + q0 * data[a0 + j]! + q1 * data[a1 + j]! + q2 * data[a2 + j]! + q3 * data[a3 + j]!;
        }
        for (; k < at.length; k++) {
          const d = at[k]!;
          const qd = q[d]!;
          const at0 = d * cap;
          for (let j = 0; j < n; j++) out[from + j] = out[from + j]! + qd * data[at0 + j]!;
        }
      }
    }
  }
}

interface Namespace {
  vectors: Map<string, StoredVector>;
  /** The vectors' values, their norms, and the rows recent filters pass; its dimension is the namespace's. */
  matrix: Matrix;
}

const MAX_ID_LENGTH = 512;
const MAX_UPSERT_VECTORS = 1000;
const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const MAX_BODY_READ = 16 * 1024 * 1024;
const MAX_IDS = 1000;
const MAX_TOP_K = 10_000;
const MAX_METADATA_BYTES = 40 * 1024;
const MAX_IN_VALUES = 10_000;
const DEFAULT_NAMESPACE = "__default__";

/** gRPC status codes, as the service puts them in error bodies. */
const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, UNIMPLEMENTED: 12 } as const;

class HttpError extends Error {
  readonly status: number;
  readonly code: number;
  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const invalid = (message: string) => new HttpError(400, GRPC.INVALID_ARGUMENT, message);

// ---------------------------------------------------------------------------------------
// Metadata filters

type Predicate = (m: Metadata | undefined) => boolean;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

function equals(value: MetadataValue | undefined, x: string | number | boolean): boolean {
  if (value === undefined) return false;
  // A list of strings matches when any element does.
  return Array.isArray(value) ? value.includes(x as string) : value === x;
}

function fieldPredicate(field: string, spec: unknown): Predicate {
  if (isScalar(spec)) return (m) => equals(m?.[field], spec);
  if (!isPlainObject(spec)) throw invalid(`invalid filter for field "${field}": expected a value or an object of operators`);
  const ops = Object.entries(spec);
  if (ops.length === 0) throw invalid(`invalid filter for field "${field}": empty operator object`);
  const parts: Predicate[] = ops.map(([op, arg]): Predicate => {
    switch (op) {
      case "$eq":
      case "$ne": {
        if (!isScalar(arg)) throw invalid(`${op} on "${field}" needs a string, number or boolean`);
        return op === "$eq" ? (m) => equals(m?.[field], arg) : (m) => !equals(m?.[field], arg);
      }
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte": {
        if (typeof arg !== "number" || !Number.isFinite(arg)) throw invalid(`${op} on "${field}" needs a number`);
        return (m) => {
          const v = m?.[field];
          if (typeof v !== "number") return false;
          return op === "$gt" ? v > arg : op === "$gte" ? v >= arg : op === "$lt" ? v < arg : v <= arg;
        };
      }
      case "$in":
      case "$nin": {
        if (!Array.isArray(arg) || arg.some((x) => typeof x !== "string" && !(typeof x === "number" && Number.isFinite(x)))) {
          throw invalid(`${op} on "${field}" needs an array of strings or numbers`);
        }
        if (arg.length > MAX_IN_VALUES) throw invalid(`${op} on "${field}" has ${arg.length} values: at most ${MAX_IN_VALUES} are allowed`);
        const xs = arg as (string | number)[];
        const any = (m: Metadata | undefined) => xs.some((x) => equals(m?.[field], x));
        return op === "$in" ? any : (m) => !any(m);
      }
      case "$exists": {
        if (typeof arg !== "boolean") throw invalid(`$exists on "${field}" needs true or false`);
        return (m) => (m?.[field] !== undefined) === arg;
      }
      default:
        throw invalid(`unsupported filter operator ${op} on "${field}"`);
    }
  });
  return (m) => parts.every((p) => p(m));
}

/** Compiles a filter expression; throws a 400 for anything the service would refuse. */
export function compileFilter(filter: unknown): Predicate {
  if (!isPlainObject(filter)) throw invalid("filter must be an object");
  const parts: Predicate[] = Object.entries(filter).map(([key, value]): Predicate => {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`${key} needs a non-empty array of filters`);
      const subs = value.map(compileFilter);
      return key === "$and" ? (m) => subs.every((s) => s(m)) : (m) => subs.some((s) => s(m));
    }
    if (key.startsWith("$")) throw invalid(`unsupported filter operator ${key}`);
    return fieldPredicate(key, value);
  });
  return (m) => parts.every((p) => p(m));
}

// ---------------------------------------------------------------------------------------
// Request parsing

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_READ) {
        reject(new HttpError(413, GRPC.INVALID_ARGUMENT, "request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalid("request body is not valid JSON");
  }
  if (!isPlainObject(parsed)) throw invalid("request body must be a JSON object");
  return parsed;
}

function namespaceOf(value: unknown): string {
  if (value === undefined || value === null || value === "") return DEFAULT_NAMESPACE;
  if (typeof value !== "string") throw invalid("namespace must be a string");
  return value;
}

function parseValues(raw: unknown, what: string): Float32Array {
  if (!Array.isArray(raw) || raw.length === 0) throw invalid(`${what}: values must be a non-empty array of numbers`);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const x = raw[i];
    if (typeof x !== "number" || !Number.isFinite(x)) throw invalid(`${what}: values must be finite numbers`);
    out[i] = x;
  }
  return out;
}

function parseMetadata(raw: unknown, id: string): Metadata | undefined {
  if (raw === undefined) return undefined;
  if (!isPlainObject(raw)) throw invalid(`metadata of vector ${id} must be an object`);
  for (const [k, v] of Object.entries(raw)) {
    const ok = isScalar(v) || (Array.isArray(v) && v.every((x) => typeof x === "string"));
    if (!ok) throw invalid(`metadata field "${k}" of vector ${id} must be a string, number, boolean or list of strings`);
  }
  if (Buffer.byteLength(JSON.stringify(raw)) > MAX_METADATA_BYTES) {
    throw invalid(`metadata size of vector ${id} exceeds the limit of ${MAX_METADATA_BYTES} bytes`);
  }
  return raw as Metadata;
}

function normOf(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** Bitwise ("C" collation) order of ids, as list returns them. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface Scored {
  v: StoredVector;
  s: number;
}

/** Adds `c` to a heap ordered so that its root is the last by `order` (the worst kept). */
function siftUp(heap: Scored[], c: Scored, order: (a: Scored, b: Scored) => number): void {
  let i = heap.length;
  heap.push(c);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (order(heap[parent]!, c) >= 0) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = c;
}

/** Replaces the heap's root (its worst) with `c` and restores the order. */
function siftDown(heap: Scored[], c: Scored, order: (a: Scored, b: Scored) => number): void {
  const n = heap.length;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && order(heap[child + 1]!, heap[child]!) > 0) child++;
    if (order(heap[child]!, c) <= 0) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = c;
}

const encodeToken = (lastId: string) => Buffer.from(JSON.stringify({ skip_past: lastId })).toString("base64");
function decodeToken(token: string | null | undefined): string | undefined {
  if (!token) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
    if (isPlainObject(parsed) && typeof parsed.skip_past === "string") return parsed.skip_past;
  } catch {
    // falls through to the 400 below
  }
  throw invalid("invalid pagination token");
}

function parseLimit(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined || raw === null || raw === "") return fallback;
  const n = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalid(`limit must be an integer from 1 to ${max}`);
  return n;
}

// ---------------------------------------------------------------------------------------
// The server

export async function startPineconeServer(options: PineconeServerOptions = {}): Promise<PineconeServer> {
  const apiKey = options.apiKey ?? randomBytes(16).toString("hex");
  const fixedDimension = options.dimension;
  if (fixedDimension !== undefined && !(Number.isInteger(fixedDimension) && fixedDimension >= 1 && fixedDimension <= 20_000)) {
    throw new Error(`dimension must be an integer from 1 to 20000, got ${fixedDimension}`);
  }
  const metric: PineconeMetric = options.metric ?? "cosine";
  if (options.blockRows !== undefined && !(Number.isInteger(options.blockRows) && options.blockRows >= 1 && (options.blockRows & (options.blockRows - 1)) === 0)) {
    throw new Error(`blockRows must be a power of two, got ${options.blockRows}`);
  }
  const indexName = options.indexName ?? "strata-test";
  const namespaces = new Map<string, Namespace>();
  const stats: PineconeServerStats = { requests: {}, apiVersions: [], upsertSizes: [], upsertBytes: [], queryFilters: [], namespaces: {} };
  let host = "";

  /**
   * The query's non-zero dimensions, in order: a dot product over them alone adds the same
   * terms in the same order as one over every dimension (the others add zeros), so the score
   * is the same number, and a sparse query (the local hashing embedder's) costs a fraction.
   */
  const nonZero = (q: Float32Array): Uint32Array => {
    const at: number[] = [];
    for (let i = 0; i < q.length; i++) if (q[i] !== 0) at.push(i);
    return Uint32Array.from(at);
  };

  /** The score of a vector of norm `norm` whose sum (Matrix.sums) is `dot`. */
  const score = (dot: number, qNorm: number, norm: number): number => {
    if (metric !== "cosine") return dot;
    return qNorm === 0 || norm === 0 ? 0 : dot / (qNorm * norm);
  };
  // Each query's sums, one per row, kept for the next.
  let sums = new Float64Array(0);
  const blockRowsFor = (dimension: number): number => {
    if (options.blockRows !== undefined) return options.blockRows;
    let rows = 4096;
    while (rows > 1 && dimension * rows * 4 > 8 << 20) rows >>= 1;
    return rows;
  };

  /** Checks a vector's dimension against the index (or the namespace, without a fixed one). */
  function checkDimension(ns: Namespace | undefined, length: number, what: string): void {
    const expected = fixedDimension ?? ns?.matrix.dimension;
    if (expected !== undefined && expected !== length) {
      throw invalid(`${what} dimension ${length} does not match the dimension of the index ${expected}`);
    }
  }

  function record(ns: Namespace, v: StoredVector, withValues: boolean, withMetadata: boolean): Record<string, unknown> {
    return {
      id: v.id,
      values: withValues ? Array.from(ns.matrix.read(v.row)) : [],
      ...(withMetadata && v.metadata ? { metadata: v.metadata } : {}),
    };
  }

  function upsert(body: Record<string, unknown>, bytes: number): unknown {
    const vectors = body.vectors;
    if (!Array.isArray(vectors) || vectors.length === 0) throw invalid("vectors must be a non-empty array");
    if (vectors.length > MAX_UPSERT_VECTORS) throw invalid(`Batch size of ${vectors.length} exceeds the limit of ${MAX_UPSERT_VECTORS} vectors per upsert`);
    if (bytes > MAX_REQUEST_BYTES) throw invalid(`Request size ${bytes} bytes exceeds the maximum supported size of ${MAX_REQUEST_BYTES} bytes`);
    const name = namespaceOf(body.namespace);
    const existing = namespaces.get(name);
    // Validate the whole batch before writing any of it.
    const parsed: { v: StoredVector; values: Float32Array }[] = vectors.map((raw: unknown) => {
      if (!isPlainObject(raw)) throw invalid("each vector must be an object");
      const id = raw.id;
      if (typeof id !== "string" || id.length === 0) throw invalid("each vector needs a non-empty string id");
      if (id.length > MAX_ID_LENGTH) throw invalid(`Vector ID must be at most ${MAX_ID_LENGTH} characters, got ${id.length}`);
      if (raw.sparseValues !== undefined) throw invalid("sparse values are not supported by this dense index");
      const values = parseValues(raw.values, `vector ${id}`);
      const norm = normOf(values);
      if (norm === 0) throw invalid(`Dense vectors must contain at least one non-zero value. Vector ID '${id}' contains only zeros`);
      return { v: { id, row: -1, norm, metadata: parseMetadata(raw.metadata, id) }, values };
    });
    const dimension = fixedDimension ?? existing?.matrix.dimension ?? parsed[0]!.values.length;
    for (const { values } of parsed) {
      if (values.length !== dimension) throw invalid(`Vector dimension ${values.length} does not match the dimension of the index ${dimension}`);
    }
    const ns: Namespace = existing ?? { vectors: new Map<string, StoredVector>(), matrix: new Matrix(dimension, blockRowsFor(dimension)) };
    namespaces.set(name, ns);
    for (const { v, values } of parsed) {
      ns.matrix.put(v, values, ns.vectors.get(v.id));
      ns.vectors.set(v.id, v);
    }
    stats.upsertSizes.push(parsed.length);
    stats.upsertBytes.push(bytes);
    return { upsertedCount: parsed.length };
  }

  function query(body: Record<string, unknown>): unknown {
    const topK = body.topK;
    if (typeof topK !== "number" || !Number.isInteger(topK) || topK < 1) throw invalid("topK must be a positive integer");
    if (topK > MAX_TOP_K) throw invalid(`topK must be at most ${MAX_TOP_K}, got ${topK}`);
    const name = namespaceOf(body.namespace);
    const ns = namespaces.get(name);
    const filter = body.filter === undefined ? undefined : compileFilter(body.filter);
    stats.queryFilters.push({ namespace: name, filter: body.filter ?? null });
    if (stats.queryFilters.length > 500) stats.queryFilters.shift();
    let q: Float32Array;
    if (body.vector !== undefined) {
      if (body.id !== undefined) throw invalid("give either vector or id, not both");
      q = parseValues(body.vector, "query vector");
      checkDimension(ns, q.length, "Query vector");
    } else if (typeof body.id === "string") {
      const v = ns?.vectors.get(body.id);
      if (!v) return { matches: [], namespace: name, usage: { readUnits: 1 } };
      q = ns!.matrix.read(v.row);
    } else {
      throw invalid("a query needs a vector or an id");
    }
    const qNorm = normOf(q);
    const qAt = nonZero(q);
    // Every matching vector is scored; the best topK are kept in a heap whose root is the
    // worst kept (by score, then id byte order: the order a full sort gives), so the ids are
    // compared only on tied scores and nothing is sorted but what is returned.
    const better = metric === "euclidean" ? (a: number, b: number) => a - b : (a: number, b: number) => b - a;
    const order = (a: Scored, b: Scored) => better(a.s, b.s) || byteOrder(a.v.id, b.v.id);
    const kept: Scored[] = [];
    let candidates = 0;
    if (ns) {
      const { matrix } = ns;
      const n = matrix.size;
      const pass = filter ? passing(ns, body.filter, filter) : null;
      if (sums.length < n) sums = new Float64Array(Math.max(n, 2 * sums.length));
      // Rows a filter leaves out are not scored when it passes fewer than half (one user's
      // rows in a tenant's namespace, as Strata queries): the service's index does not score
      // them either, and the benchmarks run this stand-in on the server's own two cores.
      if (pass && 2 * pass.length < n) matrix.sumsAt(q, qAt, metric === "euclidean", pass, sums);
      else matrix.sums(q, qAt, metric === "euclidean", sums);
      const { norms, rows } = matrix;
      const count = pass ? pass.length : n;
      for (let i = 0; i < count; i++) {
        const r = pass ? pass[i]! : i;
        candidates++;
        const s = score(sums[r]!, qNorm, norms[r]!);
        if (kept.length < topK) siftUp(kept, { v: rows[r]!, s }, order);
        else {
          // Worse than the worst kept, by score alone: its vector is not read.
          const than = better(s, kept[0]!.s);
          if (than > 0) continue;
          const c = { v: rows[r]!, s };
          if (than < 0 || order(c, kept[0]!) < 0) siftDown(kept, c, order);
        }
      }
    }
    const matches = kept.sort(order).map(({ v, s }) => ({
      ...record(ns!, v, body.includeValues === true, body.includeMetadata === true),
      score: s,
    }));
    return { matches, namespace: name, usage: { readUnits: Math.max(1, Math.ceil(candidates / 1000)) } };
  }

  /** The rows of `ns`, in order, whose metadata `filter` (whose JSON is `raw`) passes. */
  function passing(ns: Namespace, raw: unknown, filter: Predicate): Uint32Array {
    const key = JSON.stringify(raw);
    const { rows, passes } = ns.matrix;
    let pass = passes.get(key);
    if (pass) return pass;
    const at: number[] = [];
    for (let r = 0; r < rows.length; r++) if (filter(rows[r]!.metadata)) at.push(r);
    pass = Uint32Array.from(at);
    if (passes.size >= 64) passes.clear();
    passes.set(key, pass);
    return pass;
  }

  /** Takes the vector `id` out of `ns`, if it holds it. */
  function drop(ns: Namespace, id: string): void {
    const v = ns.vectors.get(id);
    if (!v) return;
    ns.matrix.remove(v);
    ns.vectors.delete(id);
  }

  function fetchIds(url: URL): unknown {
    const ids = url.searchParams.getAll("ids");
    if (ids.length === 0) throw invalid("ids are required");
    if (ids.length > MAX_IDS) throw invalid(`at most ${MAX_IDS} ids may be fetched at once, got ${ids.length}`);
    const name = namespaceOf(url.searchParams.get("namespace"));
    const ns = namespaces.get(name);
    const vectors: Record<string, unknown> = {};
    for (const id of ids) {
      const v = ns?.vectors.get(id);
      if (v) vectors[id] = record(ns!, v, true, true);
    }
    return { vectors, namespace: name, usage: { readUnits: 1 } };
  }

  function fetchByMetadata(body: Record<string, unknown>): unknown {
    if (body.filter === undefined) throw invalid("filter is required");
    const filter = compileFilter(body.filter);
    const limit = parseLimit(body.limit, 100, 10_000);
    const after = decodeToken(body.paginationToken as string | undefined);
    const name = namespaceOf(body.namespace);
    const ns = namespaces.get(name);
    const hits = ns ? [...ns.vectors.values()].filter((v) => filter(v.metadata) && (after === undefined || byteOrder(v.id, after) > 0)) : [];
    hits.sort((a, b) => byteOrder(a.id, b.id));
    const page = hits.slice(0, limit);
    const vectors: Record<string, unknown> = {};
    for (const v of page) vectors[v.id] = record(ns!, v, true, true);
    return {
      vectors,
      namespace: name,
      ...(hits.length > limit ? { pagination: { next: encodeToken(page[page.length - 1]!.id) } } : {}),
      usage: { readUnits: 1 },
    };
  }

  function remove(body: Record<string, unknown>): unknown {
    const name = namespaceOf(body.namespace);
    const modes = [body.ids !== undefined, body.filter !== undefined, body.deleteAll === true].filter(Boolean).length;
    if (modes !== 1) throw invalid("give exactly one of ids, filter or deleteAll");
    const ns = namespaces.get(name);
    if (body.deleteAll === true) {
      // Deleting every record of a namespace deletes the namespace too.
      namespaces.delete(name);
      return {};
    }
    if (body.ids !== undefined) {
      const ids = body.ids;
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")) throw invalid("ids must be an array of strings");
      if (ids.length > MAX_IDS) throw invalid(`at most ${MAX_IDS} ids may be deleted at once, got ${ids.length}`);
      if (ns) for (const id of ids as string[]) drop(ns, id);
    } else {
      const filter = compileFilter(body.filter);
      if (ns) for (const [id, v] of ns.vectors) if (filter(v.metadata)) drop(ns, id);
    }
    if (ns && ns.vectors.size === 0) namespaces.delete(name);
    return {};
  }

  function list(url: URL): unknown {
    const name = namespaceOf(url.searchParams.get("namespace"));
    const prefix = url.searchParams.get("prefix") ?? "";
    const limit = parseLimit(url.searchParams.get("limit"), 100, 10_000);
    const after = decodeToken(url.searchParams.get("paginationToken"));
    const ns = namespaces.get(name);
    const ids = ns ? [...ns.vectors.keys()].filter((id) => id.startsWith(prefix) && (after === undefined || byteOrder(id, after) > 0)) : [];
    ids.sort(byteOrder);
    const page = ids.slice(0, limit);
    return {
      vectors: page.map((id) => ({ id })),
      ...(ids.length > limit ? { pagination: { next: encodeToken(page[page.length - 1]!) } } : {}),
      namespace: name,
      usage: { readUnits: 1 },
    };
  }

  function describeStats(body: Record<string, unknown>): unknown {
    if (body.filter !== undefined) {
      throw invalid("Serverless and starter indexes do not support describing index stats with metadata filtering.");
    }
    const summary: Record<string, { vectorCount: number }> = {};
    let total = 0;
    for (const [name, ns] of namespaces) {
      summary[name] = { vectorCount: ns.vectors.size };
      total += ns.vectors.size;
    }
    return {
      namespaces: summary,
      ...(fixedDimension !== undefined ? { dimension: fixedDimension } : {}),
      indexFullness: 0,
      totalVectorCount: total,
      metric,
      vectorType: "dense",
    };
  }

  function describeIndex(name: string): unknown {
    if (name !== indexName) throw new HttpError(404, GRPC.NOT_FOUND, `Resource ${name} not found`);
    return {
      name: indexName,
      // Pinecone answers a bare host and clients add https://; this server is plain http,
      // so it names the scheme (as pinecone-local users pass http hosts explicitly).
      host,
      status: { ready: true, state: "Ready" },
      deployment: { deployment_type: "managed", cloud: "aws", region: "us-east-1" },
      schema: { fields: { _values: { type: "dense_vector", dimension: fixedDimension ?? 0, metric } } },
      // The model of API versions before the schema (2024-07, which @pinecone-database/pinecone 3 asks).
      ...(fixedDimension !== undefined ? { dimension: fixedDimension } : {}),
      metric,
      spec: { serverless: { cloud: "aws", region: "us-east-1" } },
      deletion_protection: "disabled",
    };
  }

  /** POST /indexes: the one index this server is exists already; it makes no other. */
  function createIndex(body: Record<string, unknown>): never {
    if (typeof body.name !== "string" || body.name === "") throw invalid("name is required");
    if (body.name === indexName) throw new HttpError(409, GRPC.ALREADY_EXISTS, `Resource ${indexName} already exists`);
    throw new HttpError(501, GRPC.UNIMPLEMENTED, `this stand-in serves one index, ${indexName}; it cannot create ${body.name}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const route = `${req.method} ${url.pathname}`;
    stats.requests[route] = (stats.requests[route] ?? 0) + 1;
    const version = req.headers["x-pinecone-api-version"];
    if (typeof version === "string" && !stats.apiVersions.includes(version)) stats.apiVersions.push(version);

    if (req.headers["api-key"] !== apiKey) {
      res.writeHead(401, { "content-type": "text/plain" }).end("Unauthorized");
      return;
    }
    const body = req.method === "POST" ? await readBody(req) : Buffer.alloc(0);
    let answer: unknown;
    const indexMatch = /^\/indexes\/([^/]+)$/.exec(url.pathname);
    if (route === "POST /vectors/upsert") answer = upsert(parseJson(body), body.length);
    else if (route === "POST /query") answer = query(parseJson(body));
    else if (route === "GET /vectors/fetch") answer = fetchIds(url);
    else if (route === "POST /vectors/fetch_by_metadata") answer = fetchByMetadata(parseJson(body));
    else if (route === "POST /vectors/delete") answer = remove(parseJson(body));
    else if (route === "GET /vectors/list") answer = list(url);
    else if (route === "POST /describe_index_stats") answer = describeStats(parseJson(body));
    else if ((req.method === "GET" && indexMatch) || route === "POST /indexes") {
      try {
        answer = indexMatch ? describeIndex(decodeURIComponent(indexMatch[1]!)) : createIndex(parseJson(body));
      } catch (e) {
        // The control plane wraps its errors one level deeper than the data plane.
        if (!(e instanceof HttpError)) throw e;
        const code = Object.entries(GRPC).find(([, n]) => n === e.code)?.[0] ?? "UNKNOWN";
        res.writeHead(e.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code, message: e.message }, status: e.status }));
        return;
      }
    } else throw new HttpError(404, GRPC.UNIMPLEMENTED, `no route for ${route}`);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const code = e instanceof HttpError ? e.code : 13;
      const message = e instanceof Error ? e.message : String(e);
      if (!res.headersSent) res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ code, message, details: [] }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    host,
    url: host,
    apiKey,
    indexName,
    stats() {
      const counts: Record<string, number> = {};
      for (const [name, ns] of namespaces) counts[name] = ns.vectors.size;
      return structuredClone({ ...stats, namespaces: counts });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
