// Request and response schemas of HTTP API v1. They validate input and generate
// /openapi.json, so the document cannot drift from what the server accepts.

import { z } from "@hono/zod-openapi";
import { ROLES } from "../core/types.ts";

export const MAX_CONTENT_BYTES = 64 * 1024;
export const MAX_MESSAGES_PER_REQUEST = 500;
export const MAX_ID_LENGTH = 128;
export const MAX_QUERY_LENGTH = 4096;
/** A search body: one query (every character escaped as \uXXXX is six bytes) and a few ids, with room to spare. */
export const MAX_SEARCH_BODY_BYTES = 64 * 1024;

const encoder = new TextEncoder();
/** UTF-8 size, skipping the encode when the string cannot possibly exceed the limit. */
const utf8Bytes = (s: string) => (s.length * 3 <= MAX_CONTENT_BYTES ? s.length : encoder.encode(s).length);

// Control characters in ids break logs, headers and keys in other stores.
const idString = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(MAX_ID_LENGTH, `${what} must be at most ${MAX_ID_LENGTH} characters`)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), `${what} must not contain control characters`);

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "INVALID_REQUEST" }),
      message: z.string().openapi({ example: "messages[0].content: content must not be empty" }),
    }),
  })
  .openapi("Error");

export const SessionParams = z.object({
  sessionId: idString("sessionId").openapi({ param: { name: "sessionId", in: "path" }, example: "s-42" }),
});

export const MessageInput = z
  .object({
    id: idString("id").optional().openapi({ description: "Client id, unique per tenant; re-sending it is a no-op." }),
    role: z.enum(ROLES, { message: `role must be one of ${ROLES.join(", ")}` }),
    content: z
      .string({ message: "content must be a string" })
      .refine((s) => s.trim().length > 0, "content must not be empty")
      .refine((s) => utf8Bytes(s) <= MAX_CONTENT_BYTES, `content must be at most ${MAX_CONTENT_BYTES} bytes (64 KiB)`),
    name: z.string().min(1).max(MAX_ID_LENGTH).optional().openapi({ description: "Speaker name" }),
    createdAt: z.iso.datetime({ offset: true, message: "createdAt must be an ISO-8601 date-time" }).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("MessageInput");

export const IngestBody = z
  .object({
    userId: idString("userId"),
    messages: z
      .array(MessageInput)
      .min(1, "messages must hold at least one message")
      .max(MAX_MESSAGES_PER_REQUEST, `at most ${MAX_MESSAGES_PER_REQUEST} messages per request`),
  })
  .openapi("IngestRequest");

export const IngestResponse = z
  .object({ messages: z.array(z.object({ id: z.string(), seq: z.number().int() })) })
  .openapi("IngestResponse");

export const MessageItem = z
  .object({
    id: z.string(),
    sessionId: z.string(),
    seq: z.number().int(),
    role: z.enum(ROLES),
    name: z.string().nullable(),
    content: z.string(),
    createdAt: z.string(),
    tokens: z.number().int(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    score: z.number().optional(),
    sources: z.array(z.string()).optional(),
    why: z.array(z.string()).optional().openapi({ description: 'Search results: why it ranks there, e.g. ["keyword", "neighbour of m12", "date match"]' }),
  })
  .openapi("MessageItem");

// Every item of the context says where it came from, how it scored and why it was chosen.
const provenance = {
  tier: z.enum(["hot", "archive", "keyword", "vectors", "graph"]).openapi({ description: "The tier that supplied the item" }),
  score: z.number().openapi({ description: "Its score, comparable within its part of the context" }),
  why: z.array(z.string()).openapi({ description: 'Machine-readable reasons it was chosen, e.g. ["keyword", "neighbour of m12", "date match"], ["recent window"]' }),
};

export const ContextItem = MessageItem.extend({ ...provenance, sources: z.array(z.string()) }).openapi("ContextItem");

const intParam = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

export const HistoryQuery = z.object({
  limit: intParam("limit", 1, 1000).optional().openapi({ type: "integer", example: "50" }),
  before: intParam("before", 0, 2 ** 31 - 1).optional().openapi({ type: "integer", description: "Only messages with seq below this" }),
  after: intParam("after", 0, 2 ** 31 - 1).optional().openapi({ type: "integer", description: "Only messages with seq above this" }),
});

export const HistoryResponse = z
  .object({ sessionId: z.string(), messages: z.array(MessageItem), hasMore: z.boolean() })
  .openapi("HistoryResponse");

export const ContextQuery = z.object({
  userId: idString("userId").optional(),
  query: z.string().max(MAX_QUERY_LENGTH, `query must be at most ${MAX_QUERY_LENGTH} characters`).optional(),
  budget: intParam("budget", 1, 200_000).optional().openapi({ type: "integer", example: "2000", description: "Token budget (default 2000)" }),
});

export const ContextResponse = z
  .object({
    sessionId: z.string(),
    userId: z.string(),
    recent: z.array(ContextItem),
    summary: z.object({ content: z.string(), upToSeq: z.number().int(), tokens: z.number().int(), ...provenance }).nullable(),
    recalled: z.array(ContextItem),
    facts: z.array(
      z.object({
        subject: z.string(),
        predicate: z.string(),
        object: z.string(),
        weight: z.number(),
        messageIds: z.array(z.string()),
        tokens: z.number().int(),
        ...provenance,
      }),
    ),
    memories: z.array(
      z.object({
        id: z.string(),
        kind: z.string(),
        content: z.string(),
        priority: z.number().int(),
        tokens: z.number().int(),
        sourceMessageId: z.string().nullable(),
        ...provenance,
      }),
    ),
    prompt: z.string(),
    stablePrefixChars: z.number().int().openapi({
      description: "Length of the prompt's stable prefix (summary, strongest facts, decisions and tasks): the same text for the same session state and budget, whatever the query",
    }),
    tokens: z.number().int(),
    budget: z.number().int(),
    degraded: z.array(z.string()),
    timings: z.record(z.string(), z.number()),
  })
  .openapi("ContextResponse");

export const SearchBody = z
  .object({
    userId: idString("userId"),
    query: z.string().refine((s) => s.trim().length > 0, "query must not be empty").pipe(z.string().max(MAX_QUERY_LENGTH, `query must be at most ${MAX_QUERY_LENGTH} characters`)),
    limit: z.number().int("limit must be a whole number").min(1, "limit must be at least 1").max(100, "limit must be at most 100").optional(),
    sessionId: idString("sessionId").optional(),
  })
  .openapi("SearchRequest");

export const SearchResponse = z
  .object({ results: z.array(MessageItem), degraded: z.array(z.string()), timings: z.record(z.string(), z.number()) })
  .openapi("SearchResponse");

export const StatusResponse = z
  .object({
    queue: z.object({
      pending: z.number().int(),
      inFlight: z.number().int(),
      failed: z.number().int(),
      oldestPendingAgeMs: z.number().nullable(),
    }),
    summaries: z.object({
      due: z.number().int().openapi({ description: "Sessions whose next rolling summary is due but not yet queued; the summary schedule (every STRATA_SUMMARY_EVERY_SECONDS in the embedded server) queues them, and they then count in queue.pending" }),
    }),
    indexes: z.object({
      building: z.number().int().openapi({ description: "Users whose approximate vector index this process is building (their queries are exact scans until it is ready) or laying out again after much growth (the index answers meanwhile)" }),
    }),
  })
  .openapi("StatusResponse");

export const HealthResponse = z
  .object({
    status: z.enum(["ok", "degraded", "down"]),
    tiers: z.array(
      z.object({
        tier: z.string(),
        adapter: z.string(),
        status: z.enum(["ok", "degraded", "down"]),
        latencyMs: z.number(),
        detail: z.string().optional(),
      }),
    ),
  })
  .openapi("HealthResponse");

export const ForgetReceiptSchema = z
  .object({
    receipt: z.string().openapi({ description: "Receipt id: GET /v1/forget/{receipt} shows progress tier by tier" }),
    scope: z.enum(["message", "session", "user"]),
    targetId: z.string(),
    messages: z.number().int(),
    tiers: z.object({
      archive: z.enum(["pending", "done"]),
      hot: z.enum(["pending", "done"]),
      vectors: z.enum(["pending", "done"]),
      graph: z.enum(["pending", "done"]),
    }),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .openapi("ForgetReceipt");

export const IdParam = (name: string) =>
  z.object({ [name]: idString(name).openapi({ param: { name, in: "path" } }) });
