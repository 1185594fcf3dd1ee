// The ports of DESIGN.md (Tiers). Services in lib/core depend on these interfaces only;
// each adapter under lib/adapters implements one of them and passes the contract suite
// for it in test/contract. Every method is scoped by tenant: no port offers an unscoped
// read or delete.

import type {
  ContextReads,
  Extraction,
  Memory,
  MemoryKind,
  ForgetReceipt,
  ForgetScope,
  ForgetTier,
  Fact,
  GraphVersion,
  Job,
  JobType,
  Message,
  NewJob,
  NewMessage,
  QueueStats,
  ScoredId,
  Session,
  SessionScoredId,
  Summary,
  Tenant,
  UserVersion,
  VersionReads,
} from "./types.ts";

/** Something that can report whether its backing service answers, and how fast. */
export interface Pingable {
  /** Name of the adapter, e.g. "pglite" or "upstash"; shown by GET /v1/health. */
  readonly adapter: string;
  /** Round trip to the backing service. Rejects with a StrataError when it does not answer. */
  ping(): Promise<void>;
}

export interface IngestRequest {
  tenantId: string;
  sessionId: string;
  userId: string;
  messages: NewMessage[];
  /**
   * Builds the outbox rows for the messages this call actually inserted (repeats excluded);
   * under a group commit, for the messages its group inserted for the tenant (IngestResult.jobs).
   * Given their ids only: the archive builds the rows before it knows their seq numbers when it
   * writes a request of new messages in one statement.
   */
  jobsFor(inserted: Pick<Message, "id">[]): NewJob[];
}

export interface IngestResult {
  /** One entry per requested message, in request order; `created` is false for a repeat. */
  messages: { id: string; seq: number; created: boolean }[];
  /** Messages inserted by this call. */
  inserted: Message[];
  /**
   * Outbox rows committed with them. An archive that commits concurrent calls together
   * (PGlite's group commit) may build one set of rows for all of a tenant's messages of the
   * group and hand it to one of the calls; each row is handed to exactly one call.
   */
  jobs: Job[];
  /** The session after the call. */
  session: Session;
  /**
   * The user's version once this call's messages were committed (migration 4), when the
   * archive keeps one and read it back: a keyword index that held the version just before
   * holds this one once it added them, with no read of its own.
   */
  userVersion?: UserVersion;
}

export interface HistoryQuery {
  /** At most this many messages (ascending by seq). */
  limit: number;
  /** Only messages with seq < before: the `limit` immediately before it. */
  before?: number;
  /** Only messages with seq > after: the `limit` immediately after it. */
  after?: number;
}

export interface KeywordQuery {
  tenantId: string;
  userId: string;
  query: string;
  limit: number;
  sessionId?: string;
}

export interface ClaimOptions {
  /** At most this many jobs. */
  limit: number;
  /** How long the claim holds before another worker may take the job again. */
  leaseMs: number;
  types?: JobType[];
}

/** What a context call's first statement reads besides the session (Archive.readContext). */
export interface ContextReadOptions {
  /** The user whose memories and versions are read when the session does not exist yet. */
  userId?: string;
  memoryLimit: number;
  /**
   * With `userId`: also what merges added to that user's graph after `since`, when its version
   * is above `since` by at most `maxMerges` merges with no delete since (GraphStore.catchUpFrom).
   */
  graphDelta?: { since: number; maxMerges: number };
}

/**
 * The system of record: tenants, keys, users, sessions, messages, summaries, the keyword
 * index and the outbox. Strongly consistent and transactional; every other tier is
 * derived from it.
 */
export interface Archive extends Pingable {
  /** Applies pending schema migrations; safe to call on every start. */
  migrate(): Promise<void>;

  /** Creates a tenant (id generated when not given). Rejects with CONFLICT if the id exists. */
  createTenant(input: { id?: string; name: string }): Promise<Tenant>;
  /** Creates the tenant if it does not exist; returns it either way. */
  ensureTenant(input: { id: string; name: string }): Promise<Tenant>;
  /** The tenant, or null. */
  getTenant(id: string): Promise<Tenant | null>;
  /** Stores the hash of an API key for a tenant. Idempotent for the same hash and tenant. */
  addApiKey(input: { tenantId: string; keyHash: string; label?: string }): Promise<void>;
  /** The tenant a (hashed) API key maps to, or null when unknown or revoked. */
  tenantForKey(keyHash: string): Promise<string | null>;

  /**
   * Stores messages and their outbox rows in one transaction. Idempotent per message id
   * within the tenant: a repeat with identical role, content and session is a no-op
   * returning the stored seq; a repeat that differs rejects the whole call with
   * CONFLICT and stores nothing. Rejects with CONFLICT when the session belongs to
   * another user.
   */
  ingest(request: IngestRequest): Promise<IngestResult>;

  /** The session, or null. */
  getSession(tenantId: string, sessionId: string): Promise<Session | null>;
  /** A page of a session's messages, ascending by seq (see HistoryQuery). */
  listMessages(tenantId: string, sessionId: string, query: HistoryQuery): Promise<Message[]>;
  /** The stored messages among `ids`, in no particular order; unknown ids are skipped. */
  getMessages(tenantId: string, ids: string[]): Promise<Message[]>;
  /** Full-text search over one user's messages, best first. */
  keywordSearch(query: KeywordQuery): Promise<ScoredId[]>;
  /**
   * A context call's first reads in one round trip: the session, its latest summary, and for
   * the session's user (`userId` when the session does not exist yet) up to `memoryLimit`
   * memories (as listMemories) and the user's version. One statement, so all of it is one
   * snapshot taken after the call began. Optional: without it a context call reads each on
   * its own (an archive whose summaries and memories are cached in memory leaves it out).
   */
  readContext?(tenantId: string, sessionId: string, options: ContextReadOptions): Promise<ContextReads>;
  /**
   * A user's version and graph version in one round trip, as readContext reads them: a search,
   * which has no session, reads them once for both indexes that check the archive's versions,
   * instead of a statement each. Optional, as readContext is.
   */
  readVersions?(tenantId: string, userId: string): Promise<VersionReads>;
  /** The newest summary of a session, or null. */
  latestSummary(tenantId: string, sessionId: string): Promise<Summary | null>;
  /**
   * Stores a rolling summary; idempotent per (session, upToSeq): a repeat keeps the first.
   * `basedOn` is the upToSeq of the summary it was rolled from (null for none): when that
   * summary is gone (a forget removed it) nothing is stored, so text drawn from a forgotten
   * message cannot come back. Returns whether the summary is stored (new or already there).
   */
  saveSummary(summary: Omit<Summary, "createdAt">, basedOn: number | null): Promise<boolean>;
  /** Deletes every summary of a session (they are rebuilt by the next summarize run). */
  deleteSummaries(tenantId: string, sessionId: string): Promise<void>;
  /**
   * Sessions due for a summary, oldest activity first: at least `minNew` messages older than
   * the newest `recentWindow` not yet covered by the latest summary, and no summarize job
   * for the session waiting or running.
   */
  sessionsDueForSummary(options: { recentWindow: number; minNew: number; limit: number }): Promise<{ tenantId: string; sessionId: string }[]>;
  /** How many of one tenant's sessions are due for a summary, by the same rule (none of them queued yet). */
  countSessionsDueForSummary(tenantId: string, options: { recentWindow: number; minNew: number }): Promise<number>;
  /**
   * Records that a session's summaries reach `upToSeq` (raising, never lowering, what
   * sessionsDueForSummary goes by): for a session found due whose latest summary was written
   * without it (by code older than the archive's migration 7), so it is not found due again.
   */
  markSummarized(tenantId: string, sessionId: string, upToSeq: number): Promise<void>;

  /**
   * Stores memories, idempotent by id; a memory whose source message was forgotten is not
   * stored. `expiresAt` (none when omitted) is when sweepExpired may delete it.
   */
  saveMemories(memories: (Omit<Memory, "createdAt" | "expiresAt"> & { expiresAt?: string | null })[]): Promise<void>;
  /** A user's unexpired memories, highest priority first, newest first among equals. */
  listMemories(tenantId: string, userId: string, options: { kinds?: MemoryKind[]; limit: number }): Promise<Memory[]>;
  /** Deletes the memories drawn from these messages. */
  deleteMemoriesFrom(tenantId: string, messageIds: string[]): Promise<void>;
  /** Deletes up to `limit` memories (all tenants) whose expiry has passed; returns them as (tenant, id). */
  sweepExpired(limit: number): Promise<{ tenantId: string; id: string }[]>;

  /**
   * Forgets a message, a session or a user in one transaction: tombstones every message it
   * removes (and the session or user), deletes the rows, writes a receipt with the archive
   * tier done, and commits the forget job that purges the derived tiers. Rejects with
   * NOT_FOUND when there is nothing to forget.
   */
  forget(input: { tenantId: string; scope: ForgetScope; id: string }): Promise<{ receipt: ForgetReceipt; job: Job }>;
  /** The ids among `messageIds` that were forgotten. */
  tombstoned(tenantId: string, messageIds: string[]): Promise<Set<string>>;
  /** A forget receipt, or null. */
  getForgetReceipt(tenantId: string, receiptId: string): Promise<ForgetReceipt | null>;
  /** Marks tiers of a receipt done (and the receipt complete once all are); returns it. */
  markForgotten(receiptId: string, tiers: ForgetTier[]): Promise<ForgetReceipt | null>;

  /**
   * Leases runnable jobs: pending or dispatched ones whose run-after time has come, and
   * running ones whose lease expired (a worker that died). Increments their attempts.
   */
  claimJobs(options: ClaimOptions): Promise<Job[]>;
  /** The jobs among `ids`, any status. */
  getJobs(ids: string[]): Promise<Job[]>;
  /**
   * Starts jobs delivered by an external queue (SQS): running, attempts incremented, leased.
   * Returns only the jobs that may run; done, failed or unknown ids are left out.
   */
  startJobs(ids: string[], leaseMs: number): Promise<Job[]>;
  /** Records a failed attempt whose retry the external queue owns: back to dispatched, error kept. */
  releaseJob(id: string, error: string): Promise<void>;
  /** Puts dead-lettered jobs back to pending with fresh attempts (last error kept); returns them. */
  retryFailedJobs(tenantId?: string): Promise<Job[]>;
  /** Pending jobs never dispatched and older than `olderThanMs`: what the outbox relay re-sends. */
  undispatchedJobs(olderThanMs: number, limit: number): Promise<Job[]>;
  /** Messages of every tenant in (tenant, id) order after `after`: what derived tiers are rebuilt from. */
  scanMessages(after: { tenantId: string; id: string } | null, limit: number): Promise<Message[]>;
  /** How many messages the archive holds, all tenants. */
  countMessages(): Promise<number>;
  /**
   * The unfinished rebuild of `target` (e.g. "vectors") for `model`, or a new one: a run
   * interrupted part-way resumes from its saved cursor.
   */
  openReindexRun(target: string, model: string): Promise<{ id: string; cursor: { tenantId: string; id: string } | null; processed: number; resumed: boolean }>;
  /** Saves a rebuild's position after a batch. */
  saveReindexProgress(runId: string, cursor: { tenantId: string; id: string }, processed: number, total: number): Promise<void>;
  /** Marks a rebuild finished; the next one for the same model starts from the beginning. */
  finishReindexRun(runId: string): Promise<void>;
  /**
   * Returns every running job to pending, lease or not. Only for an archive one process owns
   * alone (embedded PGlite): at its start, whatever was running belonged to a process that died.
   */
  releaseRunningJobs(): Promise<number>;
  /** Commits outbox rows for work not born of an ingest (scheduled summaries); returns them pending. */
  enqueueJobs(jobs: (NewJob & { tenantId: string })[]): Promise<Job[]>;
  /** Marks jobs as handed to the queue. */
  markDispatched(ids: string[]): Promise<void>;
  /** Marks jobs done. Idempotent. */
  completeJobs(ids: string[]): Promise<void>;
  /**
   * Records a failed attempt: back to pending with `retryAt`, or, when `retryAt` is null,
   * dead-lettered (status failed) with the error kept.
   */
  failJob(id: string, error: string, retryAt: Date | null): Promise<void>;
  /** Backlog of one tenant's jobs (all tenants when tenantId is omitted). */
  queueStats(tenantId?: string): Promise<QueueStats>;

  /** Releases the connection or database the adapter opened (not one it was given). */
  close(): Promise<void>;
}

/** The hot tier: each session's recent window, kept short and cheap to read. */
export interface HotStore extends Pingable {
  /**
   * Appends messages to a session's window, keeps it ordered by seq without duplicates,
   * and trims it to the newest `maxLength`. Does nothing for a session whose window is
   * not cached (the next read repairs it from the archive).
   */
  appendWindow(tenantId: string, sessionId: string, messages: Message[], maxLength: number): Promise<void>;
  /** The newest `limit` messages of the window, ascending by seq; null on a miss. */
  readWindow(tenantId: string, sessionId: string, limit: number): Promise<Message[] | null>;
  /** Replaces the window (read-through repair from the archive). */
  replaceWindow(tenantId: string, sessionId: string, messages: Message[], maxLength: number): Promise<void>;
  /** Drops everything cached for a session. */
  dropSession(tenantId: string, sessionId: string): Promise<void>;
  close(): Promise<void>;
}

export type VectorKind = "message" | "summary" | "memory";

export interface VectorRecord {
  tenantId: string;
  userId: string;
  sessionId: string;
  kind: VectorKind;
  /** Id of the item embedded (the message id for kind "message"). */
  id: string;
  /** Embedder model that produced the vector. */
  model: string;
  vector: Float32Array;
}

export interface VectorQuery {
  tenantId: string;
  userId: string;
  vector: Float32Array;
  topK: number;
  sessionId?: string;
  kinds?: VectorKind[];
}

export interface VectorMatch {
  id: string;
  kind: VectorKind;
  sessionId: string;
  /** Cosine similarity, higher is closer. */
  score: number;
}

/** Semantic recall. Queries are always filtered by tenant and user. */
export interface VectorIndex extends Pingable {
  /** Inserts or replaces vectors, keyed by (tenant, kind, id). */
  upsert(records: VectorRecord[]): Promise<void>;
  /** Nearest neighbours within one user's vectors, best first. */
  query(query: VectorQuery): Promise<VectorMatch[]>;
  /** Deletes vectors by item id (any kind). */
  deleteByIds(tenantId: string, ids: string[]): Promise<void>;
  /** Deletes every vector of a user. */
  deleteByUser(tenantId: string, userId: string): Promise<void>;
  /** How many vectors a user has (or the tenant, when userId is omitted). */
  count(tenantId: string, userId?: string): Promise<number>;
  /**
   * Users of the tenant whose approximate index this process is building (in the background,
   * answering their queries exactly meanwhile), or whose rows it is laying out again in the
   * index's order (the index answering meanwhile). Only an index built in process has one; a
   * managed index (Pinecone) builds its own and leaves this out.
   */
  buildsInFlight?(tenantId: string): number;
  close(): Promise<void>;
}

export interface GraphMerge {
  tenantId: string;
  userId: string;
  sessionId: string;
  messageId: string;
  extraction: Extraction;
}

/** Entities, relations and the mentions that tie them to messages. */
export interface GraphStore extends Pingable {
  /**
   * Merges one message's extraction: entities by (type, normalised name), a mention
   * per entity and message, relations with the message as evidence. Idempotent: merging
   * the same message twice changes nothing.
   */
  merge(items: GraphMerge[]): Promise<void>;
  /**
   * Messages that mention entities named in `terms` (a name equal to a term, or whose
   * words are all among the terms), best first: a message scores more for each matched
   * entity it mentions, and more for rarer ones. A store that holds each mention's session
   * says it (the SQL tables and the in-process index do; Neo4j's does not): the search's
   * session prior then looks none of them up.
   */
  messagesMentioning(input: { tenantId: string; userId: string; terms: string[]; limit: number; asOf?: GraphVersion }): Promise<SessionScoredId[]>;
  /**
   * Facts (relations, strongest first) about entities named in `terms`, or the user's strongest when terms is empty.
   * `asOf` (both reads): the user's graph version as read after the caller's request began
   * (ContextReads.graphVersion); a store that checks a version before answering may use it
   * instead of reading it again. Others ignore it.
   */
  facts(input: { tenantId: string; userId: string; terms: string[]; limit: number; asOf?: GraphVersion }): Promise<Fact[]>;
  /**
   * The version after which a context call's first statement should read what merges added
   * to this user's graph (ContextReadOptions.graphDelta, then GraphVersion.delta), and how many
   * merges it would catch up on at most; null when none is wanted (the user's graph is not
   * held). Only a store that holds graphs in memory and checks versions (the shared graph
   * index) has it.
   */
  catchUpFrom?(tenantId: string, userId: string): { since: number; maxMerges: number } | null;
  /** Counts for tests and status: entities, relations, mentions of one user. */
  counts(tenantId: string, userId: string): Promise<{ entities: number; relations: number; mentions: number }>;
  /** Removes mentions and evidence of these messages, and entities/relations left without any. */
  deleteByMessages(tenantId: string, messageIds: string[]): Promise<void>;
  /** Removes a user's whole graph. */
  deleteByUser(tenantId: string, userId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Handles one job; throwing marks the attempt failed. A handler may also run several jobs
 * at once (`batch`): one archive read and one tier write for many small jobs, answering
 * with the ids of the jobs that failed and why; the others are done. `pause`, when given, is
 * awaited before each run of the batch (the embedded runner waits there for a moment without
 * requests, as before each round).
 */
export type JobHandler = ((job: Job) => Promise<void>) & {
  batch?: (jobs: Job[], pause?: () => Promise<void>) => Promise<Map<string, unknown>>;
};

/** Carries committed outbox rows to workers, at least once. */
export interface JobQueue extends Pingable {
  /**
   * True when the consumer reads the outbox table itself (the embedded runner): dispatch is
   * only a wake-up, and marking rows dispatched would be a statement that changes nothing.
   */
  readonly readsOutbox?: boolean;
  /** Hands jobs already committed to the outbox to the workers. */
  dispatch(jobs: Job[]): Promise<void>;
  /** Starts consuming with `handler`. */
  start(handler: JobHandler): void;
  /** Stops consuming; waits for jobs in hand to finish. */
  stop(): Promise<void>;
}

/** Text to vector, deterministic per model. */
export interface Embedder {
  /** Model name recorded beside every vector it makes. */
  readonly model: string;
  readonly dimensions: number;
  /** One unit-length vector per text, in order. */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** Entities and relations out of message text, without an LLM in the embedded build. */
export interface Extractor {
  /** Changes when the extraction rules change, so a re-extract can be targeted. */
  readonly version: string;
  /** One extraction per message, in order. `name` is the speaker, when known. */
  extract(messages: { content: string; name: string | null; createdAt: string }[]): Promise<Extraction[]>;
  /** Releases what it holds (the local extractor's thread); extract may not be called after. */
  close?(): Promise<void>;
  /** Where it parses, as GET /v1/health shows it (default "in-process"). */
  readonly detail?: string;
}

export interface SummaryInput {
  /** The session's previous rolling summary, or null for the first one. */
  previous: string | null;
  /** The messages after the previous summary, ascending by seq. */
  messages: Pick<Message, "seq" | "role" | "name" | "content" | "createdAt">[];
  /** The summary's size limit, in tokens of the project tokenizer. */
  maxTokens: number;
}

/** Rolling session summaries; the embedded build's one is extractive, without an LLM. */
export interface Summarizer {
  /** Changes when the summarizing rules change, so summaries can be rebuilt on purpose. */
  readonly version: string;
  /** The new rolling summary: the previous one merged with the messages, at most `maxTokens` tokens. */
  summarize(input: SummaryInput): Promise<string>;
}

/** Token counting with a real BPE tokenizer. */
export interface Tokenizer {
  readonly name: string;
  count(text: string): number;
  /**
   * Exactly count of the pieces joined (a KnownPiece as before + text + after), where a
   * tokenizer can do it faster: from cached counts of pieces it has seen (a prompt's lines
   * recur from call to call), and from the counts a KnownPiece carries.
   */
  countJoined?(pieces: readonly (string | KnownPiece)[]): number;
  /**
   * count(text) when it is at most `limit`, else false, found without counting all of a long
   * text: a caller filling what is left of a budget asks this of each candidate.
   */
  countWithin?(text: string, limit: number): number | false;
}

/**
 * A piece of a prompt around a text whose count is known: a turn's line is its speaker
 * (`before`), its content (`text`, counted at ingest: `tokens` must be count(text) by the
 * same tokenizer) and the separator after it.
 */
export interface KnownPiece {
  before: string;
  text: string;
  tokens: number;
  after: string;
}
