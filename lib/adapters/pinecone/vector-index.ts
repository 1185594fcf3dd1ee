// VectorIndex on Pinecone (a dense serverless index, cosine metric), through the v9 client's
// data plane only. The choices below are not obvious:
//
// Namespaces: one per tenant, `${namespacePrefix}#${tenant}` (prefix = deployment stage).
//   - Isolation: a tenant's vectors cannot show up in another tenant's query whatever the
//     filter says; every query still filters on tenantId and userId as well.
//   - Cost: serverless reads are billed by the size of the namespace a query scans, so a
//     tenant pays for its own vectors, not for every tenant's.
//   - Counting a tenant is free: describe_index_stats reports each namespace's size, and it is
//     the only count serverless offers (a filtered describe_index_stats is pod-only).
//   - Stages (production, preview stacks, tests) share an index without sharing a namespace;
//     tearing one down is deleteAll on the namespaces under its prefix
//     (deletePineconeNamespaces below). `#` cannot occur in a prefix nor in an encoded tenant,
//     so prefix "pr" with tenant "1-x" never meets prefix "pr-1" with tenant "x".
//   - Limits: serverless allows many namespaces per index (100,000 on paid plans) but not
//     millions, so users are not namespaces: a tenant may have millions of users.
//
// Vector ids: `${user}#${kind}#${item}`. Pinecone's only cheap enumeration is list-by-prefix
// (metadata is not enumerable, and delete-by-filter was long unsupported on serverless), so
// the user leads the id: count(tenant, user) is a paged list of the prefix `${user}#`, and
// deleteByUser is that list followed by deletes by id, which work on every serverless index.
// The cost falls on deleteByIds, which gets no user: it looks the vectors up with
// fetch_by_metadata on `itemId` within the tenant's namespace, then deletes them by id. That
// lookup is as eventually consistent as every serverless read: a vector upserted a moment
// before may be missed, so the forget worker should re-run a forget after a short delay (it
// is idempotent), and an item never changes user (message, summary and memory ids are unique
// per tenant and tied to one user by the archive), so keying by user loses nothing.
//
// Id parts: user and item ids are client-supplied (≤ 128 characters, any Unicode but
// control characters); Pinecone ids and namespaces are at most 512 characters and are kept
// to printable ASCII here. Each part is percent-encoded (ids like "msg-42" stay readable, `#`
// and non-ASCII are escaped), and a part whose encoding exceeds 200 characters becomes `$`
// plus the base64url SHA-256 of its UTF-16 code units (`$` is always escaped by the encoding, so the
// two forms never meet). A vector id is therefore at most 200 + 1 + 7 + 1 + 200 = 409
// characters. The raw ids travel in metadata, which is where matches are read from.
//
// Vectors: sent as unit vectors (the cosine is the same, and tiny or huge inputs stay in
// float32 range). Pinecone refuses an all-zero dense vector ("Dense vectors must contain at
// least one non-zero value"); a zero vector has no direction and a cosine of 0 with anything,
// so it is not stored: its upsert deletes whatever vector the key held, and it is never
// recalled. A zero query vector likewise finds nothing.
//
// Metric: the adapter needs a cosine index. It reads the metric from describe_index_stats
// (the generated data-plane API: the client's Index.describeIndexStats drops that field), once
// before the first operation and on every ping, and refuses any other metric with a config
// error. The host is used as given (http:// works, for local stand-ins); with only an index
// name, it is resolved once through describe_index on the control plane.

import { Pinecone, type Index, type RecordMetadata } from "@pinecone-database/pinecone";
import {
  Configuration,
  VectorOperationsApi,
  X_PINECONE_API_VERSION,
  type IndexDescription,
} from "@pinecone-database/pinecone/dist/pinecone-generated-ts-fetch/db_data/index.js";
import { StrataError, upstream } from "../../core/errors.ts";
import type { VectorIndex, VectorKind, VectorMatch, VectorRecord } from "../../core/ports.ts";

export type PineconeVectorIndexOptions =
  | {
      /** A client built by the caller; it is not closed (it holds nothing to close anyway). */
      client: Pinecone;
      /** Index host, e.g. "https://my-index-abc123.svc.aped-1234.pinecone.io" or "http://127.0.0.1:5081". */
      indexHost?: string;
      /** Index name: used to resolve the host when none is given. */
      indexName?: string;
      namespacePrefix: string;
    }
  | {
      config: {
        apiKey: string;
        indexName?: string;
        indexHost?: string;
        namespacePrefix: string;
        /** The fetch requests go through (the client's `fetchApi`): the Node runtime's (lib/adapters/shared/node-fetch.ts); default the platform's. */
        fetch?: typeof fetch;
      };
    };

/** What each vector carries besides its values: the answer to a match, and the filters. */
interface VectorMetadata extends RecordMetadata {
  tenantId: string;
  userId: string;
  sessionId: string;
  kind: VectorKind;
  itemId: string;
  model: string;
}

const ADAPTER = "pinecone";
const KINDS: readonly VectorKind[] = ["message", "summary", "memory"];
/** Vectors per upsert request: Pinecone takes up to 1000 and 2 MB; smaller requests retry cheaply. */
const UPSERT_BATCH = 100;
/** Body budget per upsert request, under Pinecone's 2 MB with room for the envelope. */
const UPSERT_BYTES = 1_900_000;
/** Upper bound of one number in the JSON body: "-1.2345678901234567e-308" plus a comma. */
const BYTES_PER_VALUE = 25;
/** Requests in flight at once for one call. */
const CONCURRENCY = 4;
/** Ids per delete request (Pinecone's limit). */
const DELETE_BATCH = 1000;
/** Ids per list page (Pinecone's default page). */
const LIST_PAGE = 100;
/** Item ids per fetch_by_metadata lookup, and records per page of its answer. */
const LOOKUP_BATCH = 100;
/** Matches per query: Pinecone caps topK, lower when metadata is returned. */
const MAX_TOP_K = 1000;
/** Longest encoded id part kept readable; longer ones are hashed. */
const MAX_PART = 200;
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

const configError = (code: string, message: string) => new StrataError("config", code, message);

const utf8 = new TextEncoder();

/**
 * One part of an id or namespace, as printable ASCII of bounded length without `#`. Web
 * Crypto rather than node:crypto, so the read path can run on edge runtimes.
 */
async function idPart(raw: string): Promise<string> {
  let encoded: string | null = null;
  try {
    encoded = encodeURIComponent(raw);
  } catch {
    // A lone surrogate has no UTF-8 form: hash it.
  }
  if (encoded !== null && encoded.length <= MAX_PART) return encoded;
  // The UTF-16 code units, so distinct lone surrogates stay distinct.
  const units = new Uint8Array(raw.length * 2);
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    units[2 * i] = c & 0xff;
    units[2 * i + 1] = c >> 8;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", units));
  const base64 = btoa(String.fromCharCode(...digest));
  return `$${base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

/** The index host as the client will call it: the client adds https:// to a bare host. */
function checkHost(host: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `https://${host}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw configError("CONFIG_INVALID", `PINECONE_HOST "${host}" is not a host or URL: copy the index host from the Pinecone console`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw configError("CONFIG_INVALID", `PINECONE_HOST "${host}" must be an http(s) URL or a bare host`);
  }
  if (url.pathname !== "/" || url.search || url.hash) {
    throw configError("CONFIG_INVALID", `PINECONE_HOST "${host}" must be the index host alone, without a path`);
  }
  return withScheme.replace(/\/+$/, "");
}

/** The vector as a unit vector, or null when it has no direction (all zeros). */
function unit(vector: Float32Array): number[] | null {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  if (!(sum > 0)) return null;
  const inv = 1 / Math.sqrt(sum);
  return Array.from(vector, (x) => x * inv);
}

/** Runs tasks with at most `limit` in flight; waits for all, then throws the first failure. */
async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (errors.length) throw errors[0];
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Status of a failed call, from the client's error classes or the generated API's ResponseError. */
function statusOf(e: unknown): number | undefined {
  if (!(e instanceof Error)) return undefined;
  if (e.name === "ResponseError") return (e as Error & { response?: { status?: number } }).response?.status;
  return (
    {
      PineconeAuthorizationError: 401,
      PineconeBadRequestError: 400,
      PineconeNotFoundError: 404,
    } as Record<string, number>
  )[e.name];
}

export function createPineconeVectorIndex(options: PineconeVectorIndexOptions): VectorIndex {
  const settings = "client" in options ? options : options.config;
  const apiKey = "client" in options ? null : options.config.apiKey?.trim();
  const { namespacePrefix } = settings;
  const indexName = settings.indexName?.trim() || undefined;
  const indexHostRaw = settings.indexHost?.trim() || undefined;

  if (apiKey === "" || apiKey === undefined) {
    throw configError("CONFIG_MISSING", "PINECONE_API_KEY is empty: set it, or unset the Pinecone settings to use the embedded vector index");
  }
  if (!indexName && !indexHostRaw) {
    throw configError(
      "CONFIG_MISSING",
      "PINECONE_INDEX or PINECONE_HOST is missing: set one, or unset PINECONE_API_KEY to use the embedded vector index",
    );
  }
  if (typeof namespacePrefix !== "string" || !PREFIX_PATTERN.test(namespacePrefix)) {
    throw configError(
      "CONFIG_INVALID",
      `Pinecone namespace prefix "${namespacePrefix}" must be 1 to 64 letters, digits, "-" or "_" (it is the deployment stage)`,
    );
  }
  const indexHost = indexHostRaw === undefined ? undefined : checkHost(indexHostRaw);
  const client =
    "client" in options ? options.client : new Pinecone({ apiKey: apiKey!, ...(options.config.fetch ? { fetchApi: options.config.fetch } : {}) });
  const where = indexHost ?? `index "${indexName}"`;

  const namespaceOf = async (tenantId: string) => `${namespacePrefix}#${await idPart(tenantId)}`;
  const userPrefix = async (userId: string) => `${await idPart(userId)}#`;
  const vectorId = async (userId: string, kind: VectorKind, id: string) => `${await userPrefix(userId)}${kind}#${await idPart(id)}`;

  /** Turns anything a call threw into a StrataError that says what to fix where it can. */
  function fail(e: unknown, doing: string): StrataError {
    if (e instanceof StrataError) return e;
    const status = statusOf(e);
    const message = e instanceof Error ? e.message : String(e);
    if (status === 401 || status === 403) {
      return new StrataError("config", "PINECONE_UNAUTHORIZED", `pinecone rejected the API key while trying to ${doing} (${where}): check PINECONE_API_KEY`, {
        cause: e,
      });
    }
    if (status === 404) {
      return new StrataError("config", "PINECONE_NOT_FOUND", `pinecone has no such index while trying to ${doing} (${where}): check PINECONE_HOST / PINECONE_INDEX`, {
        cause: e,
      });
    }
    if (status === 400 && /dimension/i.test(message)) {
      return new StrataError("config", "PINECONE_DIMENSION", `pinecone: ${message}: the index must have the embedder's dimension`, { cause: e });
    }
    return new StrataError("upstream", "UPSTREAM_ERROR", `${ADAPTER}: ${doing}: ${message}`, { cause: e });
  }

  interface Target {
    index: Index<VectorMetadata>;
    /** Raw describe_index_stats; checks the metric every time. */
    stats(): Promise<IndexDescription>;
    /** Dimension of the index, when it reports one. */
    dimension: number | undefined;
  }

  let target: Promise<Target> | null = null;

  async function connect(): Promise<Target> {
    let host = indexHost;
    if (host === undefined) {
      try {
        host = checkHost((await client.describeIndex(indexName!)).host);
      } catch (e) {
        throw fail(e, `resolve the host of index "${indexName}"`);
      }
    }
    const index = client.index<VectorMetadata>({ host });
    const config = client.getConfig();
    const raw = new VectorOperationsApi(
      new Configuration({
        basePath: host,
        apiKey: config.apiKey,
        ...(config.fetchApi ? { fetchApi: config.fetchApi } : {}),
        ...(config.additionalHeaders ? { headers: config.additionalHeaders } : {}),
      }),
    );
    const t: Target = {
      index,
      dimension: undefined,
      async stats() {
        let s: IndexDescription;
        try {
          s = await raw.describeIndexStats({ describeIndexStatsRequest: {}, xPineconeApiVersion: X_PINECONE_API_VERSION });
        } catch (e) {
          throw fail(e, "describe index stats");
        }
        if (s.metric !== undefined && s.metric !== "cosine") {
          throw configError(
            "PINECONE_METRIC",
            `the Pinecone index at ${host} uses the ${s.metric} metric: Strata needs a dense index with the cosine metric (create one with metric "cosine")`,
          );
        }
        if (s.vectorType !== undefined && s.vectorType !== "dense") {
          throw configError("PINECONE_METRIC", `the Pinecone index at ${host} is a ${s.vectorType} index: Strata needs a dense index with the cosine metric`);
        }
        t.dimension = s.dimension || undefined;
        return s;
      },
    };
    await t.stats();
    return t;
  }

  /** The index, checked once before first use; a failed check is retried on the next call. */
  function ready(): Promise<Target> {
    if (!target) {
      const attempt = connect();
      target = attempt;
      attempt.catch(() => {
        if (target === attempt) target = null;
      });
    }
    return target;
  }

  function checkDimension(t: Target, length: number, what: string): void {
    if (t.dimension !== undefined && t.dimension !== length) {
      throw configError(
        "PINECONE_DIMENSION",
        `${what} has ${length} dimensions but the Pinecone index at ${where} has ${t.dimension}: use an index created with the embedder's dimension`,
      );
    }
  }

  async function deleteIds(t: Target, namespace: string, ids: string[], doing: string): Promise<void> {
    await runLimited(
      chunks(ids, DELETE_BATCH).map((batch) => async () => {
        try {
          await t.index.deleteMany({ ids: batch, namespace });
        } catch (e) {
          throw fail(e, doing);
        }
      }),
      CONCURRENCY,
    );
  }

  /** Pages through the ids of one user's vectors, handing each page to `each`. */
  async function forEachUserPage(t: Target, namespace: string, userId: string, each: (ids: string[]) => Promise<void>): Promise<void> {
    const prefix = await userPrefix(userId);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await t.index.listPaginated({
          namespace,
          prefix,
          limit: LIST_PAGE,
          ...(token ? { paginationToken: token } : {}),
        });
      } catch (e) {
        throw fail(e, "list a user's vectors");
      }
      const ids = (page.vectors ?? []).map((v) => v.id).filter((id): id is string => typeof id === "string");
      if (ids.length) await each(ids);
      token = page.pagination?.next || undefined;
    } while (token);
  }

  return {
    adapter: ADAPTER,

    async ping() {
      // A first call's connect makes the round trip itself.
      const connected = target !== null;
      const t = await ready();
      if (connected) await t.stats();
    },

    async upsert(records: VectorRecord[]) {
      for (const r of records) {
        if (!KINDS.includes(r.kind)) throw new StrataError("validation", "VALIDATION_ERROR", `unknown vector kind "${r.kind}"`);
        if (r.vector.length === 0) throw new StrataError("validation", "VALIDATION_ERROR", `empty vector for ${r.kind} ${r.id}`);
        if (!r.vector.every(Number.isFinite)) throw new StrataError("validation", "VALIDATION_ERROR", `vector for ${r.kind} ${r.id} has a value that is not a finite number`);
      }
      if (!records.length) return;
      const t = await ready();
      // Last write wins within a call, as it would across calls.
      const latest = new Map<string, VectorRecord>();
      for (const r of records) latest.set(`${r.tenantId}\u0000${r.kind}\u0000${r.id}`, r);

      type Write = { id: string; values: number[]; metadata: VectorMetadata; bytes: number };
      const byNamespace = new Map<string, { writes: Write[]; zeros: string[] }>();
      for (const r of latest.values()) {
        checkDimension(t, r.vector.length, `the vector of ${r.kind} ${r.id}`);
        const namespace = await namespaceOf(r.tenantId);
        let group = byNamespace.get(namespace);
        if (!group) byNamespace.set(namespace, (group = { writes: [], zeros: [] }));
        const id = await vectorId(r.userId, r.kind, r.id);
        const values = unit(r.vector);
        if (!values) {
          group.zeros.push(id);
          continue;
        }
        const metadata: VectorMetadata = { tenantId: r.tenantId, userId: r.userId, sessionId: r.sessionId, kind: r.kind, itemId: r.id, model: r.model };
        const bytes = values.length * BYTES_PER_VALUE + utf8.encode(JSON.stringify(metadata)).length + id.length + 64;
        group.writes.push({ id, values, metadata, bytes });
      }

      const tasks: (() => Promise<void>)[] = [];
      for (const [namespace, { writes, zeros }] of byNamespace) {
        let batch: Write[] = [];
        let size = 0;
        const flush = () => {
          if (!batch.length) return;
          const records = batch.map(({ id, values, metadata }) => ({ id, values, metadata }));
          tasks.push(async () => {
            try {
              await t.index.upsert({ records, namespace });
            } catch (e) {
              throw fail(e, `upsert ${records.length} vectors`);
            }
          });
          batch = [];
          size = 0;
        };
        for (const w of writes) {
          if (batch.length === UPSERT_BATCH || (batch.length > 0 && size + w.bytes > UPSERT_BYTES)) flush();
          batch.push(w);
          size += w.bytes;
        }
        flush();
        if (zeros.length) tasks.push(() => deleteIds(t, namespace, zeros, "drop vectors replaced by zero vectors"));
      }
      await runLimited(tasks, CONCURRENCY);
    },

    async query(q) {
      const topK = Math.min(Math.floor(q.topK), MAX_TOP_K);
      if (!(topK >= 1) || q.vector.length === 0) return [];
      const values = unit(q.vector);
      if (!values) return [];
      const t = await ready();
      checkDimension(t, q.vector.length, "the query vector");
      const filter: Record<string, unknown> = { tenantId: { $eq: q.tenantId }, userId: { $eq: q.userId } };
      if (q.sessionId !== undefined) filter.sessionId = { $eq: q.sessionId };
      if (q.kinds && q.kinds.length > 0) filter.kind = { $in: [...new Set(q.kinds)] };
      let answer;
      try {
        answer = await t.index.query({ namespace: await namespaceOf(q.tenantId), vector: values, topK, filter, includeMetadata: true, includeValues: false });
      } catch (e) {
        throw fail(e, "query");
      }
      const out: VectorMatch[] = [];
      for (const m of answer.matches) {
        const meta = m.metadata;
        // The filter already says so; a match of anyone else would be a leak, never a result.
        if (!meta || meta.tenantId !== q.tenantId || meta.userId !== q.userId) continue;
        out.push({ id: meta.itemId, kind: meta.kind, sessionId: meta.sessionId, score: m.score ?? 0 });
      }
      // Pinecone ranks by score; equal scores rank by item id, as in every other adapter.
      return out.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },

    async deleteByIds(tenantId, ids) {
      const unique = [...new Set(ids)];
      if (!unique.length) return;
      const t = await ready();
      const namespace = await namespaceOf(tenantId);
      await runLimited(
        chunks(unique, LOOKUP_BATCH).map((batch) => async () => {
          const found: string[] = [];
          let token: string | undefined;
          do {
            let page;
            try {
              page = await t.index.fetchByMetadata({
                namespace,
                filter: { itemId: { $in: batch } },
                limit: LOOKUP_BATCH,
                ...(token ? { paginationToken: token } : {}),
              });
            } catch (e) {
              throw fail(e, "look up vectors by item id");
            }
            found.push(...Object.keys(page.records));
            token = page.pagination?.next || undefined;
          } while (token);
          if (found.length) await deleteIds(t, namespace, found, "delete vectors by item id");
        }),
        CONCURRENCY,
      );
    },

    async deleteByUser(tenantId, userId) {
      const t = await ready();
      const namespace = await namespaceOf(tenantId);
      // Ids are listed in order after the last one seen, so deleting a page does not move the next.
      await forEachUserPage(t, namespace, userId, (ids) => deleteIds(t, namespace, ids, "delete a user's vectors"));
    },

    async count(tenantId, userId) {
      const t = await ready();
      const namespace = await namespaceOf(tenantId);
      if (userId === undefined) {
        const s = await t.stats();
        return s.namespaces?.[namespace]?.vectorCount ?? 0;
      }
      let n = 0;
      await forEachUserPage(t, namespace, userId, async (ids) => {
        n += ids.length;
      });
      return n;
    },

    // The client keeps no connection of its own (requests go through fetch), whether it was
    // given or built here: there is nothing to release.
    async close() {},
  };
}

/**
 * Deletes every namespace under `namespacePrefix` (a stage, a preview stack, a test run):
 * deleteAll on each one describe_index_stats lists. Returns the namespaces it deleted.
 */
export async function deletePineconeNamespaces(options: { client: Pinecone; indexHost: string; namespacePrefix: string }): Promise<string[]> {
  if (!PREFIX_PATTERN.test(options.namespacePrefix)) {
    throw configError("CONFIG_INVALID", `Pinecone namespace prefix "${options.namespacePrefix}" must be 1 to 64 letters, digits, "-" or "_"`);
  }
  const index = options.client.index({ host: checkHost(options.indexHost) });
  const mine = `${options.namespacePrefix}#`;
  try {
    const stats = await index.describeIndexStats();
    const names = Object.keys(stats.namespaces ?? {}).filter((n) => n.startsWith(mine));
    await runLimited(
      names.map((namespace) => () => index.deleteAll({ namespace })),
      CONCURRENCY,
    );
    return names;
  } catch (e) {
    throw upstream(ADAPTER, e);
  }
}
