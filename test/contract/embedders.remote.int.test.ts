// The Embedder contract on the two remote embedders, each through its local stand-in (the
// OpenAI-compatible one over plain fetch, Pinecone Inference through the real v9 client),
// then what is particular to a remote service: batching and order, retries after 429 (with
// Retry-After) and 5xx and network failures, no retry of a refused request, the refused
// input named by its position, configuration errors that name the variable to fix.
// Backoff steps are shortened with retryBaseMs so failures cost milliseconds.

import { Pinecone } from "@pinecone-database/pinecone";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createLocalEmbedder } from "../../lib/adapters/local/embedder.ts";
import { createOpenAiEmbedder, type OpenAiEmbedderOptions } from "../../lib/adapters/openai/embedder.ts";
import { createPineconeInferenceEmbedder, type PineconeInferenceSettings } from "../../lib/adapters/pinecone/embedder.ts";
import { createNodeFetch } from "../../lib/adapters/shared/node-fetch.ts";
import { StrataError } from "../../lib/core/errors.ts";
import { startOpenAiEmbeddingsServer, type OpenAiEmbeddingsServer } from "../stand-ins/openai-embeddings-server.ts";
import { startPineconeInferenceServer, type PineconeInferenceServer } from "../stand-ins/pinecone-inference-server.ts";
import { embedderContract } from "./embedder.contract.ts";

let openaiServer: Promise<OpenAiEmbeddingsServer> | null = null;
let pineconeServer: Promise<PineconeInferenceServer> | null = null;
const openai = () => (openaiServer ??= startOpenAiEmbeddingsServer());
const pinecone = () => (pineconeServer ??= startPineconeInferenceServer());

afterAll(async () => {
  await Promise.all([openaiServer?.then((s) => s.close()), pineconeServer?.then((s) => s.close())]);
});

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(cosine(a, a));
const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as StrataError);

embedderContract("openai-compatible (stand-in)", async () => {
  const s = await openai();
  return createOpenAiEmbedder({ baseUrl: s.url, apiKey: s.apiKey!, model: "text-embedding-3-small", dimensions: 256 });
});

embedderContract("pinecone inference (stand-in)", async () => {
  const s = await pinecone();
  return createPineconeInferenceEmbedder({ client: new Pinecone({ apiKey: s.apiKey, controllerHostUrl: s.url }) }, { model: "multilingual-e5-large" });
});

// Again over the Node runtime's fetch (lib/runtime.ts passes it to both), each request counted.
const nodeFetch = createNodeFetch();
const counted = { openai: 0, pinecone: 0 };
const countedFetch =
  (which: keyof typeof counted): typeof fetch =>
  (input, init) => {
    counted[which]++;
    return nodeFetch(input, init);
  };

embedderContract("openai-compatible over node-fetch", async () => {
  const s = await openai();
  return createOpenAiEmbedder({ baseUrl: s.url, apiKey: s.apiKey!, model: "text-embedding-3-small", dimensions: 256, fetch: countedFetch("openai") });
});

embedderContract("pinecone inference over node-fetch", async () => {
  const s = await pinecone();
  return createPineconeInferenceEmbedder({ config: { apiKey: s.apiKey, controllerHostUrl: s.url, fetch: countedFetch("pinecone") } }, { model: "multilingual-e5-large" });
});

it("sent the node-fetch embedders' requests through it", () => {
  expect(counted.openai).toBeGreaterThan(0);
  expect(counted.pinecone).toBeGreaterThan(0);
});

describe("openai-compatible embedder", () => {
  let s: OpenAiEmbeddingsServer;
  const make = (over: Partial<OpenAiEmbedderOptions> = {}) =>
    createOpenAiEmbedder({ baseUrl: s.url, apiKey: s.apiKey!, model: "text-embedding-3-small", dimensions: 64, retryBaseMs: 5, ...over });

  beforeEach(async () => {
    s = await openai();
    s.reset();
  });

  it("sends ceil(N / batchSize) requests and keeps the order, whatever order the answer lists", async () => {
    const reversed = await startOpenAiEmbeddingsServer({ order: "reversed" });
    try {
      const texts = Array.from({ length: 10 }, (_, i) => `message number ${i} about topic ${i * 7}`);
      const e = createOpenAiEmbedder({ baseUrl: reversed.url, apiKey: reversed.apiKey!, model: "text-embedding-3-small", dimensions: 64, batchSize: 4 });
      const out = await e.embed(texts);
      expect(reversed.stats().batchSizes).toEqual([4, 4, 2]);
      expect(reversed.stats().inputs).toEqual(texts);
      // Each vector is its own text's: the same as the local hashing embedder at that size.
      const local = await createLocalEmbedder({ dimensions: 64 }).embed(texts);
      out.forEach((v, i) => expect(cosine(v, local[i]!)).toBeCloseTo(1, 5));
      expect(cosine(out[0]!, out[1]!)).toBeLessThan(0.99);
    } finally {
      await reversed.close();
    }
  });

  it("records the model with its dimensions, and learns the size when none is configured", async () => {
    expect(make().model).toBe("openai:text-embedding-3-small@64");
    const learning = make({ dimensions: undefined });
    expect(learning.model).toBe("openai:text-embedding-3-small");
    expect(learning.dimensions).toBe(0);
    const [v] = await learning.embed(["first answer sets the size"]);
    expect(v).toHaveLength(1536);
    expect(learning.dimensions).toBe(1536);
  });

  it("a server that ignores the configured dimensions is a config error naming STRATA_EMBED_DIMENSIONS", async () => {
    const ignoring = await startOpenAiEmbeddingsServer({ ignoreDimensions: true });
    try {
      const e = createOpenAiEmbedder({ baseUrl: ignoring.url, apiKey: ignoring.apiKey!, model: "text-embedding-3-small", dimensions: 64 });
      const err = await failure(e.embed(["hello"]));
      expect(err).toBeInstanceOf(StrataError);
      expect(err).toMatchObject({ category: "config", code: "EMBEDDER_DIMENSIONS" });
      expect(err!.message).toMatch(/returned 1536-dimensional vectors but STRATA_EMBED_DIMENSIONS is 64/);
    } finally {
      await ignoring.close();
    }
  });

  it("never sends a blank text: it gets the zero vector", async () => {
    const out = await make().embed(["", "hiking trip", "  \n"]);
    expect(s.stats().inputs).toEqual(["hiking trip"]);
    expect(out.map((v) => v.length)).toEqual([64, 64, 64]);
    expect(norm(out[0]!)).toBe(0);
    expect(norm(out[1]!)).toBeCloseTo(1, 5);
    expect(norm(out[2]!)).toBe(0);
    // Blank only, size not known yet: one probe learns it.
    const learning = make({ dimensions: undefined });
    const [blank] = await learning.embed([""]);
    expect(blank).toHaveLength(1536);
    expect(s.stats().inputs).toEqual(["hiking trip", "probe"]);
  });

  it("retries a 429 after the Retry-After it names, in seconds", async () => {
    s.failNext(1, { status: 429, retryAfter: 1 });
    const started = Date.now();
    const [v] = await make().embed(["rate limited once"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(v).toHaveLength(64);
    expect(s.stats().statuses).toEqual([429, 200]);
  });

  it("retries 429s with retry-after-ms, 5xx and dropped connections, then succeeds", async () => {
    s.failNext(2, { status: 429, retryAfterMs: 30 });
    s.failNext(1, { status: 500 });
    s.failNext(1, { status: 503 });
    s.dropNext(1);
    const started = Date.now();
    const out = await make().embed(["eventually", "embedded"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    expect(out).toHaveLength(2);
    expect(s.stats().statuses).toEqual([429, 429, 500, 503, 0, 200]);
  });

  it("retries a request that times out", async () => {
    s.stallNext(1, 1000);
    const out = await make({ timeoutMs: 150 }).embed(["slow then fast"]);
    expect(out).toHaveLength(1);
    expect(s.stats().requests).toBe(2);
  });

  it("gives up after maxRetries with an upstream error saying what happened", async () => {
    s.failNext(5, { status: 502 });
    const err = await failure(make({ maxRetries: 2 }).embed(["never"]));
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({ category: "upstream", code: "EMBEDDER_UNAVAILABLE", details: { status: 502, attempts: 3 } });
    expect(err!.message).toMatch(/failed 3 times; last: Error 502/);
    expect(s.stats().requests).toBe(3);
  });

  it("does not sleep through a Retry-After over a minute: the queue retries later", async () => {
    s.failNext(1, { status: 429, retryAfter: 120 });
    const err = await failure(make().embed(["later"]));
    expect(err).toMatchObject({ category: "upstream", code: "EMBEDDER_RATE_LIMITED" });
    expect(s.stats().requests).toBe(1);
  });

  it("does not retry a 400; a refused input is a validation error naming its position", async () => {
    s.setPoison("POISON");
    const single = await failure(make().embed(["a POISON pill"]));
    expect(single).toBeInstanceOf(StrataError);
    expect(single).toMatchObject({ category: "validation", code: "EMBED_INPUT_REJECTED", details: { index: 0, status: 400 } });
    expect(single!.message).toMatch(/rejected the input at index 0 \(of 1\): 400 '\$\.input' is invalid/);
    // Sent once; the only other request is the probe that clears the request itself.
    expect(s.stats().inputs).toEqual(["a POISON pill", "probe"]);

    s.reset();
    s.setPoison("POISON");
    const texts = Array.from({ length: 10 }, (_, i) => (i === 7 ? "POISON here" : `fine text ${i}`));
    const err = await failure(make({ batchSize: 4 }).embed(texts));
    expect(err).toMatchObject({ category: "validation", code: "EMBED_INPUT_REJECTED", details: { index: 7 } });
    expect(err!.message).toMatch(/index 7 \(of 10\)/);
    // Sent in its batch of 4, then in the refused half of it, then alone; never retried as is.
    expect(s.stats().inputs.filter((t) => t === "POISON here")).toHaveLength(3);
    expect(s.stats().batchSizes).toEqual([4, 4, 1, 2, 2, 1, 1]);
  });

  it("a request the server refuses whatever it holds is a config error, not a refused input", async () => {
    const err = await failure(make({ model: "text-embedding-ada-002", dimensions: 256 }).embed(["one", "two", "three"]));
    expect(err).toMatchObject({ category: "config", code: "EMBEDDER_REQUEST_REJECTED" });
    expect(err!.message).toMatch(/does not support specifying dimensions.*check STRATA_EMBED_MODEL .*STRATA_EMBED_DIMENSIONS/);
    expect(s.stats().requests).toBe(2); // the batch and the probe
  });

  it("splits a batch the server finds too large, and still embeds all of it", async () => {
    const small = await startOpenAiEmbeddingsServer({ maxInputs: 3 });
    try {
      const texts = Array.from({ length: 8 }, (_, i) => `text ${i}`);
      const e = createOpenAiEmbedder({ baseUrl: small.url, apiKey: small.apiKey!, model: "text-embedding-3-small", dimensions: 32, batchSize: 8 });
      const out = await e.embed(texts);
      const local = await createLocalEmbedder({ dimensions: 32 }).embed(texts);
      out.forEach((v, i) => expect(cosine(v, local[i]!)).toBeCloseTo(1, 5));
      expect(small.stats().batchSizes).toEqual([8, 1, 4, 2, 2, 4, 2, 2]);
    } finally {
      await small.close();
    }
  });

  it("a refused key is a config error naming OPENAI_API_KEY, not retried", async () => {
    const err = await failure(make({ apiKey: "sk-wrong-key-123456" }).embed(["hello"]));
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({ category: "config", code: "EMBEDDER_UNAUTHORIZED" });
    expect(err!.message).toMatch(/answered 401 \(Incorrect API key provided: sk-\**3456\..*\): check OPENAI_API_KEY/);
    expect(err!.message).not.toContain("sk-wrong-key-123456");
    expect(s.stats().requests).toBe(1);
    const none = await failure(make({ apiKey: undefined }).embed(["hello"]));
    expect(none!.message).toMatch(/this server needs a key: set OPENAI_API_KEY/);
  });

  it("an unknown model is a config error naming STRATA_EMBED_MODEL; exhausted quota names billing", async () => {
    const missing = await failure(make({ model: "text-embedding-9" }).embed(["hello"]));
    expect(missing).toMatchObject({ category: "config", code: "EMBEDDER_NOT_FOUND" });
    expect(missing!.message).toMatch(/The model `text-embedding-9` does not exist.*check STRATA_EMBED_MODEL/);
    s.failNext(1, { status: 429, code: "insufficient_quota", message: "You exceeded your current quota, please check your plan and billing details." });
    const quota = await failure(make().embed(["hello"]));
    expect(quota).toMatchObject({ category: "config", code: "EMBEDDER_QUOTA" });
    expect(s.stats().requests).toBe(2);
  });

  it("an unreachable server is an upstream error after its retries", async () => {
    const gone = await startOpenAiEmbeddingsServer();
    await gone.close();
    const err = await failure(createOpenAiEmbedder({ baseUrl: gone.url, model: "m", maxRetries: 1, retryBaseMs: 5 }).embed(["x"]));
    expect(err).toMatchObject({ category: "upstream", code: "EMBEDDER_UNAVAILABLE" });
    expect(err!.message).toMatch(/ECONNREFUSED/);
  });

  it("checks its configuration at construction and names the fix", () => {
    const bad = (over: Partial<OpenAiEmbedderOptions>) => () => createOpenAiEmbedder({ baseUrl: "http://127.0.0.1:1/v1", model: "m", ...over });
    expect(bad({ baseUrl: "" })).toThrow(/STRATA_EMBED_BASE_URL is empty/);
    expect(bad({ baseUrl: "localhost:8080" })).toThrow(/STRATA_EMBED_BASE_URL "localhost:8080" must be an http\(s\) URL/);
    expect(bad({ baseUrl: "https://api.openai.com/v1/embeddings" })).toThrow(/without \/embeddings/);
    expect(bad({ baseUrl: "https://api.openai.com/v1" })).toThrow(/OPENAI_API_KEY is not set/);
    expect(bad({ model: " " })).toThrow(/STRATA_EMBED_MODEL is empty/);
    expect(bad({ dimensions: 0 })).toThrow(/STRATA_EMBED_DIMENSIONS must be a whole number/);
    expect(bad({ batchSize: 5000 })).toThrow(/STRATA_EMBED_BATCH must be a whole number from 1 to 2048/);
    expect(bad({ maxRetries: -1 })).toThrow(/maxRetries/);
    try {
      bad({ model: "" })();
    } catch (e) {
      expect(e).toMatchObject({ category: "config" });
    }
    expect(bad({})).not.toThrow();
  });
});

describe("pinecone inference embedder", () => {
  let s: PineconeInferenceServer;
  const make = (settings: Partial<PineconeInferenceSettings> = {}, apiKey = s.apiKey) =>
    createPineconeInferenceEmbedder({ config: { apiKey, controllerHostUrl: s.url } }, { model: "multilingual-e5-large", retryBaseMs: 5, ...settings });

  beforeEach(async () => {
    s = await pinecone();
    s.reset();
  });

  it("batches, keeps the order, and sends passages unless told a query", async () => {
    const texts = Array.from({ length: 12 }, (_, i) => `passage ${i} on subject ${i * 3}`);
    const e = make({ batchSize: 5 });
    expect(e.model).toBe("pinecone:multilingual-e5-large");
    const out = await e.embed(texts);
    expect(e.dimensions).toBe(1024);
    expect(s.stats().batchSizes).toEqual([5, 5, 2]);
    expect(s.stats().inputs).toEqual(texts);
    expect(s.stats().inputTypes).toEqual(["passage", "passage", "passage"]);
    expect(s.stats().apiVersions).toEqual(["2026-07"]);
    const [again] = await e.embed([texts[4]!]);
    expect(cosine(out[4]!, again!)).toBeCloseTo(1, 5);

    const [asQuery] = await e.embed([texts[4]!], { inputType: "query" });
    const [fromQueryInstance] = await make({ inputType: "query" }).embed([texts[4]!]);
    expect(s.stats().inputTypes.slice(-2)).toEqual(["query", "query"]);
    expect(cosine(asQuery!, fromQueryInstance!)).toBeCloseTo(1, 5);
    expect(cosine(asQuery!, again!)).toBeLessThan(0.999); // e5 embeds a query differently
    expect(cosine(asQuery!, again!)).toBeGreaterThan(0.5);
  });

  it("retries 429 with Retry-After and 5xx itself, with the client's own retries off", async () => {
    s.failNext(1, { status: 429, retryAfter: 1 });
    s.failNext(2, { status: 500 });
    s.dropNext(1);
    const started = Date.now();
    const out = await make().embed(["throttled, then failing, then fine"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(out[0]).toHaveLength(1024);
    expect(s.stats().statuses).toEqual([429, 500, 500, 0, 200]);

    s.reset();
    s.failNext(10, { status: 503 });
    const err = await failure(make({ maxRetries: 1 }).embed(["down"]));
    expect(err).toMatchObject({ category: "upstream", code: "EMBEDDER_UNAVAILABLE", details: { status: 503, attempts: 2 } });
    expect(s.stats().requests).toBe(2); // not 2 x the client's 4
  });

  it("retries a request that times out, and names an unreachable host", async () => {
    s.stallNext(1, 1000);
    const out = await make({ timeoutMs: 150 }).embed(["slow then fast"]);
    expect(out[0]).toHaveLength(1024);
    expect(s.stats().requests).toBe(2);

    s.stallNext(3, 1000);
    const slow = await failure(make({ timeoutMs: 100, maxRetries: 2 }).embed(["always slow"]));
    expect(slow).toMatchObject({ category: "upstream", code: "EMBEDDER_UNAVAILABLE" });
    expect(slow!.message).toMatch(/failed 3 times; last: no answer within 100 ms/);

    const gone = await startPineconeInferenceServer();
    await gone.close();
    const down = createPineconeInferenceEmbedder({ config: { apiKey: "k", controllerHostUrl: gone.url } }, { model: "multilingual-e5-large", maxRetries: 1, retryBaseMs: 5 });
    const err = await failure(down.embed(["x"]));
    expect(err).toMatchObject({ category: "upstream", code: "EMBEDDER_UNAVAILABLE" });
    expect(err!.message).toMatch(/ECONNREFUSED/);
  });

  it("does not retry a 400; a refused input is a validation error naming its position", async () => {
    s.setPoison("POISON");
    const texts = ["ok one", "ok two", "ok three", "POISON four", "ok five"];
    const err = await failure(make().embed(texts));
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({ category: "validation", code: "EMBED_INPUT_REJECTED", details: { index: 3, status: 400 } });
    expect(err!.message).toMatch(/rejected the input at index 3 \(of 5\): 400 Input contains content that cannot be embedded/);
    expect(s.stats().batchSizes).toEqual([5, 1, 3, 2, 1]); // the batch, the probe, then halves down to the input
    expect(s.stats().statuses).toEqual([400, 200, 200, 400, 400]);
  });

  it("a refused key is a config error naming PINECONE_API_KEY; the given client's config is used", async () => {
    const err = await failure(make({}, "pcsk_wrong").embed(["hello"]));
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({ category: "config", code: "EMBEDDER_UNAUTHORIZED" });
    expect(err!.message).toMatch(/answered 401 \(Invalid API Key\): check PINECONE_API_KEY/);
    expect(s.stats().requests).toBe(1);

    const client = new Pinecone({ apiKey: s.apiKey, controllerHostUrl: s.url, maxRetries: 3 });
    s.failNext(1, { status: 500 });
    await createPineconeInferenceEmbedder({ client }, { model: "llama-text-embed-v2", retryBaseMs: 5 }).embed(["via the caller's client"]);
    expect(s.stats().statuses.slice(-2)).toEqual([500, 200]);
    expect(client.getConfig().maxRetries).toBe(3); // left as it was
  });

  it("refuses a sparse model and an unknown one with config errors naming STRATA_EMBED_MODEL", async () => {
    const sparse = await failure(make({ model: "pinecone-sparse-english-v0" }).embed(["x"]));
    expect(sparse).toMatchObject({ category: "config", code: "EMBEDDER_SPARSE_MODEL" });
    expect(sparse!.message).toMatch(/makes sparse vectors: set STRATA_EMBED_MODEL to a dense model/);
    const unknown = await failure(make({ model: "no-such-model" }).embed(["x", "y"]));
    expect(unknown).toMatchObject({ category: "config", code: "EMBEDDER_REQUEST_REJECTED" });
    expect(unknown!.message).toMatch(/Model 'no-such-model' not found.*check STRATA_EMBED_MODEL/);
  });

  it("checks its configuration at construction", () => {
    const bad = (config: { apiKey: string; controllerHostUrl?: string }, settings: Partial<PineconeInferenceSettings> = {}) => () =>
      createPineconeInferenceEmbedder({ config }, { model: "multilingual-e5-large", ...settings });
    expect(bad({ apiKey: " " })).toThrow(/PINECONE_API_KEY is empty/);
    expect(bad({ apiKey: "k" }, { model: "" })).toThrow(/STRATA_EMBED_MODEL is empty/);
    expect(bad({ apiKey: "k" }, { inputType: "document" as never })).toThrow(/input type must be "passage" or "query"/);
    expect(bad({ apiKey: "k" }, { batchSize: 0 })).toThrow(/STRATA_EMBED_BATCH/);
    expect(bad({ apiKey: "k", controllerHostUrl: "ftp://x" })).toThrow(/not an http\(s\) URL/);
    expect(bad({ apiKey: "k" })).not.toThrow();
  });
});
