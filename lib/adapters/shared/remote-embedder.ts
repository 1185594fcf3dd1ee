// The batching and retry core of the remote embedders (OpenAI-compatible HTTP, Pinecone
// Inference); each adapter supplies how to send one request and how to read its errors.
// The choices below are not obvious:
//
// Batching and order: texts go out in requests of `batchSize`, one request at a time (an
// embedder is shared by every job in a process, and sequential requests keep one caller from
// eating the whole rate limit). OpenAI answers with `index` on every item; vectors are put
// back by it rather than by position, as the API allows reordering.
//
// Retries: 429, 5xx, network errors and timeouts are retried up to `maxRetries` times with
// exponential backoff and "equal" jitter (half fixed, half random), or after the server's
// `retry-after-ms` / `Retry-After` (seconds or HTTP date) when it sends one. A Retry-After
// pauses every request of this embedder, not just the one that got it: a rate limit is the
// account's, not the request's. A wait longer than a minute is not slept through; the call
// fails as upstream and the job queue retries it later. A 429 whose code is
// `insufficient_quota` is billing, not throttling: it is a config error at once.
//
// Rejected input: a 400/422/413 is never retried as is. It means either that the request
// itself is wrong (model, dimensions) or that an input is (too long, refused). One probe
// request with a short text tells the two apart: if the probe is rejected too, the request
// is at fault and the error is `config`; otherwise the batch is split in halves, each half
// embedded on its own, down to the single input that is refused, and the error is
// `validation` / EMBED_INPUT_REJECTED with the input's position in the embed() call
// (`details.index`), so a caller can set that one text aside. Halves that succeed are kept,
// so a batch that was only too big as a whole (a per-request token limit) still embeds.
//
// Empty text: OpenAI refuses an empty string. A text that is empty or only whitespace has
// no meaning to embed, so it is not sent: it gets the zero vector, as the local embedder
// gives text without content words. Its cosine with anything is 0, and the Pinecone vector
// index stores no vector for it. (Embedding " " instead would make every blank message
// recall every other one.)
//
// Vectors are L2-normalised to Float32Array. The model name recorded beside them is
// `openai:<model>`, plus `@<dimensions>` when dimensions are configured (they change the
// vectors); without configured dimensions, `dimensions` reads 0 until the first answer, and
// every later answer must have the same size.

import { StrataError } from "../../core/errors.ts";
import type { Embedder } from "../../core/ports.ts";

/** Code of the error an embedder throws for an input the service refuses; `details.index` is its position. */
export const EMBED_INPUT_REJECTED = "EMBED_INPUT_REJECTED";

/** Defaults every remote embedder starts from. */
const REMOTE_DEFAULTS = { maxRetries: 5, timeoutMs: 60_000, retryBaseMs: 500 } as const;
const MAX_BACKOFF_MS = 20_000;
/** Longest Retry-After slept through; a longer one fails the call for the queue to retry. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Sent to tell a rejected request from a rejected input; short and harmless. */
const PROBE_TEXT = "probe";

// ---------------------------------------------------------------------------------------
// The shared core

/** How one request failed, as a `send` reports it; anything else it throws is final. */
export class EmbedRequestFailure extends Error {
  /** transient: worth retrying. rejected: the service refused the request's content (400/413/422). */
  readonly kind: "transient" | "rejected";
  readonly status: number | null;
  /** How long the service asked to wait, when it said. */
  readonly retryAfterMs: number | null;

  constructor(kind: "transient" | "rejected", status: number | null, message: string, options: { retryAfterMs?: number | null; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EmbedRequestFailure";
    this.kind = kind;
    this.status = status;
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}

export interface RemoteEmbedderSpec<O> {
  /** Where requests go, for messages (no secrets), e.g. "OpenAI embeddings at https://api.openai.com/v1". */
  where: string;
  /** Model name recorded beside the vectors. */
  model: string;
  /** Configured vector size; learned from the first answer when omitted. */
  dimensions?: number;
  /** The variables to name when the model or its dimensions are wrong. */
  modelVariable: string;
  dimensionsVariable: string;
  batchSize: number;
  maxRetries: number;
  retryBaseMs: number;
  /**
   * One request: the raw vectors of `texts`, in their order. Throws EmbedRequestFailure for
   * what the core handles (retry, isolate), a StrataError for what it cannot (config).
   */
  send(texts: string[], options: O | undefined): Promise<number[][]>;
}

/** An Embedder whose embed() takes per-call options of its service (e.g. Pinecone's input type). */
export interface RemoteEmbedder<O> extends Embedder {
  embed(texts: string[], options?: O): Promise<Float32Array[]>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Checks the numeric settings every remote embedder has; the message names the variable. */
export interface RemoteSettings {
  batchSize: number;
  maxRetries: number;
  timeoutMs: number;
  retryBaseMs: number;
  dimensions?: number;
}

/** The settings with every default filled in, checked; a bad one is a config error naming its variable. */
export function checkRemoteSettings(
  adapter: string,
  given: { batchSize?: number; maxRetries?: number; dimensions?: number; timeoutMs?: number; retryBaseMs?: number },
  limits: { defaultBatch: number; maxBatch: number; batchVariable: string; dimensionsVariable: string },
): RemoteSettings {
  const s: RemoteSettings = {
    batchSize: given.batchSize ?? limits.defaultBatch,
    maxRetries: given.maxRetries ?? REMOTE_DEFAULTS.maxRetries,
    timeoutMs: given.timeoutMs ?? REMOTE_DEFAULTS.timeoutMs,
    retryBaseMs: given.retryBaseMs ?? REMOTE_DEFAULTS.retryBaseMs,
    ...(given.dimensions !== undefined ? { dimensions: given.dimensions } : {}),
  };
  const bad = (message: string) => new StrataError("config", "CONFIG_INVALID", `${adapter} embedder: ${message}`);
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1 || s.batchSize > limits.maxBatch) {
    throw bad(`${limits.batchVariable} must be a whole number from 1 to ${limits.maxBatch}, got ${s.batchSize}`);
  }
  if (!Number.isInteger(s.maxRetries) || s.maxRetries < 0 || s.maxRetries > 20) {
    throw bad(`maxRetries must be a whole number from 0 to 20, got ${s.maxRetries}`);
  }
  if (s.dimensions !== undefined && (!Number.isInteger(s.dimensions) || s.dimensions < 1 || s.dimensions > 20_000)) {
    throw bad(`${limits.dimensionsVariable} must be a whole number from 1 to 20000, got ${s.dimensions}`);
  }
  if (s.timeoutMs !== undefined && !(Number.isFinite(s.timeoutMs) && s.timeoutMs > 0)) throw bad(`timeoutMs must be a positive number, got ${s.timeoutMs}`);
  if (s.retryBaseMs !== undefined && !(Number.isFinite(s.retryBaseMs) && s.retryBaseMs >= 0)) {
    throw bad(`retryBaseMs must be a number ≥ 0, got ${s.retryBaseMs}`);
  }
  return s;
}

/** Milliseconds the response asks to wait: `retry-after-ms`, else `Retry-After` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers): number | null {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "" && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = headers.get("retry-after")?.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** Batching, retries, rejected-input isolation, normalisation and the dimension check, around one `send`. */
export function createRemoteEmbedder<O>(spec: RemoteEmbedderSpec<O>): RemoteEmbedder<O> {
  const { where, batchSize, maxRetries, retryBaseMs } = spec;
  let learned: number | undefined = spec.dimensions;
  /** Set by a Retry-After: no request of this embedder starts before it. */
  let pausedUntil = 0;

  async function withRetries(texts: string[], options: O | undefined): Promise<number[][]> {
    for (let attempt = 0; ; attempt++) {
      const pause = pausedUntil - Date.now();
      if (pause > 0) await sleep(pause);
      try {
        return await spec.send(texts, options);
      } catch (e) {
        if (e instanceof StrataError) throw e;
        if (!(e instanceof EmbedRequestFailure)) {
          throw new StrataError("upstream", "UPSTREAM_ERROR", `${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        if (e.kind === "rejected") throw e;
        if (attempt >= maxRetries) {
          throw new StrataError("upstream", "EMBEDDER_UNAVAILABLE", `${where} failed ${attempt + 1} time${attempt ? "s" : ""}; last: ${e.message}`, {
            cause: e,
            details: { status: e.status, attempts: attempt + 1 },
          });
        }
        let wait: number;
        if (e.retryAfterMs !== null) {
          if (e.retryAfterMs > MAX_RETRY_AFTER_MS) {
            throw new StrataError(
              "upstream",
              "EMBEDDER_RATE_LIMITED",
              `${where} asks to wait ${Math.ceil(e.retryAfterMs / 1000)} s (${e.message}): leaving the retry to the job queue`,
              { cause: e, details: { status: e.status, retryAfterMs: e.retryAfterMs } },
            );
          }
          // A little jitter on top, never below what the server asked.
          wait = e.retryAfterMs * (1 + Math.random() * 0.1);
          pausedUntil = Math.max(pausedUntil, Date.now() + wait);
        } else {
          const ceiling = Math.min(MAX_BACKOFF_MS, retryBaseMs * 2 ** attempt);
          wait = ceiling / 2 + Math.random() * (ceiling / 2);
        }
        await sleep(wait);
      }
    }
  }

  function checkSize(size: number): void {
    if (learned === undefined) {
      learned = size;
      return;
    }
    if (size === learned) return;
    if (spec.dimensions !== undefined) {
      throw new StrataError(
        "config",
        "EMBEDDER_DIMENSIONS",
        `${where} returned ${size}-dimensional vectors but ${spec.dimensionsVariable} is ${spec.dimensions}: set it to ${size}, or to a size model ${spec.model} supports`,
      );
    }
    throw new StrataError("upstream", "EMBEDDER_DIMENSIONS", `${where} returned ${size}-dimensional vectors after ${learned}-dimensional ones for the same model`);
  }

  /** One request (with retries), checked and normalised. */
  async function request(texts: string[], options: O | undefined): Promise<Float32Array[]> {
    const raw = await withRetries(texts, options);
    if (!Array.isArray(raw) || raw.length !== texts.length) {
      throw new StrataError("upstream", "EMBEDDER_BAD_RESPONSE", `${where} returned ${Array.isArray(raw) ? raw.length : "no"} vectors for ${texts.length} inputs`);
    }
    return raw.map((values) => {
      if (!Array.isArray(values) || values.length === 0 || !values.every((x) => typeof x === "number" && Number.isFinite(x))) {
        throw new StrataError("upstream", "EMBEDDER_BAD_RESPONSE", `${where} returned a vector that is not a list of finite numbers`);
      }
      checkSize(values.length);
      const v = Float32Array.from(values);
      let sum = 0;
      for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
      if (sum > 0) {
        const inv = 1 / Math.sqrt(sum);
        for (let i = 0; i < v.length; i++) v[i] = v[i]! * inv;
      }
      return v;
    });
  }

  /**
   * Embeds a short harmless text. Tells a request the service refuses whatever it holds
   * from one refusing an input, and teaches the vector size when nothing else has yet.
   */
  async function probe(options: O | undefined): Promise<void> {
    try {
      await request([PROBE_TEXT], options);
    } catch (e) {
      if (!(e instanceof EmbedRequestFailure)) throw e;
      throw new StrataError(
        "config",
        "EMBEDDER_REQUEST_REJECTED",
        `${where} refuses every request (${e.status}: ${e.message}): check ${spec.modelVariable} (${spec.model}) and ${spec.dimensionsVariable}`,
        { cause: e, details: { status: e.status } },
      );
    }
  }

  /** Embeds a rejected batch by halves, down to the one input that is refused. */
  async function isolate(texts: string[], positions: number[], total: number, failure: EmbedRequestFailure, options: O | undefined): Promise<Float32Array[]> {
    if (texts.length === 1) {
      const index = positions[0]!;
      throw new StrataError(
        "validation",
        EMBED_INPUT_REJECTED,
        `${where} rejected the input at index ${index} (of ${total}): ${failure.status} ${failure.message}`,
        { cause: failure, details: { index, status: failure.status } },
      );
    }
    const mid = Math.ceil(texts.length / 2);
    const halves: [string[], number[]][] = [
      [texts.slice(0, mid), positions.slice(0, mid)],
      [texts.slice(mid), positions.slice(mid)],
    ];
    const out: Float32Array[] = [];
    for (const [part, at] of halves) {
      try {
        out.push(...(await request(part, options)));
      } catch (e) {
        if (!(e instanceof EmbedRequestFailure)) throw e;
        out.push(...(await isolate(part, at, total, e, options)));
      }
    }
    return out;
  }

  async function batch(texts: string[], positions: number[], total: number, options: O | undefined): Promise<Float32Array[]> {
    try {
      return await request(texts, options);
    } catch (e) {
      if (!(e instanceof EmbedRequestFailure)) throw e;
      await probe(options);
      return isolate(texts, positions, total, e, options);
    }
  }

  return {
    model: spec.model,
    get dimensions() {
      return learned ?? 0;
    },
    async embed(texts: string[], options?: O): Promise<Float32Array[]> {
      const out = new Array<Float32Array>(texts.length);
      const live: number[] = [];
      texts.forEach((t, i) => {
        if (typeof t !== "string") throw new StrataError("validation", "VALIDATION_ERROR", `text at index ${i} is not a string`);
        if (t.trim() !== "") live.push(i);
      });
      for (let start = 0; start < live.length; start += batchSize) {
        const positions = live.slice(start, start + batchSize);
        const vectors = await batch(
          positions.map((i) => texts[i]!),
          positions,
          texts.length,
          options,
        );
        positions.forEach((i, k) => (out[i] = vectors[k]!));
      }
      if (live.length < texts.length) {
        // Zero vectors need the size: learn it with one probe when no answer has told it yet.
        if (learned === undefined) await probe(options);
        texts.forEach((_, i) => (out[i] ??= new Float32Array(learned!)));
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------
// OpenAI-compatible HTTP

/** Node's fetch says only "fetch failed"; the reason (ECONNREFUSED, ...) is on the cause. */
export function causeText(e: unknown): string {
  const cause = e instanceof Error ? (e.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (!cause) return "";
  const detail = typeof cause.code === "string" ? cause.code : typeof cause.message === "string" ? cause.message : "";
  return detail ? ` (${detail})` : "";
}
