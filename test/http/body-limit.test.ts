// The request body limits of /v1/sessions/* and /v1/search, over a real @hono/node-server (as `strata serve`
// runs it): a declared length is judged from the header before any of the body is read, a
// chunked body as it streams in, and a request without a body never meets the limit.

import http from "node:http";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CONTENT_BYTES, MAX_MESSAGES_PER_REQUEST, MAX_QUERY_LENGTH, MAX_SEARCH_BODY_BYTES } from "../../lib/http/schemas.ts";
import type { Strata } from "../../lib/runtime.ts";
import { uid } from "../fixtures/pglite.ts";
import { startTestStrata } from "../fixtures/strata.ts";

const MAX_BODY = MAX_MESSAGES_PER_REQUEST * MAX_CONTENT_BYTES * 1.25;
let strata: Strata;
let server: ServerType;
let port: number;

beforeAll(async () => {
  strata = await startTestStrata();
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: strata.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await strata?.close();
});

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/**
 * Sends a request with the given headers; the body goes in `chunks` (chunked when no length is
 * declared). `stopAfterHeaders` sends none of a declared body and waits for an early answer.
 */
function send(method: string, path: string, headers: Record<string, string>, chunks: (string | Buffer)[], stopAfterHeaders = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: { "content-type": "application/json", ...headers } }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8");
        resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : {} });
        req.destroy();
      });
    });
    // A server that answers before the body is all sent closes the socket under the writes
    // still going: that error comes after its answer, which is what the test reads.
    req.on("error", (e) => (answered || stopAfterHeaders ? undefined : reject(e)));
    if (stopAfterHeaders) {
      req.flushHeaders();
      return;
    }
    (async () => {
      for (const c of chunks) {
        if (answered || req.destroyed) return;
        if (!req.write(c)) await new Promise((r) => req.once("drain", r).once("close", r));
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

const ingestBody = (content: string) => JSON.stringify({ userId: "u", messages: [{ role: "user", content }] });

describe("the body limit of /v1/sessions/*", () => {
  it("takes a body of a declared length within the limit", async () => {
    const body = ingestBody("hello");
    const r = await send("POST", `/v1/sessions/${uid("s")}/messages`, { "content-length": String(Buffer.byteLength(body)) }, [body]);
    expect(r.status).toBe(201);
  });

  it("refuses a declared length past the limit from the header, before the body is sent", async () => {
    const r = await send("POST", `/v1/sessions/${uid("s")}/messages`, { "content-length": String(MAX_BODY + 1) }, [], true);
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe("PAYLOAD_TOO_LARGE");
    expect(r.body.error?.message).toMatch(/exceeds 39 MiB/);
  });

  it("takes a chunked body within the limit", async () => {
    const small = ingestBody("chunked hello");
    const ok = await send("POST", `/v1/sessions/${uid("s")}/messages`, { "transfer-encoding": "chunked" }, [small.slice(0, 10), small.slice(10)]);
    expect(ok.status).toBe(201);
  });

  it("counts a body of no declared length as it streams, and refuses it past the limit, storing nothing", async () => {
    // In process (app.request): the Request carries no content-length, so the body is read
    // through the streaming limit. Over a socket, a client still sending a chunked body this
    // large saw its connection closed instead of the 413 (@hono/node-server drains a refused
    // body for at most 500 ms, then closes): noted in BENCHMARKS.md, not changed.
    const s = uid("s");
    const body = `{"userId":"u","messages":[{"role":"user","content":"${"a".repeat(MAX_BODY)}"}]}`;
    const res = await strata.app.request(`/v1/sessions/${s}/messages`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(res.status).toBe(413);
    expect(((await res.json()) as Answer["body"]).error?.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await send("GET", `/v1/sessions/${s}/messages`, {}, [])).status).toBe(404);
  });

  it("answers a request without a body (the context call) as before", async () => {
    const s = uid("s");
    const body = ingestBody("what is on the calendar");
    expect((await send("POST", `/v1/sessions/${s}/messages`, { "content-length": String(Buffer.byteLength(body)) }, [body])).status).toBe(201);
    const r = await send("GET", `/v1/sessions/${s}/context`, {}, []);
    expect(r.status).toBe(200);
  });
});

describe("the body limit of /v1/search", () => {
  const searchBody = (query: string) => JSON.stringify({ userId: "u", query });

  it("takes the largest valid query, every character escaped", async () => {
    // Written as \\u escapes, 4,096 characters are 24 KiB of JSON: still within the limit.
    const body = `{"userId":"u","query":"${"\\u00e9".repeat(MAX_QUERY_LENGTH)}"}`;
    expect(Buffer.byteLength(body)).toBeGreaterThan(24 * 1024);
    const r = await send("POST", "/v1/search", { "content-length": String(Buffer.byteLength(body)) }, [body]);
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body.results)).toBe(true);
  });

  it("refuses a declared length past the limit from the header, before the body is sent", async () => {
    const r = await send("POST", "/v1/search", { "content-length": String(MAX_SEARCH_BODY_BYTES + 1) }, [], true);
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe("PAYLOAD_TOO_LARGE");
    expect(r.body.error?.message).toBe("request body exceeds 64 KiB");
  });

  it("refuses a chunked body past the limit as it streams", async () => {
    const big = searchBody("a ".repeat(MAX_SEARCH_BODY_BYTES));
    const r = await send("POST", "/v1/search", { "transfer-encoding": "chunked" }, [big.slice(0, 1000), big.slice(1000)]);
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("takes a chunked body within the limit, and still judges the query itself", async () => {
    const ok = searchBody("calendar");
    expect((await send("POST", "/v1/search", { "transfer-encoding": "chunked" }, [ok.slice(0, 10), ok.slice(10)])).status).toBe(200);
    const long = searchBody("a".repeat(MAX_QUERY_LENGTH + 1));
    const r = await send("POST", "/v1/search", { "content-length": String(Buffer.byteLength(long)) }, [long]);
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(/query must be at most 4096 characters/);
  });
});
