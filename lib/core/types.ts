// Domain types shared by every port, service and adapter.
//
// Ids are strings throughout. A message id is either client-supplied (≤ 128 chars) or
// generated at ingest; it is unique within a tenant, never globally, so every lookup
// carries the tenant id beside it.

export const ROLES = ["user", "assistant", "system", "tool"] as const;
export type Role = (typeof ROLES)[number];

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
}

export interface User {
  tenantId: string;
  id: string;
  createdAt: string;
}

export interface Session {
  tenantId: string;
  id: string;
  userId: string;
  /** Sequence number of the last message stored in the session (0 when empty). */
  lastSeq: number;
  createdAt: string;
}

/** A message as the ingest service hands it to the archive: validated, tokens counted. */
export interface NewMessage {
  id: string;
  role: Role;
  content: string;
  name: string | null;
  createdAt: string;
  metadata: Record<string, unknown>;
  /** Token count of `content`, computed once at ingest with the project tokenizer. */
  tokens: number;
}

/** A stored message. */
export interface Message extends NewMessage {
  tenantId: string;
  sessionId: string;
  userId: string;
  /** Per-session sequence number, 1-based, assigned in the ingest transaction. */
  seq: number;
}

export const MEMORY_KINDS = ["fact", "preference", "decision", "task", "note"] as const;
export type MemoryKind = (typeof MEMORY_KINDS)[number];

/** A typed long-term memory about a user, with a priority and an optional expiry. */
export interface Memory {
  tenantId: string;
  id: string;
  userId: string;
  kind: MemoryKind;
  content: string;
  /** 0 (lowest) to 10 (highest). */
  priority: number;
  tokens: number;
  sourceMessageId: string | null;
  createdAt: string;
  expiresAt: string | null;
}

/** A rolling summary of a session up to and including `upToSeq`. */
export interface Summary {
  tenantId: string;
  sessionId: string;
  userId: string;
  content: string;
  upToSeq: number;
  tokens: number;
  createdAt: string;
}

/**
 * Where a user's messages stand in the archive (migration 4): the version its last ingest
 * stamped, the version of its last forget, and when the user row was created (a user
 * forgotten and back is a new row), as text compared only for equality.
 */
export interface UserVersion {
  messagesVersion: number;
  forgotVersion: number;
  epoch: string;
}

/**
 * A user's graph version (migration 6): bumped by every graph write, and set as reset_version
 * too by every delete. Never goes back: a user without a row is at 0.
 */
export interface GraphVersion {
  version: number;
  reset: number;
  /**
   * What the merges after `delta.since` added, read in the same snapshot as the version
   * (Archive.readContext, when the graph store asked for it): a graph held at `since` is
   * brought to this version with it, without a read of its own.
   */
  delta?: GraphDelta;
}

/** Rows merges added to a user's graph after a version: mention rows with their entity's row, evidence rows with their relation's weight. */
export interface GraphDelta {
  since: number;
  mentions: { entity: string; message: string; session: string; name: string; words: string[]; mentions: number }[];
  evidence: { from: string; type: string; to: string; message: string; weight: number }[];
}

/**
 * A user's versions as one statement read them (Archive.readVersions): what a search hands its
 * keyword and graph indexes in the managed wiring, as the context call hands them what
 * readContext read.
 */
export interface VersionReads {
  /** Null when the user has no row (nothing stored for them yet, or forgotten). */
  userVersion: UserVersion | null;
  graphVersion: GraphVersion;
}

/** What a context call reads of the archive before anything else (Archive.readContext). */
export interface ContextReads {
  session: Session | null;
  summary: Summary | null;
  memories: Memory[];
  /** Null when the user has no row (nothing stored for them yet, or forgotten). */
  userVersion: UserVersion | null;
  /**
   * The user's graph version, read in the same statement (an archive that holds the graph
   * tables): the graph index checks what it holds against it instead of reading it again.
   */
  graphVersion?: GraphVersion;
}

export const JOB_TYPES = ["embed", "extract", "summarize", "forget"] as const;
export type JobType = (typeof JOB_TYPES)[number];

export type JobStatus = "pending" | "dispatched" | "running" | "done" | "failed";

/** Payload of each job type. Jobs carry ids, never message text. */
export interface JobPayloads {
  embed: { messageIds: string[] };
  extract: { messageIds: string[] };
  summarize: { sessionId: string };
  forget: { receiptId: string; scope: ForgetScope; targetId: string; messageIds: string[]; sessionIds: string[]; userId: string | null };
}

export interface NewJob<T extends JobType = JobType> {
  type: T;
  payload: JobPayloads[T];
}

/** A row of the outbox: the durable record of one unit of derived work. */
export interface Job<T extends JobType = JobType> extends NewJob<T> {
  id: string;
  tenantId: string;
  status: JobStatus;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  /** Earliest time the job may run (backoff after a failure). */
  runAfter: string;
}

export const FORGET_SCOPES = ["message", "session", "user"] as const;
export type ForgetScope = (typeof FORGET_SCOPES)[number];
export const FORGET_TIERS = ["archive", "hot", "vectors", "graph"] as const;
export type ForgetTier = (typeof FORGET_TIERS)[number];

/** The answer to a forget request, and how far each tier has got with it. */
export interface ForgetReceipt {
  id: string;
  tenantId: string;
  scope: ForgetScope;
  targetId: string;
  /** Messages the request removed. */
  messages: number;
  tiers: Record<ForgetTier, "pending" | "done">;
  createdAt: string;
  /** Set once every tier is done. */
  completedAt: string | null;
}

export interface QueueStats {
  /** Jobs not yet done: pending, dispatched or running. Reaches 0 once derived tiers caught up. */
  pending: number;
  /** Jobs currently leased by a worker. */
  inFlight: number;
  /** Jobs that exhausted their attempts (dead-lettered). */
  failed: number;
  /** Age in milliseconds of the oldest job not yet done, or null when there is none. */
  oldestPendingAgeMs: number | null;
}

export const ENTITY_TYPES = ["person", "place", "organization", "date", "topic"] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

export interface ExtractedEntity {
  /** Surface form as it appeared, e.g. "Caroline". */
  name: string;
  type: EntityType;
}

export interface ExtractedRelation {
  /** Names of entities in the same extraction. */
  from: string;
  to: string;
  /** Lower-case verb phrase or a generic "co_mentioned". */
  type: string;
}

/** A decision or task a message states, kept as a typed memory of the user. */
export interface ExtractedStatement {
  kind: "decision" | "task";
  /** The sentence that states it. */
  text: string;
}

export interface Extraction {
  entities: ExtractedEntity[];
  relations: ExtractedRelation[];
  /** Decisions and tasks stated in the message (extractors that find none may omit it). */
  statements?: ExtractedStatement[];
}

/** A fact for the context call, read off the graph. */
export interface Fact {
  subject: string;
  predicate: string;
  object: string;
  /** How many messages support it. */
  weight: number;
  /** Ids of some of the messages it was read from. */
  messageIds: string[];
}

/** Where a recalled item came from. */
/** Where a recalled item came from; "neighbour" is a turn next to a hit in its session. */
export type RecallSource = "keyword" | "vector" | "graph" | "neighbour" | "recent";

export interface ScoredId {
  id: string;
  score: number;
}

/**
 * A ranked message id with its session, when the ranking knows it (the vector index always
 * does; graph stores that hold each mention's session do): the search's session prior then
 * looks the message up no more.
 */
export interface SessionScoredId extends ScoredId {
  sessionId?: string;
}

export interface TierHealth {
  tier: string;
  adapter: string;
  status: "ok" | "degraded" | "down";
  latencyMs: number;
  detail?: string;
}
