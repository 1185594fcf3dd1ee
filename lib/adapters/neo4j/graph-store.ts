// The production entity graph: the GraphStore port on Neo4j 5 (5.6 or later: COUNT and
// COLLECT subqueries), with the semantics of the embedded adapter (../sql/graph-store.ts):
// the same entity ids, name words, term matching, scoring and fact order.
//
// Model, every node scoped by tenantId and userId:
//   (:Entity {tenantId, userId, id, name, type, norm, words, anchor, mentions})
//   (:Message {tenantId, userId, id, sessionId})
//   (Entity)-[:MENTIONED_IN]->(Message)                       one per entity and message
//   (Entity)-[:EVIDENCE {type, messageId}]->(Entity)          one per relation and message
//   (Entity)-[:REL {type, weight}]->(Entity)                  one per relation
// Relationships only ever join nodes of one (tenant, user), so a traversal from a scoped
// node stays in scope. Evidence is a relationship per message rather than a list on REL so
// a merge is MERGEs only (idempotent, and safe under concurrent merges: MERGE between two
// bound nodes locks both), a delete finds a message's evidence by walking from the message
// to the entities it mentions (a relation's ends are always mentioned in its message), and
// the counts are recomputed from what exists, never incremented: REL.weight is the number
// of EVIDENCE relationships under it and Entity.mentions the number of MENTIONED_IN, so a
// repeat, a retried transaction or a half-applied delete cannot skew them.
//
// Indexes (NEO4J_SCHEMA) follow Neo4j's composite index rule: a composite index serves a
// query only with a predicate on every property, equality or IN on the leading ones. So
// scope scans add `id IS NOT NULL` to use the entity key, the message key leads with
// (tenantId, id) because deleteByMessages knows only the tenant, and a list property cannot
// be index-searched for one element, so each entity also carries `anchor`, one of its name
// words: every query that names an entity by its words holds all of them, so `anchor IN
// terms` finds every candidate through an index, and the full word test filters them.
//
// Preview stacks: pass `database` (one database per stage, Enterprise or self-managed) for
// full isolation, or `labelPrefix` (e.g. "pr-42_", the stage name) where there is a single
// database (Community, Aura Free): labels and schema names are prefixed (and backquoted when
// not plain identifiers), relationship types are not (they are only reached from prefixed
// nodes). A prefix also lets a stage's graph be dropped on its own. Both are fixed at
// construction and validated; every value in every query is a parameter.

import neo4j from "neo4j-driver";
import type { Driver, ManagedTransaction, RecordShape, Session } from "neo4j-driver";
import { StrataError, upstream } from "../../core/errors.ts";
import type { GraphMerge, GraphStore } from "../../core/ports.ts";
import type { Fact, ScoredId } from "../../core/types.ts";
import { nameWords, normaliseName, resolveEntities, resolveRelations } from "../sql/graph-store.ts";

export interface Neo4jConfig {
  /** NEO4J_URI: neo4j://, neo4j+s://, neo4j+ssc://, bolt://, bolt+s:// or bolt+ssc://. */
  uri: string;
  username: string;
  password: string;
  /** Database to use; the user's home database when omitted. */
  database?: string;
}

export type Neo4jGraphStoreOptions =
  | { driver: Driver; database?: string; labelPrefix?: string }
  | { config: Neo4jConfig; labelPrefix?: string };

const ADAPTER = "neo4j";

// How many evidence message ids a fact carries (as the embedded adapter).
const FACT_EVIDENCE = 3;
// Message ids per deleteByMessages transaction, entities per deleteByUser transaction.
const DELETE_BATCH = 500;

const SCHEMES = new Set(["neo4j:", "neo4j+s:", "neo4j+ssc:", "bolt:", "bolt+s:", "bolt+ssc:"]);
// A stage name fits as is ("pr-42_"); names that are not plain identifiers are backquoted.
const LABEL_PREFIX = /^[A-Za-z][A-Za-z0-9_-]{0,39}$/;
const PLAIN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const ident = (name: string) => (PLAIN.test(name) ? name : `\`${name}\``);

interface Labels {
  entity: string;
  message: string;
  /** Names a constraint or index. */
  schema: (name: string) => string;
}

function labels(prefix = ""): Labels {
  if (prefix !== "" && !LABEL_PREFIX.test(prefix)) {
    throw new StrataError(
      "config",
      "CONFIG_INVALID",
      `neo4j graph store: labelPrefix must be 1-40 letters, digits, "_" or "-", starting with a letter (got ${JSON.stringify(prefix)}): use e.g. the stage name`,
    );
  }
  return {
    entity: ident(`${prefix}Entity`),
    message: ident(`${prefix}Message`),
    schema: (name) => ident(`strata_${prefix.toLowerCase()}${name}`),
  };
}

/** Constraint and index statements for the graph, idempotent, for a label prefix ("" for none). */
export function neo4jSchema(labelPrefix = ""): string[] {
  const l = labels(labelPrefix);
  return [
    `CREATE CONSTRAINT ${l.schema("entity_key")} IF NOT EXISTS FOR (e:${l.entity}) REQUIRE (e.tenantId, e.userId, e.id) IS UNIQUE`,
    `CREATE CONSTRAINT ${l.schema("message_key")} IF NOT EXISTS FOR (m:${l.message}) REQUIRE (m.tenantId, m.id, m.userId) IS UNIQUE`,
    `CREATE INDEX ${l.schema("entity_anchor")} IF NOT EXISTS FOR (e:${l.entity}) ON (e.tenantId, e.userId, e.anchor)`,
    `CREATE INDEX ${l.schema("entity_norm")} IF NOT EXISTS FOR (e:${l.entity}) ON (e.tenantId, e.userId, e.norm)`,
  ];
}

/** The graph's constraints and indexes, unprefixed labels. */
export const NEO4J_SCHEMA: string[] = neo4jSchema();

/**
 * Creates the constraints and indexes (safe to repeat) and waits for the indexes to come
 * online. Schema commands run in auto-commit transactions, one each, as Neo4j requires.
 */
export async function applyNeo4jSchema(
  driver: Driver,
  database?: string,
  options: { labelPrefix?: string; timeoutSeconds?: number } = {},
): Promise<void> {
  const statements = neo4jSchema(options.labelPrefix);
  const session = driver.session({ defaultAccessMode: neo4j.session.WRITE, ...(database ? { database } : {}) });
  try {
    for (const statement of statements) await session.run(statement);
    await session.run("CALL db.awaitIndexes($timeoutSeconds)", { timeoutSeconds: neo4j.int(options.timeoutSeconds ?? 300) });
  } catch (e) {
    throw failure(e);
  } finally {
    await release(session);
  }
}

// ---------------------------------------------------------------------------------------
// Cypher. Labels are fixed per store; every value is a parameter.

function cypher(l: Labels) {
  // Entities of the user named in $terms: a name whose words are all among the terms, or
  // whose normalised name is one of them. Both lookups go through an index.
  const matched = `
OPTIONAL MATCH (byWord:${l.entity} {tenantId: $tenantId, userId: $userId})
WHERE byWord.anchor IN $terms
WITH collect(byWord) AS byWords
OPTIONAL MATCH (byName:${l.entity} {tenantId: $tenantId, userId: $userId})
WHERE byName.norm IN $terms
WITH byWords, collect(byName) AS byNames
UNWIND byWords + byNames AS e
WITH DISTINCT e
WHERE e.norm IN $terms OR (size(coalesce(e.words, [])) > 0 AND all(w IN e.words WHERE w IN $terms))`;

  // Names the ends of the picked relations (s, r, o) and attaches a few supporting messages.
  const describeFacts = `
RETURN s.name AS subject, r.type AS predicate, o.name AS object, r.weight AS weight,
  COLLECT {
    MATCH (s)-[x:EVIDENCE]->(o)
    WHERE x.type = r.type
    RETURN x.messageId ORDER BY x.messageId DESC LIMIT $evidence
  } AS messageIds
ORDER BY weight DESC, s.id, predicate, o.id`;

  return {
    ping: "RETURN 1 AS ok",

    // One row per (entity, message) pair; the entity fields are those of its first mention
    // in the batch. mentions is recounted, so a repeated pair changes nothing.
    mergeMentions: `
UNWIND $mentions AS row
MERGE (e:${l.entity} {tenantId: row.tenantId, userId: row.userId, id: row.entityId})
  ON CREATE SET e.name = row.name, e.type = row.type, e.norm = row.norm, e.words = row.words, e.anchor = row.anchor
MERGE (m:${l.message} {tenantId: row.tenantId, userId: row.userId, id: row.messageId})
  ON CREATE SET m.sessionId = row.sessionId
MERGE (e)-[:MENTIONED_IN]->(m)
WITH DISTINCT e
SET e.mentions = COUNT { (e)-[:MENTIONED_IN]->() }`,

    // One row per (relation, message) pair, after mergeMentions in the same transaction.
    mergeEvidence: `
UNWIND $evidence AS row
MATCH (a:${l.entity} {tenantId: row.tenantId, userId: row.userId, id: row.fromId})
MATCH (b:${l.entity} {tenantId: row.tenantId, userId: row.userId, id: row.toId})
MERGE (a)-[:EVIDENCE {type: row.type, messageId: row.messageId}]->(b)
MERGE (a)-[r:REL {type: row.type}]->(b)
WITH DISTINCT a, b, r
SET r.weight = COUNT { (a)-[x:EVIDENCE]->(b) WHERE x.type = r.type }`,

    // Rarer entities say more about which message is meant (see the embedded adapter).
    messagesMentioning: `${matched}
MATCH (e)-[:MENTIONED_IN]->(m:${l.message})
WITH m.id AS id, sum(1.0 / (1.0 + log(toFloat(CASE WHEN e.mentions > 1 THEN e.mentions ELSE 1 END)))) AS score
RETURN id, score
ORDER BY score DESC, id DESC
LIMIT $limit`,

    factsAbout: `${matched}
MATCH (e)-[r:REL]-()
WITH DISTINCT r
WITH r, startNode(r) AS s, endNode(r) AS o
ORDER BY r.weight DESC, s.id, r.type, o.id
LIMIT $limit${describeFacts}`,

    factsStrongest: `
MATCH (s:${l.entity} {tenantId: $tenantId, userId: $userId})-[r:REL]->(o)
WHERE s.id IS NOT NULL
WITH s, r, o
ORDER BY r.weight DESC, s.id, r.type, o.id
LIMIT $limit${describeFacts}`,

    counts: `
MATCH (e:${l.entity} {tenantId: $tenantId, userId: $userId})
WHERE e.id IS NOT NULL
WITH e, COUNT { (e)-[:REL]->() } AS rels, COUNT { (e)-[:MENTIONED_IN]->() } AS ments
RETURN count(e) AS entities, sum(rels) AS relations, sum(ments) AS mentions`,

    // deleteByMessages, first statement: the messages' evidence, then relations left
    // without any. The port gives no user here: message ids are unique within a tenant.
    deleteEvidence: `
MATCH (m:${l.message} {tenantId: $tenantId})
WHERE m.id IN $messageIds AND m.userId IS NOT NULL
MATCH (a:${l.entity})-[:MENTIONED_IN]->(m)
MATCH (a)-[ev:EVIDENCE]->(b:${l.entity})
WHERE ev.messageId = m.id
WITH a, b, ev, ev.type AS relType
DELETE ev
WITH DISTINCT a, b, relType
MATCH (a)-[r:REL]->(b)
WHERE r.type = relType
SET r.weight = COUNT { (a)-[x:EVIDENCE]->(b) WHERE x.type = relType }
WITH r
WHERE r.weight = 0
DELETE r`,

    // deleteByMessages, second statement: the messages and their mentions, then entities
    // left without any.
    deleteMentions: `
MATCH (m:${l.message} {tenantId: $tenantId})
WHERE m.id IN $messageIds AND m.userId IS NOT NULL
OPTIONAL MATCH (e:${l.entity})-[:MENTIONED_IN]->(m)
WITH m, collect(e) AS mentioned
DETACH DELETE m
WITH mentioned
UNWIND mentioned AS touched
WITH DISTINCT touched
SET touched.mentions = COUNT { (touched)-[:MENTIONED_IN]->() }
WITH touched
WHERE touched.mentions = 0
DETACH DELETE touched`,

    // deleteByUser, repeated until a batch comes back short: entities with their messages
    // and every relationship on them.
    deleteUserBatch: `
MATCH (e:${l.entity} {tenantId: $tenantId, userId: $userId})
WHERE e.id IS NOT NULL
WITH e LIMIT $batch
OPTIONAL MATCH (e)-[:MENTIONED_IN]->(m:${l.message})
WITH collect(DISTINCT e) AS entities, collect(DISTINCT m) AS messages
FOREACH (n IN messages | DETACH DELETE n)
FOREACH (n IN entities | DETACH DELETE n)
RETURN size(entities) AS deleted`,
  };
}

// ---------------------------------------------------------------------------------------
// Batches

interface MentionRow {
  tenantId: string;
  userId: string;
  entityId: string;
  messageId: string;
  sessionId: string;
  name: string;
  type: string;
  norm: string;
  words: string[] | null;
  anchor: string | null;
}

interface EvidenceRow {
  tenantId: string;
  userId: string;
  fromId: string;
  type: string;
  toId: string;
  messageId: string;
}

const key = (...parts: string[]) => parts.join("\u0000");

/** The longest of the name's words: any one finds the entity; a long one is likely rarer. */
function anchorOf(words: string[]): string | null {
  let best: string | null = null;
  for (const w of words) if (best === null || w.length > best.length) best = w;
  return best;
}

/**
 * The UNWIND rows of one merge, deduplicated, in key order so that concurrent merges lock
 * shared entities in the same order (fewer deadlocks to retry).
 */
export function mergeRows(items: GraphMerge[]): { mentions: MentionRow[]; evidence: EvidenceRow[] } {
  const entities = new Map<string, Pick<MentionRow, "name" | "type" | "norm" | "words" | "anchor">>();
  const mentions = new Map<string, MentionRow>();
  const evidence = new Map<string, EvidenceRow>();

  for (const item of items) {
    const { tenantId, userId, sessionId, messageId } = item;
    const { ids, entities: named } = resolveEntities(item.extraction.entities);
    for (const { id, norm, type, surface: name } of named) {
      const entityKey = key(tenantId, userId, id);
      let entity = entities.get(entityKey);
      if (!entity) {
        const words = nameWords(name);
        entity = { name, type, norm, words: words.length > 0 ? words : null, anchor: anchorOf(words) };
        entities.set(entityKey, entity);
      }
      const mentionKey = key(tenantId, userId, id, messageId);
      if (!mentions.has(mentionKey)) mentions.set(mentionKey, { tenantId, userId, entityId: id, messageId, sessionId, ...entity });
    }
    for (const { fromId, type, toId } of resolveRelations(item.extraction.relations, ids)) {
      const evidenceKey = key(tenantId, userId, fromId, type, toId, messageId);
      if (!evidence.has(evidenceKey)) evidence.set(evidenceKey, { tenantId, userId, fromId, type, toId, messageId });
    }
  }
  const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return { mentions: sorted(mentions), evidence: sorted(evidence) };
}

function cleanTerms(terms: string[]): string[] {
  return [...new Set(terms.map(normaliseName).filter((t) => t.length > 0))];
}

/** A Neo4j Integer, a bigint or a number (drivers built with disableLosslessIntegers) as a number. */
function toNumber(v: unknown): number {
  if (neo4j.isInt(v)) return v.toNumber();
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number") return v;
  return Number(v ?? 0);
}

/** Wraps a driver error; a Neo4j status code (e.g. Neo.ClientError.Statement.SyntaxError) is kept in the message and details. */
function failure(e: unknown): StrataError {
  if (e instanceof StrataError) return e;
  const code = e !== null && typeof e === "object" && typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "";
  if (!code) return upstream(ADAPTER, e);
  const message = e instanceof Error ? e.message : String(e);
  return new StrataError("upstream", "UPSTREAM_ERROR", `${ADAPTER}: ${message} (${code})`, { cause: e, details: { neo4jCode: code } });
}

// Closing a session only hands its connection back to the pool; the work's outcome is
// already known, and a failure here must not replace it.
async function release(session: Session): Promise<void> {
  await session.close().catch(() => undefined);
}

function configError(message: string): StrataError {
  return new StrataError("config", "CONFIG_INVALID", message);
}

function openDriver(config: Neo4jConfig): Driver {
  let scheme: string;
  try {
    scheme = new URL(config.uri).protocol;
  } catch {
    throw configError(`NEO4J_URI is not a URL (got ${JSON.stringify(config.uri)}): set it to the instance's neo4j+s:// URI, or unset it to use the embedded graph`);
  }
  if (!SCHEMES.has(scheme)) {
    throw configError(
      `NEO4J_URI must use neo4j://, neo4j+s://, neo4j+ssc://, bolt://, bolt+s:// or bolt+ssc:// (got ${scheme}//): Neo4j's HTTP port is not supported`,
    );
  }
  if (!config.username?.trim()) {
    throw configError("NEO4J_URI is set but NEO4J_USERNAME is not: set both NEO4J_USERNAME and NEO4J_PASSWORD, or unset NEO4J_URI to use the embedded graph");
  }
  if (!config.password) {
    throw configError("NEO4J_URI is set but NEO4J_PASSWORD is not: set both, or unset NEO4J_URI to use the embedded graph");
  }
  if (config.database !== undefined && !config.database.trim()) {
    throw configError("NEO4J_DATABASE is empty: set a database name, or unset it to use the user's home database");
  }
  try {
    return neo4j.driver(config.uri, neo4j.auth.basic(config.username, config.password), { userAgent: "strata" });
  } catch (e) {
    throw new StrataError("config", "CONFIG_INVALID", `neo4j: cannot use NEO4J_URI ${JSON.stringify(config.uri)}: ${(e as Error).message}`, { cause: e });
  }
}

export function createNeo4jGraphStore(options: Neo4jGraphStoreOptions): GraphStore {
  const l = labels(options.labelPrefix);
  const q = cypher(l);
  const owned = "config" in options;
  const driver = owned ? openDriver(options.config) : options.driver;
  const database = owned ? options.config.database : options.database;
  const target = database ? { database } : {};
  // Sessions share executeQuery's bookmark manager, so a read after a write sees it on a cluster.
  const bookmarkManager = driver.executeQueryBookmarkManager;

  async function read<R extends RecordShape>(query: string, parameters: Record<string, unknown>): Promise<R[]> {
    try {
      const result = await driver.executeQuery(query, parameters, { ...target, routing: neo4j.routing.READ });
      return result.records.map((r) => r.toObject() as R);
    } catch (e) {
      throw failure(e);
    }
  }

  /** One managed write transaction (retried by the driver on transient errors). */
  async function write<T>(work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
    const session = driver.session({ ...target, defaultAccessMode: neo4j.session.WRITE, bookmarkManager });
    try {
      return await session.executeWrite(work);
    } catch (e) {
      throw failure(e);
    } finally {
      await release(session);
    }
  }

  return {
    adapter: ADAPTER,

    async ping() {
      await read(q.ping, {});
    },

    async merge(items) {
      if (items.length === 0) return;
      const { mentions, evidence } = mergeRows(items);
      if (mentions.length === 0) return; // no entity anywhere: nothing to tie
      await write(async (tx) => {
        await tx.run(q.mergeMentions, { mentions });
        if (evidence.length > 0) await tx.run(q.mergeEvidence, { evidence });
      });
    },

    async messagesMentioning({ tenantId, userId, terms, limit }) {
      const wanted = cleanTerms(terms);
      if (wanted.length === 0 || limit <= 0) return [];
      const rows = await read<{ id: string; score: unknown }>(q.messagesMentioning, {
        tenantId,
        userId,
        terms: wanted,
        limit: neo4j.int(Math.floor(limit)),
      });
      return rows.map((r): ScoredId => ({ id: r.id, score: toNumber(r.score) }));
    },

    async facts({ tenantId, userId, terms, limit }) {
      if (limit <= 0) return [];
      const wanted = cleanTerms(terms);
      if (terms.length > 0 && wanted.length === 0) return []; // only blank terms: nothing named
      const parameters: Record<string, unknown> = { tenantId, userId, limit: neo4j.int(Math.floor(limit)), evidence: neo4j.int(FACT_EVIDENCE) };
      if (wanted.length > 0) parameters.terms = wanted;
      const rows = await read<{ subject: string; predicate: string; object: string; weight: unknown; messageIds: string[] }>(
        wanted.length > 0 ? q.factsAbout : q.factsStrongest,
        parameters,
      );
      return rows.map(
        (r): Fact => ({
          subject: r.subject,
          predicate: r.predicate,
          object: r.object,
          weight: toNumber(r.weight),
          messageIds: [...r.messageIds],
        }),
      );
    },

    async counts(tenantId, userId) {
      const [row] = await read<{ entities: unknown; relations: unknown; mentions: unknown }>(q.counts, { tenantId, userId });
      return { entities: toNumber(row?.entities), relations: toNumber(row?.relations), mentions: toNumber(row?.mentions) };
    },

    async deleteByMessages(tenantId, messageIds) {
      const ids = [...new Set(messageIds)];
      for (let at = 0; at < ids.length; at += DELETE_BATCH) {
        const batch = ids.slice(at, at + DELETE_BATCH);
        await write(async (tx) => {
          await tx.run(q.deleteEvidence, { tenantId, messageIds: batch });
          await tx.run(q.deleteMentions, { tenantId, messageIds: batch });
        });
      }
    },

    async deleteByUser(tenantId, userId) {
      // Batches keep each transaction's memory bounded; a retry after a failure resumes.
      for (;;) {
        const deleted = await write(async (tx) => {
          const result = await tx.run(q.deleteUserBatch, { tenantId, userId, batch: neo4j.int(DELETE_BATCH) });
          return toNumber(result.records[0]?.get("deleted"));
        });
        if (deleted < DELETE_BATCH) return;
      }
    },

    async close() {
      if (owned) await driver.close();
    },
  };
}
