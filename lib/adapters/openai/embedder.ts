// Embedder over an OpenAI-compatible HTTP API (POST {baseUrl}/embeddings), on the shared
// batching and retry core in lib/adapters/shared/remote-embedder.ts (see its notes on
// retries, rejected inputs, empty text and model names).

import { StrataError } from "../../core/errors.ts";
import type { Embedder } from "../../core/ports.ts";
import { causeText, checkRemoteSettings, createRemoteEmbedder, EmbedRequestFailure, retryAfterMs } from "../shared/remote-embedder.ts";

const DEFAULT_BATCH = 64;
/** OpenAI's limit on inputs per request. */
const OPENAI_MAX_BATCH = 2048;

export interface OpenAiEmbedderOptions {
  /** API root, e.g. "https://api.openai.com/v1" (STRATA_EMBED_BASE_URL); requests go to `${baseUrl}/embeddings`. */
  baseUrl: string;
  /** Sent as a Bearer token (OPENAI_API_KEY); required by api.openai.com, optional for local servers. */
  apiKey?: string;
  /** e.g. "text-embedding-3-small" (STRATA_EMBED_MODEL). */
  model: string;
  /** Requested vector size (STRATA_EMBED_DIMENSIONS; text-embedding-3 and later); learned from the first answer when omitted. */
  dimensions?: number;
  /** Inputs per request (STRATA_EMBED_BATCH), 1 to 2048; default 64. */
  batchSize?: number;
  /** Retries of a request after 429, 5xx, network errors and timeouts; default 5. */
  maxRetries?: number;
  /** Time limit of one request, answer body included; default 60 s. */
  timeoutMs?: number;
  /** First backoff step without Retry-After, doubled on every retry; default 500 ms. */
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

interface OpenAiErrorBody {
  error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown };
}

/** The API root, checked: http(s), no query or fragment, without a trailing slash. */
function checkBaseUrl(raw: string): { base: string; shown: string; host: string } {
  const value = typeof raw === "string" ? raw.trim() : "";
  const bad = (why: string) => new StrataError("config", "CONFIG_INVALID", `STRATA_EMBED_BASE_URL "${value}" ${why}`);
  if (!value) throw new StrataError("config", "CONFIG_MISSING", "STRATA_EMBED_BASE_URL is empty: set it, e.g. https://api.openai.com/v1");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad("is not a URL: set it to the API root, e.g. https://api.openai.com/v1");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw bad("must be an http(s) URL, e.g. https://api.openai.com/v1");
  if (url.search || url.hash) throw bad("must not have a query or fragment");
  if (/\/embeddings\/?$/.test(url.pathname)) throw bad("must be the API root, without /embeddings (e.g. https://api.openai.com/v1)");
  const base = value.replace(/\/+$/, "");
  return { base, shown: `${url.origin}${url.pathname.replace(/\/+$/, "")}`, host: url.hostname };
}

export function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const { base, shown, host } = checkBaseUrl(options.baseUrl);
  const model = typeof options.model === "string" ? options.model.trim() : "";
  if (!model) throw new StrataError("config", "CONFIG_MISSING", "STRATA_EMBED_MODEL is empty: set it, e.g. text-embedding-3-small");
  const apiKey = options.apiKey?.trim() || undefined;
  if (!apiKey && host === "api.openai.com") {
    throw new StrataError("config", "CONFIG_MISSING", "OPENAI_API_KEY is not set: set it, or point STRATA_EMBED_BASE_URL at a server that needs no key");
  }
  const { batchSize, maxRetries, timeoutMs, retryBaseMs, dimensions } = checkRemoteSettings("openai", options, {
    defaultBatch: DEFAULT_BATCH,
    maxBatch: OPENAI_MAX_BATCH,
    batchVariable: "STRATA_EMBED_BATCH",
    dimensionsVariable: "STRATA_EMBED_DIMENSIONS",
  });
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const url = `${base}/embeddings`;
  const where = `OpenAI-compatible embeddings at ${shown}`;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  function configError(code: string, status: number, message: string, fix: string): StrataError {
    return new StrataError("config", code, `${where} answered ${status} (${message}): ${fix}`, { details: { status } });
  }

  async function send(texts: string[]): Promise<number[][]> {
    const body = JSON.stringify({ model, input: texts, encoding_format: "float", ...(dimensions !== undefined ? { dimensions } : {}) });
    let res: Response;
    let text: string;
    try {
      res = await fetchImpl(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) });
      text = await res.text();
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
      const reason = timedOut ? `no answer within ${timeoutMs} ms` : `${e instanceof Error ? e.message : String(e)}${causeText(e)}`;
      throw new EmbedRequestFailure("transient", null, reason, { cause: e });
    }

    if (res.ok) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new StrataError("config", "EMBEDDER_BAD_RESPONSE", `${where} answered ${res.status} with something that is not JSON: check STRATA_EMBED_BASE_URL (it is the API root, e.g. https://api.openai.com/v1)`);
      }
      return vectorsInOrder(parsed, texts.length);
    }

    let error: OpenAiErrorBody["error"];
    try {
      error = (JSON.parse(text) as OpenAiErrorBody).error;
    } catch {
      error = undefined;
    }
    const message = typeof error?.message === "string" && error.message ? error.message : text.trim().slice(0, 300) || res.statusText || "no message";
    const code = typeof error?.code === "string" ? error.code : null;
    const status = res.status;

    if (status === 429 && code === "insufficient_quota") {
      throw configError("EMBEDDER_QUOTA", status, message, "the account behind OPENAI_API_KEY is out of quota: check its plan and billing");
    }
    if (status === 429 || status >= 500) throw new EmbedRequestFailure("transient", status, message, { retryAfterMs: retryAfterMs(res.headers) });
    if (status === 400 || status === 413 || status === 422) throw new EmbedRequestFailure("rejected", status, message);
    if (status === 401) {
      throw configError(
        "EMBEDDER_UNAUTHORIZED",
        status,
        message,
        apiKey ? "check OPENAI_API_KEY (the key was refused)" : "this server needs a key: set OPENAI_API_KEY",
      );
    }
    if (status === 403) throw configError("EMBEDDER_FORBIDDEN", status, message, `check OPENAI_API_KEY: the key may not use model "${model}"`);
    if (status === 404) {
      throw configError("EMBEDDER_NOT_FOUND", status, message, `check STRATA_EMBED_MODEL ("${model}") and STRATA_EMBED_BASE_URL (the API root, e.g. https://api.openai.com/v1)`);
    }
    if (status === 402) throw configError("EMBEDDER_QUOTA", status, message, "check the plan and billing of the account behind OPENAI_API_KEY");
    throw new StrataError("upstream", "UPSTREAM_ERROR", `${where} answered ${status}: ${message}`, { details: { status } });
  }

  function vectorsInOrder(parsed: unknown, count: number): number[][] {
    const malformed = (why: string) => new StrataError("upstream", "EMBEDDER_BAD_RESPONSE", `${where} returned a malformed answer: ${why}`);
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw malformed("no data list");
    if (data.length !== count) throw malformed(`${data.length} embeddings for ${count} inputs`);
    const out = new Array<number[]>(count);
    for (const item of data as { index?: unknown; embedding?: unknown }[]) {
      const i = item?.index;
      if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= count || out[i] !== undefined) throw malformed(`bad or repeated index ${String(i)}`);
      if (!Array.isArray(item.embedding)) {
        throw malformed(typeof item.embedding === "string" ? "base64 embedding though float was asked for" : `no embedding at index ${i}`);
      }
      out[i] = item.embedding as number[];
    }
    return out;
  }

  return createRemoteEmbedder<undefined>({
    where,
    model: `openai:${model}${dimensions !== undefined ? `@${dimensions}` : ""}`,
    ...(dimensions !== undefined ? { dimensions } : {}),
    modelVariable: "STRATA_EMBED_MODEL",
    dimensionsVariable: "STRATA_EMBED_DIMENSIONS",
    batchSize,
    maxRetries,
    retryBaseMs,
    send,
  });
}
