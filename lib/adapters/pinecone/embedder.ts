// Embedder on Pinecone Inference (`pc.inference.embed`, POST /embed on the control-plane
// host), with the batching, retry and rejected-input isolation of the OpenAI-compatible
// embedder (lib/adapters/openai/embedder.ts, whose header explains them). What is particular
// to Pinecone:
//
// Input type: e5-style models embed a document and a query differently ("passage: " and
// "query: " prefixes inside the model), and `multilingual-e5-large` requires `input_type`.
// The Embedder port has one embed(), so each instance has a default input type (settings,
// "passage" unless told), and embed() takes an optional second argument `{ inputType }` that
// overrides it per call. The runtime can build two instances over one client — "passage" for
// the embed worker and reindex, "query" for the read path — or pass `{ inputType: "query" }`
// where it embeds a query. Both record the same model name: their vectors are meant to be
// compared with each other.
//
// Errors and retries: the v9 client retries 5xx itself (3 times by default) and then reports
// only "max retries exceeded", and it reduces other failures to error classes without the
// status or the Retry-After header (a 429 is an "unmapped" error, 400 and 403 share one
// class). So the adapter runs its own client: the caller's configuration (or the given
// config) with the client's retries off and the client's documented `fetchApi` hook set to a
// thin wrapper of the caller's fetch. The wrapper adds the time limit and, for a non-2xx
// answer, throws an error carrying status, Retry-After and body; the client hands any
// error thrown by fetch back as the `cause` of its PineconeConnectionError, which is where
// the adapter reads it. The caller's client object itself is not used or changed.
//
// Truncation: `truncate: "END"` is always sent, so a message longer than the model's input
// limit (507 tokens for multilingual-e5-large) is embedded by its beginning rather than
// refused.
//
// Dimensions come from the model (1024 for multilingual-e5-large) and are learned from the
// first answer; `settings.dimensions`, when given, is what the answers must have. Sparse
// models are refused: the vector tier is dense.

import { Pinecone, type PineconeConfiguration } from "@pinecone-database/pinecone";
import { StrataError } from "../../core/errors.ts";
import {
  EmbedRequestFailure,
  causeText,
  checkRemoteSettings,
  createRemoteEmbedder,
  retryAfterMs,
  type RemoteEmbedder,
} from "../shared/remote-embedder.ts";

export type PineconeInputType = "passage" | "query";

export type PineconeInferenceOptions =
  | { client: Pinecone }
  | {
      config: {
        apiKey: string;
        controllerHostUrl?: string;
        /** The fetch requests go through (the client's `fetchApi`): the Node runtime's (lib/adapters/shared/node-fetch.ts); default the platform's. */
        fetch?: typeof fetch;
      };
    };

export interface PineconeInferenceSettings {
  /** Hosted dense model, e.g. "multilingual-e5-large" (STRATA_EMBED_MODEL). */
  model: string;
  /** Input type of this instance's embed() calls; default "passage" (documents). */
  inputType?: PineconeInputType;
  /** Inputs per request: the model's limit, 96 for multilingual-e5-large and llama-text-embed-v2 (STRATA_EMBED_BATCH); default 96. */
  batchSize?: number;
  /** Retries of a request after 429, 5xx, network errors and timeouts; default 5. */
  maxRetries?: number;
  /** Vector size the model must answer with (STRATA_EMBED_DIMENSIONS); learned when omitted. */
  dimensions?: number;
  /** Time limit of one request; default 60 s. */
  timeoutMs?: number;
  /** First backoff step without Retry-After, doubled on every retry; default 500 ms. */
  retryBaseMs?: number;
}

export interface PineconeEmbedOptions {
  /** Overrides the instance's input type for this call ("query" for a search query). */
  inputType?: PineconeInputType;
}

const DEFAULT_BATCH = 96;
const MAX_BATCH = 1000;
const INPUT_TYPES: readonly PineconeInputType[] = ["passage", "query"];

/** A non-2xx answer, thrown by the fetch wrapper so its status and headers reach the adapter. */
class PineconeHttpFailure extends Error {
  readonly httpStatus: number;
  readonly retryAfterMs: number | null;
  readonly body: string;
  constructor(httpStatus: number, retryAfter: number | null, body: string) {
    super(`HTTP ${httpStatus}`);
    // Not a name the client's retry logic knows, and no `status` field: it must not retry.
    this.name = "StrataPineconeHttpFailure";
    this.httpStatus = httpStatus;
    this.retryAfterMs = retryAfter;
    this.body = body;
  }
}

/** The first error in the cause chain that satisfies `test`. */
function findCause<T>(e: unknown, test: (x: unknown) => x is T): T | undefined {
  for (let x = e, depth = 0; x !== undefined && x !== null && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    if (test(x)) return x;
  }
  return undefined;
}

function providerMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown }; message?: unknown };
    if (typeof parsed.error?.message === "string" && parsed.error.message) return parsed.error.message;
    if (typeof parsed.message === "string" && parsed.message) return parsed.message;
  } catch {
    // plain text
  }
  return body.trim().slice(0, 300) || "no message";
}

export function createPineconeInferenceEmbedder(
  options: PineconeInferenceOptions,
  settings: PineconeInferenceSettings,
): RemoteEmbedder<PineconeEmbedOptions> {
  const model = typeof settings.model === "string" ? settings.model.trim() : "";
  if (!model) throw new StrataError("config", "CONFIG_MISSING", "STRATA_EMBED_MODEL is empty: set it to a Pinecone hosted model, e.g. multilingual-e5-large");
  const inputType = settings.inputType ?? "passage";
  if (!INPUT_TYPES.includes(inputType)) {
    throw new StrataError("config", "CONFIG_INVALID", `Pinecone input type must be "passage" or "query", got "${String(inputType)}"`);
  }
  const { batchSize, maxRetries, timeoutMs, retryBaseMs, dimensions } = checkRemoteSettings("pinecone", settings, {
    defaultBatch: DEFAULT_BATCH,
    maxBatch: MAX_BATCH,
    batchVariable: "STRATA_EMBED_BATCH",
    dimensionsVariable: "STRATA_EMBED_DIMENSIONS",
  });

  let base: PineconeConfiguration;
  if ("client" in options) {
    base = options.client.getConfig();
  } else {
    const apiKey = options.config.apiKey?.trim();
    if (!apiKey) throw new StrataError("config", "CONFIG_MISSING", "PINECONE_API_KEY is empty: set it to use Pinecone Inference, or choose another embedder");
    const host = options.config.controllerHostUrl?.trim();
    if (host !== undefined && host !== "") {
      let ok = false;
      try {
        ok = ["http:", "https:"].includes(new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `https://${host}`).protocol);
      } catch {
        ok = false;
      }
      if (!ok) throw new StrataError("config", "CONFIG_INVALID", `Pinecone controller host "${host}" is not an http(s) URL or host`);
    }
    base = { apiKey, ...(host ? { controllerHostUrl: host } : {}), ...(options.config.fetch ? { fetchApi: options.config.fetch } : {}) };
  }

  const callerFetch: typeof fetch = base.fetchApi ?? ((input, init) => globalThis.fetch(input, init));
  const observed: typeof fetch = async (input, init) => {
    const limit = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, limit]) : limit;
    const res = await callerFetch(input, { ...init, signal });
    if (res.ok) return res;
    const body = await res.text().catch(() => "");
    throw new PineconeHttpFailure(res.status, retryAfterMs(res.headers), body);
  };
  const client = new Pinecone({ ...base, maxRetries: 0, fetchApi: observed });
  const where = `Pinecone Inference (${(base.controllerHostUrl ?? "https://api.pinecone.io").replace(/\/+$/, "")})`;

  function classify(e: unknown): Error {
    const http = findCause(e, (x): x is PineconeHttpFailure => x instanceof PineconeHttpFailure);
    if (http) {
      const status = http.httpStatus;
      const message = providerMessage(http.body);
      const config = (code: string, fix: string) =>
        new StrataError("config", code, `${where} answered ${status} (${message}): ${fix}`, { details: { status } });
      if (status === 429 || status >= 500) return new EmbedRequestFailure("transient", status, message, { retryAfterMs: http.retryAfterMs });
      if (status === 400 || status === 413 || status === 422) return new EmbedRequestFailure("rejected", status, message);
      if (status === 401 || status === 403) return config("EMBEDDER_UNAUTHORIZED", "check PINECONE_API_KEY");
      if (status === 404) return config("EMBEDDER_NOT_FOUND", `check STRATA_EMBED_MODEL ("${model}") against Pinecone's hosted models`);
      if (status === 402) return config("EMBEDDER_QUOTA", "check the plan and billing of the Pinecone project");
      return new StrataError("upstream", "UPSTREAM_ERROR", `${where} answered ${status}: ${message}`, { details: { status } });
    }
    const network = findCause(e, (x): x is Error => x instanceof Error && (x.name === "TypeError" || x.name === "TimeoutError" || x.name === "AbortError"));
    if (network) {
      const reason = network.name === "TimeoutError" || network.name === "AbortError" ? `no answer within ${timeoutMs} ms` : `${network.message}${causeText(network)}`;
      return new EmbedRequestFailure("transient", null, reason, { cause: e });
    }
    return new StrataError("upstream", "UPSTREAM_ERROR", `${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  async function send(texts: string[], call: PineconeEmbedOptions | undefined): Promise<number[][]> {
    const type = call?.inputType ?? inputType;
    if (!INPUT_TYPES.includes(type)) throw new StrataError("validation", "VALIDATION_ERROR", `inputType must be "passage" or "query", got "${String(type)}"`);
    let answer;
    try {
      answer = await client.inference.embed({ model, inputs: texts, parameters: { inputType: type, truncate: "END" } });
    } catch (e) {
      throw classify(e);
    }
    return answer.data.map((item) => {
      if (item.vectorType !== "dense") {
        throw new StrataError("config", "EMBEDDER_SPARSE_MODEL", `${where}: model "${model}" makes ${item.vectorType} vectors: set STRATA_EMBED_MODEL to a dense model, e.g. multilingual-e5-large`);
      }
      return item.values;
    });
  }

  return createRemoteEmbedder<PineconeEmbedOptions>({
    where,
    model: `pinecone:${model}`,
    ...(dimensions !== undefined ? { dimensions } : {}),
    modelVariable: "STRATA_EMBED_MODEL",
    dimensionsVariable: "STRATA_EMBED_DIMENSIONS",
    batchSize,
    maxRetries,
    retryBaseMs,
    send,
  });
}
