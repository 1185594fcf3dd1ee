// OpenAI embeddings for tests: an HTTP server on loopback implementing POST /v1/embeddings
// as api.openai.com does, with real, deterministic vectors from the project's local hashing
// embedder (lib/adapters/local/embedder.ts) at the model's size, or at `dimensions` when the
// request asks for it (text-embedding-3 models only, as on OpenAI; the real service
// shortens its vectors, this one hashes into fewer buckets, which keeps them meaningful).
//
// Request: { model, input: string | string[], encoding_format?: "float" | "base64", dimensions? }
// Answer:  { object: "list", data: [{ object: "embedding", index, embedding }], model, usage }
// Errors:  { error: { message, type, param, code } }, with OpenAI's statuses and wording:
//          401 without or with a wrong Bearer key, 404 for an unknown model, 400 for an empty
//          or over-long input, too many inputs, unsupported dimensions, a malformed body.
//
// Scriptable faults, each consumed by one request before anything else is checked:
// failNext(n, { status, retryAfter?, retryAfterMs?, code?, message? }) answers n requests
// with that error (429s carry `retry-after` in seconds and/or `retry-after-ms`, as OpenAI
// sends them); dropNext(n) destroys the connection without an answer; stallNext(n, ms) holds
// the answer back. setPoison(s) makes any request with an input containing s fail with the
// 400 OpenAI gives an invalid input, which does not say which input it was. stats() counts
// requests, their batch sizes and inputs.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { createLocalEmbedder } from "../../lib/adapters/local/embedder.ts";
import type { Embedder } from "../../lib/core/ports.ts";

/** An error answer to script. */
export interface Fault {
  status: number;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  /** Milliseconds, sent as `retry-after-ms`. */
  retryAfterMs?: number;
  /** Error code in the body, e.g. "insufficient_quota" for a 429. */
  code?: string;
  message?: string;
}

type Scripted = { kind: "fail"; fault: Fault } | { kind: "drop" } | { kind: "stall"; ms: number };

/** The faults queued for the next requests, shared by the embedding stand-ins. */
export class FaultScript {
  private queue: Scripted[] = [];
  failNext(count: number, fault: Fault): void {
    for (let i = 0; i < count; i++) this.queue.push({ kind: "fail", fault });
  }
  dropNext(count: number): void {
    for (let i = 0; i < count; i++) this.queue.push({ kind: "drop" });
  }
  stallNext(count: number, ms: number): void {
    for (let i = 0; i < count; i++) this.queue.push({ kind: "stall", ms });
  }
  /** The fault for this request, if one is queued. */
  take(): Scripted | undefined {
    return this.queue.shift();
  }
  clear(): void {
    this.queue = [];
  }
}

export interface EmbeddingServerStats {
  /** Requests received, faults and errors included. */
  requests: number;
  /** Inputs per request that got as far as parsing, in arrival order. */
  batchSizes: number[];
  /** Every input received, in arrival order. */
  inputs: string[];
  /** Status of every answer, in order (0 for a dropped connection). */
  statuses: number[];
}

export interface OpenAiModel {
  dimensions: number;
  /** Accepts `dimensions` (text-embedding-3 and later). */
  flexible: boolean;
}

export interface OpenAiEmbeddingsServerOptions {
  /** Key every request must carry as Bearer; random when omitted, no auth at all when null. */
  apiKey?: string | null;
  /** Models served; default text-embedding-3-small/large and ada-002 at their real sizes. */
  models?: Record<string, OpenAiModel>;
  /** Inputs per request; default 2048 (OpenAI's). */
  maxInputs?: number;
  /** Tokens per input (counted as characters / 4); default 8192. */
  maxInputTokens?: number;
  /** Order of `data` in answers; "reversed" checks that clients read `index`. */
  order?: "sent" | "reversed";
  /** Ignore `dimensions`, as some OpenAI-compatible servers do. */
  ignoreDimensions?: boolean;
}

export interface OpenAiEmbeddingsServer {
  /** The API root to hand a client, e.g. "http://127.0.0.1:PORT/v1". */
  url: string;
  apiKey: string | null;
  failNext(count: number, fault: Fault): void;
  dropNext(count: number): void;
  stallNext(count: number, ms: number): void;
  /** Inputs containing this text are refused with a 400; null turns it off. */
  setPoison(text: string | null): void;
  stats(): EmbeddingServerStats;
  /** Clears faults, poison and stats. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MODELS: Record<string, OpenAiModel> = {
  "text-embedding-3-small": { dimensions: 1536, flexible: true },
  "text-embedding-3-large": { dimensions: 3072, flexible: true },
  "text-embedding-ada-002": { dimensions: 1536, flexible: false },
};

const INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";

class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  constructor(status: number, message: string, options: { type?: string; param?: string | null; code?: string | null } = {}) {
    super(message);
    this.status = status;
    this.type = options.type ?? "invalid_request_error";
    this.param = options.param ?? null;
    this.code = options.code ?? null;
  }
}

const FAULT_TEXT: Record<number, { message: string; type: string; code: string | null }> = {
  429: {
    message: "Rate limit reached for requests per min (RPM): Limit 3000, Used 3000, Requested 1. Please try again in 20ms.",
    type: "requests",
    code: "rate_limit_exceeded",
  },
  500: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", code: null },
  503: { message: "The engine is currently overloaded, please try again later.", type: "server_error", code: null },
};

export function readBody(req: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Local hashing embedders by size, made once each. */
export function embedderCache(): (dimensions: number) => Embedder {
  const cache = new Map<number, Embedder>();
  return (dimensions) => {
    let e = cache.get(dimensions);
    if (!e) cache.set(dimensions, (e = createLocalEmbedder({ dimensions })));
    return e;
  };
}

export async function startOpenAiEmbeddingsServer(options: OpenAiEmbeddingsServerOptions = {}): Promise<OpenAiEmbeddingsServer> {
  const apiKey = options.apiKey === undefined ? `sk-test-${randomBytes(12).toString("hex")}` : options.apiKey;
  const models = options.models ?? DEFAULT_MODELS;
  const maxInputs = options.maxInputs ?? 2048;
  const maxInputTokens = options.maxInputTokens ?? 8192;
  const order = options.order ?? "sent";
  const faults = new FaultScript();
  const embedderOf = embedderCache();
  let poison: string | null = null;
  let stats: EmbeddingServerStats = { requests: 0, batchSizes: [], inputs: [], statuses: [] };

  function authorize(req: IncomingMessage): void {
    if (apiKey === null) return;
    const header = req.headers.authorization;
    if (!header) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      );
    }
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? "";
    if (given !== apiKey) {
      const shown = given.length > 8 ? `${given.slice(0, 3)}${"*".repeat(given.length - 7)}${given.slice(-4)}` : given;
      throw new ApiError(401, `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`, {
        code: "invalid_api_key",
      });
    }
  }

  async function embeddings(req: IncomingMessage): Promise<unknown> {
    const raw = await readBody(req);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    } catch {
      throw new ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      );
    }
    const inputs = typeof body.input === "string" ? [body.input] : body.input;
    if (Array.isArray(inputs) && inputs.every((x) => typeof x === "string")) {
      stats.batchSizes.push(inputs.length);
      stats.inputs.push(...(inputs as string[]));
    }
    authorize(req);
    if (typeof body.model !== "string" || !body.model) throw new ApiError(400, "you must provide a model parameter");
    const model = models[body.model];
    if (!model) {
      throw new ApiError(404, `The model \`${body.model}\` does not exist or you do not have access to it.`, { code: "model_not_found" });
    }
    if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((x) => typeof x === "string")) {
      throw new ApiError(400, INVALID_INPUT, { param: "input" });
    }
    const texts = inputs as string[];
    if (texts.length > maxInputs) throw new ApiError(400, `Too many inputs. The max number of inputs is ${maxInputs}.`, { param: "input" });
    if (texts.some((t) => t === "")) throw new ApiError(400, INVALID_INPUT, { param: "input" });
    if (poison !== null && texts.some((t) => t.includes(poison!))) throw new ApiError(400, INVALID_INPUT, { param: "input" });
    for (const t of texts) {
      const tokens = Math.ceil(t.length / 4);
      if (tokens > maxInputTokens) {
        throw new ApiError(
          400,
          `This model's maximum context length is ${maxInputTokens} tokens, however you requested ${tokens} tokens (${tokens} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
        );
      }
    }
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") {
      throw new ApiError(400, `Invalid value for 'encoding_format': '${String(format)}'. Supported values are: 'float' and 'base64'.`, {
        param: "encoding_format",
      });
    }
    let size = model.dimensions;
    if (body.dimensions !== undefined && body.dimensions !== null && !options.ignoreDimensions) {
      if (!model.flexible) throw new ApiError(400, "This model does not support specifying dimensions.", { param: "dimensions" });
      const d = body.dimensions;
      if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > model.dimensions) {
        throw new ApiError(400, `Invalid value for 'dimensions' = ${String(d)}. Must be an integer from 1 to ${model.dimensions}.`, { param: "dimensions" });
      }
      // The hashing embedder needs 8 buckets at least; below that, take the first d of 8.
      size = d;
    }
    const vectors = await embedderOf(Math.max(8, size)).embed(texts);
    const data = vectors.map((v, index) => {
      const cut = v.length === size ? v : renormalised(v.subarray(0, size));
      const embedding = format === "base64" ? Buffer.from(cut.buffer, cut.byteOffset, cut.byteLength).toString("base64") : Array.from(cut);
      return { object: "embedding", index, embedding };
    });
    if (order === "reversed") data.reverse();
    const tokens = texts.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
    return { object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  }

  function sendError(res: ServerResponse, e: ApiError, headers: Record<string, string> = {}): void {
    stats.statuses.push(e.status);
    res.writeHead(e.status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const scripted = faults.take();
    if (scripted?.kind === "drop") {
      stats.statuses.push(0);
      req.socket.destroy();
      return;
    }
    if (scripted?.kind === "stall") await new Promise((r) => setTimeout(r, scripted.ms));
    if (res.destroyed) return;
    if (scripted?.kind === "fail") {
      await readBody(req).catch(() => Buffer.alloc(0));
      const f = scripted.fault;
      const text = FAULT_TEXT[f.status] ?? { message: `Error ${f.status}`, type: f.status >= 500 ? "server_error" : "invalid_request_error", code: null };
      const headers: Record<string, string> = {};
      if (f.retryAfter !== undefined) headers["retry-after"] = String(f.retryAfter);
      if (f.retryAfterMs !== undefined) headers["retry-after-ms"] = String(f.retryAfterMs);
      sendError(res, new ApiError(f.status, f.message ?? text.message, { type: text.type, code: f.code ?? text.code }), headers);
      return;
    }
    const url = new URL(req.url ?? "/", "http://stand-in");
    if (req.method !== "POST" || url.pathname !== "/v1/embeddings") {
      sendError(res, new ApiError(404, `Invalid URL (${req.method} ${url.pathname})`));
      return;
    }
    const answer = await embeddings(req);
    stats.statuses.push(200);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (e instanceof ApiError) sendError(res, e);
      else sendError(res, new ApiError(500, e instanceof Error ? e.message : String(e), { type: "server_error" }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: `${origin}/v1`,
    apiKey,
    failNext: (count, fault) => faults.failNext(count, fault),
    dropNext: (count) => faults.dropNext(count),
    stallNext: (count, ms) => faults.stallNext(count, ms),
    setPoison(text) {
      poison = text;
    },
    stats: () => structuredClone(stats),
    reset() {
      faults.clear();
      poison = null;
      stats = { requests: 0, batchSizes: [], inputs: [], statuses: [] };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function renormalised(v: Float32Array): Float32Array {
  const out = Float32Array.from(v);
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += out[i]! * out[i]!;
  if (sum > 0) {
    const inv = 1 / Math.sqrt(sum);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! * inv;
  }
  return out;
}
