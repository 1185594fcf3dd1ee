// The Node runtime's fetch against a local HTTP server: what it sends, what it answers, and
// what it leaves to the platform's fetch.

import http from "node:http";
import { getEventListeners } from "node:events";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeFetch } from "./node-fetch.ts";

let server: http.Server;
let base: string;
const fetch = createNodeFetch();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url!, "http://x");
      if (url.pathname === "/echo") {
        res.setHeader("content-type", "application/json");
        res.setHeader("x-seen", "1");
        res.end(JSON.stringify({ method: req.method, body, headers: req.headers }));
      } else if (url.pathname === "/gzip") {
        res.setHeader("content-encoding", "gzip");
        res.end(zlib.gzipSync("squeezed ".repeat(100)));
      } else if (url.pathname === "/bom") {
        res.setHeader("content-type", "application/json; charset=utf-8");
        res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"word":"naïve"}')]));
      } else if (url.pathname === "/form") {
        res.setHeader("content-type", "application/x-www-form-urlencoded");
        res.end("q=a+b&n=1");
      } else if (url.pathname === "/not-json") {
        res.end("{ not json");
      } else if (url.pathname === "/empty") {
        res.statusCode = 204;
        res.end();
      } else if (url.pathname === "/error") {
        res.statusCode = 400;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ error: "bad" }));
      } else if (url.pathname === "/odd-status") {
        res.statusCode = 999;
        res.end("?");
      } else if (url.pathname === "/moved") {
        res.statusCode = 307;
        res.setHeader("location", "/echo");
        res.end();
      } else if (url.pathname === "/slow") {
        setTimeout(() => res.end("late"), 300);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("createNodeFetch", () => {
  it("sends the method, headers and a string body with its length, and answers a standard Response", async () => {
    const res = await fetch(`${base}/echo`, { method: "post", headers: { "content-type": "application/json", "x-token": "t" }, body: '{"a":"é"}' });
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.headers.get("x-seen")).toBe("1");
    const seen = (await res.json()) as { method: string; body: string; headers: Record<string, string> };
    expect(seen.method).toBe("POST");
    expect(seen.body).toBe('{"a":"é"}');
    expect(seen.headers["x-token"]).toBe("t");
    expect(seen.headers["content-length"]).toBe(String(Buffer.byteLength('{"a":"é"}')));
  });

  it("sends bytes, an ArrayBuffer and form parameters as bodies, and a URL object as the address", async () => {
    for (const [body, expected] of [
      [new TextEncoder().encode("bytes"), "bytes"],
      [new TextEncoder().encode("buffer").buffer, "buffer"],
      [new URLSearchParams({ q: "a b" }), "q=a+b"],
    ] as const) {
      const seen = (await (await fetch(new URL(`${base}/echo`), { method: "POST", body })).json()) as { body: string; headers: Record<string, string> };
      expect(seen.body).toBe(expected);
      if (body instanceof URLSearchParams) expect(seen.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);
    }
  });

  it("decodes a gzip answer and drops the encoding it no longer has", async () => {
    const res = await fetch(`${base}/gzip`);
    expect(await res.text()).toBe("squeezed ".repeat(100));
    expect(res.headers.get("content-encoding")).toBeNull();
  });

  it("answers a 204 without a body, and an error status as a Response, not a rejection", async () => {
    const empty = await fetch(`${base}/empty`, { method: "DELETE" });
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const bad = await fetch(`${base}/error`, { method: "POST", body: "{}" });
    expect(bad.ok).toBe(false);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "bad" });
  });

  it("reads the answer as a standard Response of the same bytes does, with each reader", async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"word":"naïve"}')]);
    const standard = () => new Response(bytes, { headers: { "content-type": "application/json; charset=utf-8" } });
    expect(await (await fetch(`${base}/bom`)).text()).toBe(await standard().text());
    expect(await (await fetch(`${base}/bom`)).json()).toEqual(await standard().json());
    expect(await (await fetch(`${base}/bom`)).json()).toEqual({ word: "naïve" });
    expect(new Uint8Array(await (await fetch(`${base}/bom`)).arrayBuffer())).toEqual(new Uint8Array(await standard().arrayBuffer()));
    expect(await (await fetch(`${base}/bom`)).bytes()).toEqual(await standard().bytes());
    const blob = await (await fetch(`${base}/bom`)).blob();
    expect(blob.type).toBe((await standard().blob()).type);
    expect(blob.type).toBe("application/json;charset=utf-8");
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array(bytes));
    // A form answer: formData parses it, once, as the standard Response does.
    const form = await fetch(`${base}/form`);
    const standardForm = new Response("q=a+b&n=1", { headers: { "content-type": "application/x-www-form-urlencoded" } });
    const [got, want] = [await form.formData(), await standardForm.formData()];
    expect([got.get("q"), got.get("n")]).toEqual([want.get("q"), want.get("n")]);
    expect(got.get("q")).toBe("a b");
    expect(form.bodyUsed).toBe(true);
    expect(await form.text().catch((e: unknown) => e)).toBeInstanceOf(TypeError);
    const readFirst = await fetch(`${base}/form`);
    await readFirst.text();
    expect(await readFirst.formData().catch((e: unknown) => e)).toBeInstanceOf(TypeError);
    // No body: text is empty, and json fails as the standard one does.
    expect(await (await fetch(`${base}/empty`)).text()).toBe("");
    const noJson = await (await fetch(`${base}/empty`)).json().catch((e: unknown) => e);
    const standardNoJson = await new Response(null).json().catch((e: unknown) => e);
    expect(noJson).toBeInstanceOf(SyntaxError);
    expect(standardNoJson).toBeInstanceOf(SyntaxError);
    expect(await (await fetch(`${base}/not-json`)).json().catch((e: unknown) => e)).toBeInstanceOf(SyntaxError);
  });

  it("reads a body once: a second read rejects and a clone after it throws, as the standard Response does", async () => {
    for (const read of [(r: Response) => r.json(), (r: Response) => r.text(), (r: Response) => r.arrayBuffer(), (r: Response) => r.bytes(), (r: Response) => r.blob()]) {
      const res = await fetch(`${base}/echo`);
      expect(res.bodyUsed).toBe(false);
      await read(res);
      expect(res.bodyUsed).toBe(true);
      for (const again of [(r: Response) => r.json(), (r: Response) => r.text(), (r: Response) => r.arrayBuffer(), (r: Response) => r.formData()]) {
        expect(await again(res).catch((e: unknown) => e)).toBeInstanceOf(TypeError);
      }
      expect(() => res.clone()).toThrow(TypeError);
    }
  });

  it("clones an unread answer into two that each read it whole, the reads' bytes their own", async () => {
    const res = await fetch(`${base}/bom`);
    const copy = res.clone();
    expect(copy).toBeInstanceOf(Response);
    expect(copy.status).toBe(200);
    expect(copy.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const first = new Uint8Array(await copy.arrayBuffer());
    first.fill(0);
    expect(await res.json()).toEqual({ word: "naïve" });
    expect(copy.bodyUsed).toBe(true);
  });

  it("gives the body as a stream, and then reads only through it", async () => {
    const res = await fetch(`${base}/bom`);
    const stream = res.body!;
    expect(stream).toBeInstanceOf(ReadableStream);
    expect(res.body).toBe(stream);
    const chunks: Uint8Array[] = [];
    const reader = stream.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
    expect(Buffer.concat(chunks).subarray(3).toString("utf8")).toBe('{"word":"naïve"}');
    expect(res.bodyUsed).toBe(true);
    expect(await res.text().catch((e: unknown) => e)).toBeInstanceOf(TypeError);
    // Asked for before any read, the stream leaves the other readers to it.
    const other = await fetch(`${base}/bom`);
    expect(other.body).toBeInstanceOf(ReadableStream);
    expect(await other.json()).toEqual({ word: "naïve" });
    expect(other.bodyUsed).toBe(true);
  });

  it("rejects an answer the Response class cannot hold (a status past 599) rather than throwing out of its handler", async () => {
    const e = await fetch(`${base}/odd-status`).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe("fetch failed");
    expect((e as Error).cause).toBeInstanceOf(RangeError);
  });

  it("follows a redirect through the platform's fetch", async () => {
    const res = await fetch(`${base}/moved`, { method: "POST", body: "again" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { body: string }).body).toBe("again");
  });

  it("rejects with the signal's reason, before the request or during it, and removes its listener once answered", async () => {
    const before = new AbortController();
    before.abort(new Error("stop"));
    await expect(fetch(`${base}/echo`, { signal: before.signal })).rejects.toThrow("stop");

    const during = new AbortController();
    const pending = fetch(`${base}/slow`, { signal: during.signal });
    setTimeout(() => during.abort(new DOMException("too slow", "TimeoutError")), 20);
    await expect(pending).rejects.toMatchObject({ name: "TimeoutError" });

    const kept = new AbortController();
    const res = await fetch(`${base}/echo`, { signal: kept.signal });
    await res.text();
    expect(getEventListeners(kept.signal, "abort")).toHaveLength(0);
  });

  it("rejects a refused connection as fetch does: a TypeError with the cause", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const e = await fetch(`http://127.0.0.1:${port}/`).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe("fetch failed");
    expect(((e as Error).cause as { code?: string }).code).toBe("ECONNREFUSED");
  });

  it("sends a request once more when its kept-alive socket turns out closed before any answer, and not twice", async () => {
    // The second request on each socket finds it reset, as when the server closed an idle
    // socket just as it was reused.
    let requests = 0;
    let resetAll = false;
    const perSocket = new WeakMap<object, number>();
    const flaky = http.createServer((req, res) => {
      requests++;
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n === 2 || resetAll) req.socket.destroy();
      else res.end("ok");
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(flaky.address() as { port: number }).port}/`;
    const own = createNodeFetch({ maxSockets: 1 });
    try {
      expect(await (await own(url, { method: "POST", body: "1" })).text()).toBe("ok");
      expect(await (await own(url, { method: "POST", body: "2" })).text()).toBe("ok"); // reset on the reused socket, sent again on a new one
      expect(requests).toBe(3);
      // The resent request's socket is itself reused next, and reset: sent again once more.
      expect(await (await own(url, { method: "POST", body: "3" })).text()).toBe("ok");
      expect(requests).toBe(5);
      // A resent request that fails again is not sent a third time.
      resetAll = true;
      const e = await own(url, { method: "POST", body: "4" }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(TypeError);
      expect(requests).toBe(7);
    } finally {
      flaky.closeAllConnections();
      await new Promise((r) => flaky.close(r));
    }
  });

  it("leaves a Request object and a streamed body to the platform's fetch", async () => {
    const viaRequest = await fetch(new Request(`${base}/echo`, { method: "POST", body: "req" }));
    expect(((await viaRequest.json()) as { body: string }).body).toBe("req");
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("streamed"));
        c.close();
      },
    });
    const viaStream = await fetch(`${base}/echo`, { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(((await viaStream.json()) as { body: string }).body).toBe("streamed");
  });
});
