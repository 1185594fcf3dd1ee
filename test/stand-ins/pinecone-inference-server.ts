// Pinecone Inference for tests: the `/embed` endpoint of the control-plane host as
// @pinecone-database/pinecone 9 calls it through `pc.inference.embed` (generated
// InferenceApi, API version 2026-07): POST /embed with `Api-Key` and
// `X-Pinecone-Api-Version` headers and
//   { model, inputs: [{ text }], parameters?: { input_type, truncate, ... } }
// answered with
//   { model, vector_type: "dense", data: [{ values, vector_type: "dense" }], usage: { total_tokens } }
// and errors as `{ error: { code, message }, status }`. Hand the client `controllerHostUrl: url`.
//
// Models: multilingual-e5-large (1024 dimensions, input_type required, 96 inputs and 507
// tokens per input, truncate END by default), llama-text-embed-v2 (1024, input_type
// optional), and pinecone-sparse-english-v0 (sparse: values with indices). Dense vectors come
// from the project's local hashing embedder over "<input_type>: <text>", the way e5 prefixes
// its inputs, so a query and a passage of the same text differ a little, as they do on the
// real service. Tokens are counted as characters / 4.
//
// Faults are scripted as on the OpenAI stand-in (FaultScript): failNext with Pinecone's
// error bodies (429 RESOURCE_EXHAUSTED with `Retry-After` / `retry-after-ms`, 500 INTERNAL,
// 503 UNAVAILABLE), dropNext, stallNext; setPoison(s) refuses any request with an input
// containing s with a 400 INVALID_ARGUMENT that does not say which input.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { FaultScript, embedderCache, readBody, type EmbeddingServerStats, type Fault } from "./openai-embeddings-server.ts";

export interface PineconeInferenceStats extends EmbeddingServerStats {
  /** `parameters.input_type` of every embed request that got as far as parsing (null when absent). */
  inputTypes: (string | null)[];
  /** Every distinct X-Pinecone-Api-Version header seen. */
  apiVersions: string[];
}

export interface PineconeInferenceServer {
  /** Control-plane host to hand the client as `controllerHostUrl`, e.g. "http://127.0.0.1:PORT". */
  url: string;
  apiKey: string;
  failNext(count: number, fault: Fault): void;
  dropNext(count: number): void;
  stallNext(count: number, ms: number): void;
  setPoison(text: string | null): void;
  stats(): PineconeInferenceStats;
  reset(): void;
  close(): Promise<void>;
}

interface ModelSpec {
  type: "dense" | "sparse";
  dimensions: number;
  maxBatch: number;
  maxTokens: number;
  inputTypeRequired: boolean;
}

const MODELS: Record<string, ModelSpec> = {
  "multilingual-e5-large": { type: "dense", dimensions: 1024, maxBatch: 96, maxTokens: 507, inputTypeRequired: true },
  "llama-text-embed-v2": { type: "dense", dimensions: 1024, maxBatch: 96, maxTokens: 2048, inputTypeRequired: false },
  "pinecone-sparse-english-v0": { type: "sparse", dimensions: 0, maxBatch: 96, maxTokens: 512, inputTypeRequired: true },
};

const FAULT_TEXT: Record<number, { code: string; message: string }> = {
  429: {
    code: "RESOURCE_EXHAUSTED",
    message: "Request failed. You've reached the max embedding tokens per minute (250000) for model multilingual-e5-large for the current project. To increase this limit, upgrade your plan.",
  },
  500: { code: "INTERNAL", message: "Internal server error" },
  503: { code: "UNAVAILABLE", message: "Service unavailable, please retry" },
};

class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const invalid = (message: string) => new ApiError(400, "INVALID_ARGUMENT", message);

export async function startPineconeInferenceServer(options: { apiKey?: string } = {}): Promise<PineconeInferenceServer> {
  const apiKey = options.apiKey ?? `pcsk_${randomBytes(12).toString("hex")}`;
  const faults = new FaultScript();
  const embedderOf = embedderCache();
  let poison: string | null = null;
  const fresh = (): PineconeInferenceStats => ({ requests: 0, batchSizes: [], inputs: [], statuses: [], inputTypes: [], apiVersions: [] });
  let stats = fresh();

  async function embed(req: IncomingMessage): Promise<unknown> {
    const raw = await readBody(req);
    if (req.headers["api-key"] !== apiKey) throw new ApiError(401, "UNAUTHENTICATED", "Invalid API Key");
    let body: { model?: unknown; inputs?: unknown; parameters?: unknown };
    try {
      body = JSON.parse(raw.toString("utf8")) as typeof body;
    } catch {
      throw invalid("Failed to parse the request body as JSON");
    }
    const params = (body.parameters ?? {}) as Record<string, unknown>;
    if (Array.isArray(body.inputs)) {
      const texts = (body.inputs as { text?: unknown }[]).map((i) => (typeof i?.text === "string" ? i.text : ""));
      stats.batchSizes.push(texts.length);
      stats.inputs.push(...texts);
      stats.inputTypes.push(typeof params.input_type === "string" ? params.input_type : null);
    }
    if (typeof body.model !== "string" || !body.model) throw invalid("Missing required field 'model'");
    const model = MODELS[body.model];
    if (!model) throw invalid(`Model '${body.model}' not found. Use list_models to see the models available for embedding.`);
    if (!Array.isArray(body.inputs) || body.inputs.length === 0) throw invalid("Must specify at least one input");
    const inputs = body.inputs as { text?: unknown }[];
    if (inputs.length > model.maxBatch) throw invalid(`Batch size exceeds the limit of ${model.maxBatch} for model ${body.model}`);
    if (!inputs.every((i) => typeof i?.text === "string" && i.text !== "")) throw invalid("Every input must have a non-empty 'text'");
    const texts = inputs.map((i) => i.text as string);
    const inputType = params.input_type;
    if (inputType === undefined && model.inputTypeRequired) throw invalid(`Missing required parameter 'input_type' for model ${body.model}`);
    if (inputType !== undefined && inputType !== "query" && inputType !== "passage") {
      throw invalid(`Invalid parameter value input_type='${String(inputType)}' for model ${body.model}, must be one of [query, passage]`);
    }
    const truncate = params.truncate ?? "END";
    if (truncate !== "END" && truncate !== "NONE") throw invalid(`Invalid parameter value truncate='${String(truncate)}', must be one of [END, NONE]`);
    for (const key of Object.keys(params)) {
      if (!["input_type", "truncate", "dimension"].includes(key)) throw invalid(`Unsupported parameter '${key}' for model ${body.model}`);
    }
    if (poison !== null && texts.some((t) => t.includes(poison!))) throw invalid("Input contains content that cannot be embedded");
    const limit = model.maxTokens * 4;
    if (truncate === "NONE" && texts.some((t) => t.length > limit)) {
      throw invalid(`Input text exceeds the maximum length of ${model.maxTokens} tokens for model ${body.model} and truncate is NONE`);
    }
    const kept = texts.map((t) => t.slice(0, limit));
    const tokens = kept.reduce((n, t) => n + Math.ceil(t.length / 4), 0);

    if (model.type === "sparse") {
      const dense = await embedderOf(4096).embed(kept);
      const data = dense.map((v) => {
        const indices: number[] = [];
        const values: number[] = [];
        v.forEach((x, i) => {
          if (x > 0) {
            indices.push(i);
            values.push(x);
          }
        });
        return { vector_type: "sparse", sparse_values: values, sparse_indices: indices };
      });
      return { model: body.model, vector_type: "sparse", data, usage: { total_tokens: tokens } };
    }
    const prefix = typeof inputType === "string" ? `${inputType}: ` : "";
    const vectors = await embedderOf(model.dimensions).embed(kept.map((t) => prefix + t));
    return {
      model: body.model,
      vector_type: "dense",
      data: vectors.map((v) => ({ values: Array.from(v), vector_type: "dense" })),
      usage: { total_tokens: tokens },
    };
  }

  function sendError(res: ServerResponse, e: ApiError, headers: Record<string, string> = {}): void {
    stats.statuses.push(e.status);
    res.writeHead(e.status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify({ error: { code: e.code, message: e.message }, status: e.status }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const version = req.headers["x-pinecone-api-version"];
    if (typeof version === "string" && !stats.apiVersions.includes(version)) stats.apiVersions.push(version);
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
      const text = FAULT_TEXT[f.status] ?? { code: f.status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT", message: `Error ${f.status}` };
      const headers: Record<string, string> = {};
      if (f.retryAfter !== undefined) headers["retry-after"] = String(f.retryAfter);
      if (f.retryAfterMs !== undefined) headers["retry-after-ms"] = String(f.retryAfterMs);
      sendError(res, new ApiError(f.status, f.code ?? text.code, f.message ?? text.message), headers);
      return;
    }
    const url = new URL(req.url ?? "/", "http://stand-in");
    if (req.method !== "POST" || url.pathname !== "/embed") {
      sendError(res, new ApiError(404, "NOT_FOUND", `No route for ${req.method} ${url.pathname}`));
      return;
    }
    const answer = await embed(req);
    stats.statuses.push(200);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      sendError(res, e instanceof ApiError ? e : new ApiError(500, "INTERNAL", e instanceof Error ? e.message : String(e)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
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
      stats = fresh();
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
