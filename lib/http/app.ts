// The Hono app of HTTP API v1. Routes are declared with their zod schemas (createRoute), so
// validation and /openapi.json come from one source; handlers only translate HTTP to the
// services in lib/core/services and back. Every error leaves as
// `{ "error": { "code", "message" } }`.

import { OpenAPIHono, createRoute, type z } from "@hono/zod-openapi";
import type { Context, Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { StrataDeps } from "../core/deps.ts";
import { StrataError, isStrataError } from "../core/errors.ts";
import type { RequestGate } from "../core/request-gate.ts";
import type { Message } from "../core/types.ts";
import { assembleContext } from "../core/services/context.ts";
import { ingestMessages } from "../core/services/ingest.ts";
import { hybridSearch } from "../core/services/search.ts";
import { health, queueStatus } from "../core/services/status.ts";
import { forget } from "../core/services/forget.ts";
import type { ForgetReceipt, ForgetScope } from "../core/types.ts";
import { serverTimingHeader } from "../core/services/timing.ts";
import type { Turns } from "./turns.ts";
import {
  ContextQuery,
  ContextResponse,
  ErrorSchema,
  ForgetReceiptSchema,
  IdParam,
  HealthResponse,
  HistoryQuery,
  HistoryResponse,
  IngestBody,
  IngestResponse,
  MAX_CONTENT_BYTES,
  MAX_MESSAGES_PER_REQUEST,
  MAX_SEARCH_BODY_BYTES,
  SearchBody,
  SearchResponse,
  SessionParams,
  StatusResponse,
} from "./schemas.ts";

export type AuthMode =
  /** No key configured: every request is the default tenant (the server stays on loopback). */
  | { mode: "open"; tenantId: string }
  /** Every request needs `Authorization: Bearer <key>`; keys are looked up hashed. */
  | { mode: "keys" };

type Env = { Variables: { tenantId: string } };

/** SHA-256 of a key, hex: Web Crypto, so the app runs on edge runtimes as well as Node. */
export async function hashApiKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** Names the first problem zod found: "messages[3].content: content must not be empty". */
function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>(
    (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    "",
  );
  return path ? `${path}: ${issue.message}` : issue.message;
}

function validationError(issues: z.core.$ZodIssue[]): StrataError {
  const issue = issues[0]!;
  const last = issue.path[issue.path.length - 1];
  if (issue.code === "too_big" && last === "messages") {
    return new StrataError("too_large", "TOO_MANY_MESSAGES", describeIssue(issue));
  }
  if (last === "content" && issue.message.includes("bytes")) {
    return new StrataError("too_large", "CONTENT_TOO_LARGE", describeIssue(issue));
  }
  const extra = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : "";
  return new StrataError("validation", "INVALID_REQUEST", describeIssue(issue) + extra);
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const errors = {
  400: json(ErrorSchema, "Invalid request; the message names the field"),
  401: json(ErrorSchema, "Missing or unknown API key"),
  503: json(ErrorSchema, "A backing service did not answer"),
};

function toWire(m: Message, extra: { score?: number; sources?: string[]; why?: string[] } = {}) {
  return {
    id: m.id,
    sessionId: m.sessionId,
    seq: m.seq,
    role: m.role,
    name: m.name,
    content: m.content,
    createdAt: m.createdAt,
    tokens: m.tokens,
    metadata: m.metadata,
    ...extra,
  };
}

export interface AppOptions {
  /** Requests in flight, for the in-process job runner. */
  gate?: RequestGate;
  /**
   * Start one request handler per event-loop turn (lib/http/turns.ts): for a long-running
   * server, so new connections are accepted between requests under load. A Lambda function
   * serves one request at a time and has no use for it.
   */
  turns?: Turns;
}

export function createApp(deps: StrataDeps, auth: AuthMode, options: AppOptions = {}) {
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues);
    },
  });

  // Tells the in-process job runner when requests are being served (it yields to them).
  const gate = options.gate;
  if (gate) {
    app.use("*", async (_c, next) => {
      gate.enter();
      try {
        await next();
      } finally {
        gate.leave();
      }
    });
  }
  const turns = options.turns;
  if (turns) {
    // An ingest says so: the embedded archive's group commit waits for the ingests still
    // waiting for their turn (Turns.settled), and for nothing else.
    const ingestPath = /^\/v1\/sessions\/[^/]+\/messages$/;
    app.use("*", async (c, next) => {
      await turns.next(c.req.method === "POST" && ingestPath.test(c.req.path) ? "write" : undefined);
      await next();
    });
  }

  app.onError((err, c) => {
    if (isStrataError(err)) {
      if (err.status >= 500) deps.log.error("request failed", { path: c.req.path, code: err.code, error: err });
      return c.json(errorBody(err.code, err.message), err.status as 400);
    }
    if (err instanceof HTTPException) {
      const malformed = err.status === 400 && /json/i.test(err.message);
      return c.json(
        errorBody(malformed ? "INVALID_JSON" : "HTTP_ERROR", malformed ? "request body is not valid JSON" : err.message),
        err.status,
      );
    }
    deps.log.error("unhandled error", { path: c.req.path, error: err });
    return c.json(errorBody("INTERNAL", "internal error"), 500);
  });
  app.notFound((c) => c.json(errorBody("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`), 404));

  // Authentication: a key maps to a tenant; the hash is cached briefly so a hot read path
  // does not pay an archive round trip per request.
  const keyCache = new Map<string, { tenantId: string | null; until: number }>();
  app.use("/v1/*", async (c, next) => {
    if (auth.mode === "open") {
      c.set("tenantId", auth.tenantId);
      return next();
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new StrataError("unauthorized", "UNAUTHORIZED", "missing API key: send Authorization: Bearer <key>");
    const hash = await hashApiKey(m[1]!);
    let entry = keyCache.get(hash);
    if (!entry || entry.until < Date.now()) {
      entry = { tenantId: await deps.archive.tenantForKey(hash), until: Date.now() + 30_000 };
      if (keyCache.size > 10_000) keyCache.clear();
      keyCache.set(hash, entry);
    }
    if (!entry.tenantId) throw new StrataError("unauthorized", "UNAUTHORIZED", "unknown or revoked API key");
    c.set("tenantId", entry.tenantId);
    return next();
  });

  // 500 messages of 64 KiB each, plus JSON overhead, is the largest valid ingest body; a search
  // body holds one query of at most 4,096 characters and a few ids.
  const maxBody = MAX_MESSAGES_PER_REQUEST * MAX_CONTENT_BYTES * 1.25;
  // Hono's bodyLimit reads `c.req.raw.body` first, and under @hono/node-server that builds a
  // whole WHATWG Request for the incoming one (an AbortController registered through a WeakRef
  // and a FinalizationRegistry, which V8's scavenges keep alive into the old generation: every
  // context call did so). A request without a body, or with a declared length (Node's parser
  // holds the body to it), is judged from its headers; only a chunked body is counted as it
  // streams in.
  const limitBody = (max: number, size: string) => {
    const tooLarge = () => {
      throw new StrataError("too_large", "PAYLOAD_TOO_LARGE", `request body exceeds ${size}`);
    };
    const limitStream = bodyLimit({ maxSize: max, onError: tooLarge });
    return (c: Context, next: Next) => {
      if (c.req.method === "GET" || c.req.method === "HEAD") return next();
      const length = c.req.header("content-length");
      if (length !== undefined && /^\d+$/.test(length) && c.req.header("transfer-encoding") === undefined) {
        if (Number(length) > max) tooLarge();
        return next();
      }
      return limitStream(c, next);
    };
  };
  app.use("/v1/sessions/*", limitBody(maxBody, `${Math.round(maxBody / 2 ** 20)} MiB`));
  app.use("/v1/search", limitBody(MAX_SEARCH_BODY_BYTES, `${MAX_SEARCH_BODY_BYTES / 1024} KiB`));

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/sessions/{sessionId}/messages",
      summary: "Ingest messages into a session",
      request: { params: SessionParams, body: { content: { "application/json": { schema: IngestBody } }, required: true } },
      responses: {
        201: json(IngestResponse, "Stored ids and per-session sequence numbers"),
        ...errors,
        409: json(ErrorSchema, "An id was reused with different content, or the session belongs to another user"),
        413: json(ErrorSchema, "Too many messages or content too large"),
      },
    }),
    async (c) => {
      const { sessionId } = c.req.valid("param");
      const body = c.req.valid("json");
      const out = await ingestMessages(deps, { tenantId: c.get("tenantId"), sessionId, userId: body.userId, messages: body.messages });
      return c.json(out, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sessions/{sessionId}/messages",
      summary: "A session's history, paged by sequence number",
      request: { params: SessionParams, query: HistoryQuery },
      responses: { 200: json(HistoryResponse, "Messages ascending by seq"), ...errors, 404: json(ErrorSchema, "Unknown session") },
    }),
    async (c) => {
      const { sessionId } = c.req.valid("param");
      const q = c.req.valid("query");
      const tenantId = c.get("tenantId");
      const session = await deps.archive.getSession(tenantId, sessionId);
      if (!session) throw new StrataError("not_found", "SESSION_NOT_FOUND", `no session ${sessionId}`);
      const limit = q.limit ?? 50;
      // One extra row tells whether another page exists.
      const rows = await deps.archive.listMessages(tenantId, sessionId, { limit: limit + 1, before: q.before, after: q.after });
      const hasMore = rows.length > limit;
      const page = hasMore ? (q.after !== undefined ? rows.slice(0, limit) : rows.slice(1)) : rows;
      return c.json({ sessionId, messages: page.map((m) => toWire(m)), hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/sessions/{sessionId}/context",
      summary: "Assembled context for a session, packed into a token budget",
      request: { params: SessionParams, query: ContextQuery },
      responses: {
        200: json(ContextResponse, "Recent window, summary, recalled turns and facts, with the prompt"),
        ...errors,
        404: json(ErrorSchema, "Unknown session and no userId given"),
        409: json(ErrorSchema, "The session belongs to another user"),
      },
    }),
    async (c) => {
      const { sessionId } = c.req.valid("param");
      const q = c.req.valid("query");
      const out = await assembleContext(deps, {
        tenantId: c.get("tenantId"),
        sessionId,
        userId: q.userId,
        query: q.query,
        budget: q.budget ?? 2000,
      });
      c.header("Server-Timing", serverTimingHeader(out.timings));
      // Context items are already in wire form (assembleContext builds them that way).
      return c.json(out, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/search",
      summary: "Hybrid search over a user's long-term memory",
      request: { body: { content: { "application/json": { schema: SearchBody } }, required: true } },
      responses: { 200: json(SearchResponse, "Results, best first"), ...errors, 413: json(ErrorSchema, "Request body too large") },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const out = await hybridSearch(deps, {
        tenantId: c.get("tenantId"),
        userId: body.userId,
        query: body.query,
        limit: body.limit ?? 10,
        sessionId: body.sessionId,
      });
      c.header("Server-Timing", serverTimingHeader(out.timings));
      return c.json(
        {
          results: out.hits.map((h) => toWire(h.message, { score: h.score, sources: h.sources, why: h.why })),
          degraded: out.degraded,
          timings: out.timings,
        },
        200,
      );
    },
  );

  const receiptBody = (r: ForgetReceipt) => ({
    receipt: r.id,
    scope: r.scope,
    targetId: r.targetId,
    messages: r.messages,
    tiers: r.tiers,
    createdAt: r.createdAt,
    completedAt: r.completedAt,
  });
  const forgetRoute = (scope: ForgetScope, path: string, param: string) =>
    app.openapi(
      createRoute({
        method: "delete",
        path,
        summary: `Forget a ${scope} in every store`,
        description:
          "Removes the archive rows at once (leaving tombstones), clears the hot tier, and queues the purge of vectors and graph. Answers a receipt to follow.",
        request: { params: IdParam(param) },
        responses: {
          202: json(ForgetReceiptSchema, "Forgotten in the archive; derived tiers follow"),
          ...errors,
          404: json(ErrorSchema, `No such ${scope}`),
        },
      }),
      async (c) => {
        const id = (c.req.valid("param") as Record<string, string>)[param]!;
        const receipt = await forget(deps, { tenantId: c.get("tenantId"), scope, id });
        return c.json(receiptBody(receipt), 202);
      },
    );
  forgetRoute("message", "/v1/messages/{messageId}", "messageId");
  forgetRoute("session", "/v1/sessions/{sessionId}", "sessionId");
  forgetRoute("user", "/v1/users/{userId}", "userId");

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/forget/{receipt}",
      summary: "Progress of a forget request, tier by tier",
      request: { params: IdParam("receipt") },
      responses: { 200: json(ForgetReceiptSchema, "The receipt"), ...errors, 404: json(ErrorSchema, "Unknown receipt") },
    }),
    async (c) => {
      const { receipt: id } = c.req.valid("param") as Record<string, string>;
      const receipt = await deps.archive.getForgetReceipt(c.get("tenantId"), id!);
      if (!receipt) throw new StrataError("not_found", "RECEIPT_NOT_FOUND", `no forget receipt ${id}`);
      return c.json(receiptBody(receipt), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/status",
      summary: "Backlog of derived work for this tenant",
      responses: { 200: json(StatusResponse, "Queue counts"), ...errors },
    }),
    async (c) => c.json(await queueStatus(deps, c.get("tenantId")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/health",
      summary: "Adapter, status and latency of every tier",
      responses: { 200: json(HealthResponse, "All tiers answer"), ...errors, 503: json(HealthResponse, "The archive is down") },
    }),
    async (c) => {
      const h = await health(deps);
      return c.json(h, h.status === "down" ? 503 : 200);
    },
  );

  app.doc("/openapi.json", {
    openapi: "3.0.3",
    info: {
      title: "Strata",
      version: "1",
      description: "Memory service for chat agents. Every /v1 call takes `Authorization: Bearer <key>` when the server has keys.",
    },
  });

  return app;
}

export type StrataApp = ReturnType<typeof createApp>;
export type { Context };
