// The Upstash REST client's transport, over a fetch the caller gives (the Node runtime's
// node-fetch.ts), through the client's documented `Requester` seam: `new Redis(requester)`.
// The client's own transport calls the global fetch, and Node's fetch makes V8's scavenges
// keep each answer alive into the old generation (node-fetch.ts says why); the edge read path,
// which has no other fetch, keeps the client's own.
//
// It does what the client's transport does with this store's settings: a POST of the command
// as JSON to the URL and its path, the bearer token, read-your-writes through the
// `upstash-sync-token` header, answers in plain JSON (no base64), an error answer thrown as
// an UpstashError naming the command, and retries after a network error, `backoffMs` apart.
// The time limit is a timer cleared when the answer is in, not AbortSignal.timeout, whose
// signal Node keeps until it fires. A request that runs out of time is not retried.

import { errors, type Requester, type UpstashRequest, type UpstashResponse } from "@upstash/redis";

export interface FetchRequesterOptions {
  url: string;
  token: string;
  fetch: typeof fetch;
  timeoutMs: number;
  retries: number;
  backoffMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function fetchRequester(options: FetchRequesterOptions): Requester {
  const base = options.url.replace(/\/$/, "");
  const backoffMs = options.backoffMs ?? 25;
  const requester: Requester = {
    readYourWrites: true,
    upstashSyncToken: "",
    async request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
      if (req.onMessage) throw new errors.UpstashError("streaming commands are not supported by this transport");
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, "content-type": "application/json", ...req.headers };
      if (requester.readYourWrites) headers["upstash-sync-token"] = requester.upstashSyncToken ?? "";
      const target = [base, ...(req.path ?? [])].join("/");
      const body = JSON.stringify(req.body);

      let res: Response | null = null;
      let text = "";
      let error: unknown = null;
      for (let attempt = 0; attempt <= options.retries; attempt++) {
        if (attempt > 0) await sleep(backoffMs);
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${options.timeoutMs} ms`, "TimeoutError")), options.timeoutMs);
        try {
          res = await options.fetch(target, { method: "POST", headers, body, signal: controller.signal });
          text = await res.text();
          error = null;
          break;
        } catch (e) {
          if (controller.signal.aborted) throw e;
          res = null;
          error = e;
        } finally {
          clearTimeout(timer);
        }
      }
      if (!res) throw error ?? new Error("Exhausted all retries");

      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new errors.UpstashJSONParseError(text, { cause: e });
      }
      if (!res.ok) throw new errors.UpstashError(`${(parsed as { error?: unknown }).error}, command was: ${body}`);
      if (requester.readYourWrites) requester.upstashSyncToken = res.headers.get("upstash-sync-token") ?? "";
      return parsed as UpstashResponse<TResult>;
    },
  };
  return requester;
}
