// A fetch for the Node runtime's HTTP tiers (the Upstash hot store, the Pinecone index), over
// node:http and node:https with keep-alive agents. Node only: the edge read path keeps the
// platform's fetch (functions/edge.ts passes none).
//
// Why not Node's own fetch (undici): each of its requests registers the request's
// AbortController through a WeakRef and a FinalizationRegistry, and V8's scavenges keep what
// those reach. With a 64 MB young generation, a 738-message session's context call over the
// managed stand-ins promoted 2.2 MB into the old generation every 40 calls, and each scavenge
// took 4-19 ms (one call in forty held for that long; a mark-compact every few seconds to
// free it again). The same requests over node:http promote nothing and scavenge in under
// 0.5 ms (bench: a loop of 54 KB answers, 0.96 → 0.79 ms a request).
//
// What it does: one request per call, the body a string, bytes or URLSearchParams; the answer
// read whole into a standard Response (gzip, deflate and br decoded; see BufferedResponse); the caller's
// AbortSignal honoured, its listener removed when the answer is in; a request whose kept-alive
// socket turns out closed before any answer is sent once more. Anything else it leaves
// to the platform's fetch: a Request object or a streamed body as input, a redirect answered
// to a method that follows redirects (the APIs it serves answer none).

import http from "node:http";
import https from "node:https";
import zlib from "node:zlib";

type Fetch = typeof fetch;

export interface NodeFetchOptions {
  /** Sockets per host (default 64). */
  maxSockets?: number;
}

const NO_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

function bodyBytes(body: BodyInit | null | undefined, headers: Headers): Buffer | null | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof URLSearchParams) {
    if (!headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
    return Buffer.from(body.toString(), "utf8");
  }
  return undefined; // a stream, Blob or FormData: the platform's fetch
}

function decoded(buffer: Buffer, encoding: string | undefined): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return zlib.gunzipSync(buffer);
    case "deflate":
      return zlib.inflateSync(buffer);
    case "br":
      return zlib.brotliDecompressSync(buffer);
    default:
      return buffer;
  }
}

const utf8 = new TextDecoder();

/**
 * A Response whose body is already in memory, read from it without a stream. Built with a
 * body, undici's Response makes a ReadableStream of it, and json() reads that stream back
 * through the web streams' machinery before it parses; the Pinecone client also clones every
 * answer (a tee of that stream) for its middleware. For the managed tiers' answers (a vector
 * query's matches, the hot window) that cost more than the request: in-process against the
 * Pinecone stand-in, a 60-match query took 0.82-0.97 ms of the caller's CPU through the
 * Response and 0.49-0.65 through node:http alone (BENCHMARKS.md, forty-eighth round).
 *
 * json(), text(), arrayBuffer(), bytes() and blob() read the bytes as the standard ones do
 * (UTF-8 without its byte order mark; a body read once is used); clone() shares the bytes,
 * which nothing writes. Whoever asks for the `body` stream gets a standard Response's, and
 * from then on every read goes through that Response, so the body is still read once; asked
 * for after a read here, the stream is null (a standard Response gives its spent one).
 */
class BufferedResponse extends Response {
  readonly #payload: Buffer | null;
  readonly #init: ResponseInit;
  #used = false;
  #standard: Response | null = null;

  constructor(payload: Buffer | null, init: ResponseInit) {
    super(null, init);
    this.#payload = payload;
    this.#init = init;
  }

  /** The standard Response of the same answer, made once the stream is asked for. */
  #stream(): Response {
    return (this.#standard ??= new Response(this.#payload as unknown as BodyInit | null, this.#init));
  }

  /** The bytes, marking the body used; a TypeError, as the standard reads give, when it was. */
  #take(): Buffer | null {
    if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
    this.#used = true;
    return this.#payload;
  }

  override get body(): Response["body"] {
    // A body already read here has no stream to give (a standard Response gives its spent one).
    if (this.#used && !this.#standard) return null;
    return this.#stream().body;
  }

  override get bodyUsed(): boolean {
    return this.#standard ? this.#standard.bodyUsed : this.#used;
  }

  /**
   * One read of the body: through the standard Response once there is one, else `read` of the
   * bytes (taken: the body is used), its failure a rejection as the standard readers give.
   */
  #read<T>(standard: (r: Response) => Promise<T>, read: (bytes: Buffer | null) => T | Promise<T>): Promise<T> {
    if (this.#standard) return standard(this.#standard);
    try {
      return Promise.resolve(read(this.#take()));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  override text(): Promise<string> {
    return this.#read((r) => r.text(), (bytes) => (bytes ? utf8.decode(bytes) : ""));
  }

  override json(): Promise<any> {
    return this.#read((r) => r.json(), (bytes) => JSON.parse(bytes ? utf8.decode(bytes) : ""));
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return this.#read((r) => r.arrayBuffer(), (bytes) => (bytes ? new Uint8Array(bytes).buffer : new ArrayBuffer(0)));
  }

  override bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.arrayBuffer().then((b) => new Uint8Array(b));
  }

  override blob(): Promise<Blob> {
    // The standard Response's own, for its type: the content type's MIME type, serialized.
    return this.#read((r) => r.blob(), (bytes) => new Response(bytes as unknown as BodyInit | null, this.#init).blob());
  }

  override formData(): Promise<FormData> {
    // The standard Response parses form bodies: made from the bytes taken here.
    return this.#read((r) => r.formData(), () => this.#stream().formData());
  }

  override clone(): Response {
    if (this.#standard) return this.#standard.clone();
    if (this.#used) throw new TypeError("Response.clone: Body has already been consumed.");
    return new BufferedResponse(this.#payload, { status: this.status, statusText: this.statusText, headers: new Headers(this.headers) });
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

export function createNodeFetch(options: NodeFetchOptions = {}): Fetch {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64, scheduling: "lifo" as const };
  const agents = { "http:": new http.Agent(agentOptions), "https:": new https.Agent(agentOptions) };
  const platform: Fetch = (input, init) => globalThis.fetch(input, init);

  const nodeFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (input instanceof Request) return platform(input, init);
    const url = input instanceof URL ? input : new URL(input);
    const protocol = url.protocol as keyof typeof agents;
    const method = (init.method ?? "GET").toUpperCase();
    const headers = new Headers(init.headers);
    const body = bodyBytes(init.body, headers);
    if (body === undefined || !(protocol in agents)) return platform(input, init);
    if (body) headers.set("content-length", String(body.length));
    const outgoing: Record<string, string> = {};
    headers.forEach((value, name) => {
      outgoing[name] = value;
    });
    const signal = init.signal ?? null;
    if (signal?.aborted) return Promise.reject(abortReason(signal));

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      const done = () => {
        settled = true;
        signal?.removeEventListener("abort", onAbort);
      };
      const fail = (e: unknown) => {
        if (settled) return;
        done();
        reject(e);
      };
      let req: http.ClientRequest;
      const onAbort = () => {
        const reason = abortReason(signal!);
        req.destroy(reason instanceof Error ? reason : undefined);
        fail(reason);
      };
      const send = (again: boolean) => {
        let answered = false;
        req = (protocol === "https:" ? https : http).request(url, { method, agent: agents[protocol], headers: outgoing }, (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (e) => fail(new TypeError("fetch failed", { cause: e })));
          res.on("end", () => {
            if (settled) return;
            const status = res.statusCode ?? 0;
            if (REDIRECT_STATUS.has(status) && init.redirect !== "manual") {
              done();
              platform(input, init).then(resolve, reject);
              return;
            }
            // The answer as a Response; one the Response class refuses (a status outside
            // 200-599, a header value it will not hold) or a body that does not decode fails
            // the request, instead of throwing in this handler, where nothing would catch it.
            let response: Response;
            try {
              const payload = method === "HEAD" || NO_BODY_STATUS.has(status) ? null : decoded(Buffer.concat(chunks), res.headers["content-encoding"]);
              const answer = new Headers();
              const raw = res.rawHeaders;
              for (let i = 0; i + 1 < raw.length; i += 2) {
                // The body is handed over decoded; its encoding and length no longer describe it.
                const name = raw[i]!.toLowerCase();
                if (payload && res.headers["content-encoding"] && (name === "content-encoding" || name === "content-length")) continue;
                answer.append(raw[i]!, raw[i + 1]!);
              }
              response = new BufferedResponse(payload, { status, statusText: res.statusMessage ?? "", headers: answer });
            } catch (e) {
              fail(new TypeError("fetch failed", { cause: e }));
              return;
            }
            done();
            resolve(response);
          });
        });
        req.on("error", (e: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed while it sat idle (a Lambda thawed after
          // minutes, a load balancer's idle timeout) fails as it is reused, before any answer:
          // the request is sent once more on a new socket, as Node's documentation advises.
          if (!again && !answered && !settled && req.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE")) {
            send(true);
            return;
          }
          fail(new TypeError("fetch failed", { cause: e }));
        });
        req.end(body ?? undefined);
      };
      send(false);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
  return nodeFetch as Fetch;
}
