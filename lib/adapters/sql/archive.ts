// The archive over any Postgres reachable through the SqlClient seam: PGlite embedded, Neon
// in production. All SQL lives here, written once; batches go through unnest() so an
// ingest of 100 messages is a handful of statements, not hundreds (PGlite runs each
// statement on one WebAssembly thread, so statement count is what costs).

import { StrataError } from "../../core/errors.ts";
import type { Archive, ClaimOptions, HistoryQuery, IngestRequest, IngestResult, KeywordQuery } from "../../core/ports.ts";
import { words } from "../../core/text.ts";
import type { ContextReads, ForgetReceipt, GraphVersion, ForgetScope, Job, JobStatus, Memory, JobType, Message, NewJob, QueueStats, Role, ScoredId, Session, Summary, Tenant, UserVersion, VersionReads } from "../../core/types.ts";
import type { SqlClient } from "./client.ts";
import { graphDeltaOf, graphDeltaRows } from "./graph-store.ts";
import { groupCommits } from "./group-commit.ts";
import { migrate } from "./migrations.ts";

export interface SqlArchiveOptions {
  sql: SqlClient;
  /** Close the SqlClient on close(): true when the archive opened it. */
  ownsClient?: boolean;
  /**
   * Commit concurrent ingests together (group-commit.ts); default on. On PGlite every
   * statement runs on the process' one thread, and a transaction costs the same for one
   * message as for eight. Over a Postgres server (Neon) a transaction is four round trips
   * whatever it holds, and a group's messages share their outbox rows: with eight writers of
   * one message each, a long-running server acknowledged about 1.5 times as many and drained
   * their derived work 1.8 times as fast (BENCHMARKS.md, "Managed single-message ingest").
   * A Lambda instance serves one request at a time, so its ingests never wait for a group.
   */
  groupIngest?: boolean;
  /** Where ingests are grouped: how to wait for more before each group (GroupCommitOptions.gather). */
  gatherIngests?: () => Promise<void>;
}

type Row = Record<string, unknown>;

/** Most messages one group commit of concurrent ingests holds (two requests of the API's largest, 500 each). */
const GROUP_MAX_MESSAGES = 1000;

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

/** A messages row (MESSAGE_COLUMNS) as a Message. */
export function toMessage(r: Row): Message {
  return {
    tenantId: String(r.tenant_id),
    id: String(r.id),
    sessionId: String(r.session_id),
    userId: String(r.user_id),
    seq: Number(r.seq),
    role: r.role as Role,
    name: r.name == null ? null : String(r.name),
    content: String(r.content),
    metadata: (typeof r.metadata === "string" ? JSON.parse(r.metadata) : r.metadata ?? {}) as Record<string, unknown>,
    tokens: Number(r.tokens),
    createdAt: iso(r.created_at),
  };
}

function toSession(r: Row): Session {
  return {
    tenantId: String(r.tenant_id),
    id: String(r.id),
    userId: String(r.user_id),
    lastSeq: Number(r.last_seq),
    createdAt: iso(r.created_at),
  };
}

function toSummary(r: Row): Summary {
  return {
    tenantId: String(r.tenant_id),
    sessionId: String(r.session_id),
    userId: String(r.user_id),
    content: String(r.content),
    upToSeq: Number(r.up_to_seq),
    tokens: Number(r.tokens),
    createdAt: iso(r.created_at),
  };
}

function toMemory(r: Row): Memory {
  return {
    tenantId: String(r.tenant_id),
    id: String(r.id),
    userId: String(r.user_id),
    kind: r.kind as Memory["kind"],
    content: String(r.content),
    priority: Number(r.priority),
    tokens: Number(r.tokens),
    sourceMessageId: r.source_message_id == null ? null : String(r.source_message_id),
    createdAt: iso(r.created_at),
    expiresAt: r.expires_at == null ? null : iso(r.expires_at),
  };
}

/**
 * The columns of a users row that say where its messages stand (see UserVersion); the
 * keyword index and readContext select them alike, so their epochs compare equal.
 */
export const USER_VERSION_COLUMNS = "messages_version, forgot_version, (extract(epoch from created_at) * 1000000)::bigint::text as created_us";

/** A row of USER_VERSION_COLUMNS as a UserVersion. */
export function toUserVersion(r: Row): UserVersion {
  return { messagesVersion: Number(r.messages_version), forgotVersion: Number(r.forgot_version), epoch: String(r.created_us) };
}

/**
 * The columns user_version, graph_version and, with `delta`, graph_delta of a statement whose
 * $1 is the tenant: the user's version row and graph version row as JSON, and what merges added
 * to the user's graph after `delta.since`, when its version is above it by at most
 * `delta.maxMerges` merges with no delete since (GraphStore.catchUpFrom; null otherwise).
 * `user`, and each of `delta`'s fields, are SQL expressions (placeholders); `delta.when` a
 * further condition for the delta. readContext and readVersions (without the delta: its clause
 * alone took Postgres about 0.3 ms to plan, the versions 0.05) read them alike.
 */
function versionColumns(user: string, delta: { user: string; since: string; maxMerges: string; when?: string } | null): string {
  const columns = `(select row_to_json(v) from (
              select ${USER_VERSION_COLUMNS} from users where tenant_id = $1 and id = ${user}) v) as user_version,
           (select row_to_json(g) from (
              select version, reset_version from graph_versions where tenant_id = $1 and user_id = ${user}) g) as graph_version`;
  if (!delta) return columns;
  const { since, maxMerges } = delta;
  return `${columns},
           case when ${delta.when ? `${delta.when} and ` : ""}exists (
                  select 1 from graph_versions where tenant_id = $1 and user_id = ${delta.user}
                    and version > ${since}::bigint and version - ${since}::bigint <= ${maxMerges} and reset_version <= ${since}::bigint)
                then (select coalesce(json_agg(changed), '[]'::json) from (${graphDeltaRows({ tenant: "$1", user: delta.user, since })}) changed)
           end as graph_delta`;
}

/** A row of versionColumns as VersionReads; `graphDelta`: the delta the statement asked for, if any. */
function toVersionReads(r: Row, graphDelta: { since: number } | undefined): VersionReads {
  const version = parseJson(r.user_version) as Row | null;
  const graph = parseJson(r.graph_version) as Row | null;
  const changes = graphDelta ? (parseJson(r.graph_delta) as Row[] | null) : null;
  // No row: never written since migration 6 (a row is never deleted), version 0.
  const graphVersion: GraphVersion = graph ? { version: Number(graph.version), reset: Number(graph.reset_version) } : { version: 0, reset: 0 };
  if (changes && graphDelta) graphVersion.delta = graphDeltaOf(graphDelta.since, changes);
  return { userVersion: version ? toUserVersion(version) : null, graphVersion };
}

/**
 * A session `s` is due for a summary: at least $2 messages older than the newest $1 not yet
 * covered by its latest summary (`summarized_seq`, migration 7; the distance is indexed), and
 * no summarize job for it waiting or running.
 */
const SUMMARY_DUE = `s.last_seq - s.summarized_seq >= $1::int + $2::int
    and not exists (
      select 1 from jobs j
      where j.tenant_id = s.tenant_id and j.type = 'summarize' and j.status in ('pending', 'dispatched', 'running')
        and j.payload->>'sessionId' = s.id)`;

const parseJson = (v: unknown): unknown => (typeof v === "string" ? JSON.parse(v) : v);

function toJob(r: Row): Job {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    type: r.type as JobType,
    payload: (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as Job["payload"],
    status: r.status as JobStatus,
    attempts: Number(r.attempts),
    lastError: r.last_error == null ? null : String(r.last_error),
    createdAt: iso(r.created_at),
    runAfter: iso(r.run_after),
  };
}

function toReceipt(r: Row): ForgetReceipt {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    scope: r.scope as ForgetScope,
    targetId: String(r.target_id),
    messages: Number(r.messages),
    tiers: (typeof r.tiers === "string" ? JSON.parse(r.tiers) : r.tiers) as ForgetReceipt["tiers"],
    createdAt: iso(r.created_at),
    completedAt: r.completed_at == null ? null : iso(r.completed_at),
  };
}

export const MESSAGE_COLUMNS = "tenant_id, id, session_id, user_id, seq, role, name, content, metadata, tokens, created_at";

/** A messages row `m` as one JSON object of `columns` (toMessage reads MESSAGE_COLUMNS back). */
export const messageJson = (columns = MESSAGE_COLUMNS) => `json_build_object(${columns.split(", ").map((c) => `'${c}', m.${c}`).join(", ")})`;
/** A messages row `m` as one JSON object of MESSAGE_COLUMNS: the stored messages an ingest meets. */
const MESSAGE_JSON = messageJson();

/**
 * The keyword query: every word of the question OR-ed, so a question matches the turns
 * sharing any of its words and ts_rank orders them. Words are reduced to letters and
 * digits, which makes the to_tsquery input safe; Postgres drops English stopwords.
 */
export function keywordTsQuery(query: string): string {
  return [...new Set(words(query))].filter((w) => /^[\p{L}\p{N}]+$/u.test(w)).join(" | ");
}

/**
 * A request's messages numbered on from the session's `lastSeq`. An id `known` returns (stored
 * before, or earlier in this request or its group) is a repeat and keeps its seq, unless it was
 * stored with other content or in another session (MESSAGE_ID_CONFLICT); the others are new,
 * and `known` is told of each through `remember`.
 */
function placeMessages(req: IngestRequest, lastSeq: number, known: (id: string) => Message | undefined, remember: (m: Message) => void) {
  const { tenantId, sessionId, userId } = req;
  let seq = lastSeq;
  const messages: IngestResult["messages"] = [];
  const inserted: Message[] = [];
  for (const m of req.messages) {
    const prior = known(m.id);
    if (prior) {
      if (prior.sessionId !== sessionId || prior.role !== m.role || prior.content !== m.content || prior.name !== m.name) {
        throw new StrataError(
          "conflict",
          "MESSAGE_ID_CONFLICT",
          `message id "${m.id}" is already stored with different ${prior.sessionId !== sessionId ? "session" : "content"}`,
          { details: { id: m.id } },
        );
      }
      messages.push({ id: m.id, seq: prior.seq, created: false });
      continue;
    }
    const message: Message = { ...m, tenantId, sessionId, userId, seq: ++seq };
    remember(message);
    inserted.push(message);
    messages.push({ id: m.id, seq, created: true });
  }
  return { messages, inserted, seq };
}

/** New messages as the parameter arrays of an insert's unnest: id, seq, role, name, content, metadata, tokens, created_at. */
function messageArrays(fresh: Message[]): unknown[] {
  return [fresh.map((m) => m.id), fresh.map((m) => m.seq), ...messageContents(fresh)];
}

/** What a message says, as parameter arrays (after its id and seq, which ingestNew's seq numbers are not yet): role, name, content, metadata, tokens, created_at. */
function messageContents(ms: readonly Pick<Message, "role" | "name" | "content" | "metadata" | "tokens" | "createdAt">[]): unknown[] {
  return [
    ms.map((m) => m.role),
    ms.map((m) => m.name),
    ms.map((m) => m.content),
    ms.map((m) => JSON.stringify(m.metadata)),
    ms.map((m) => m.tokens),
    ms.map((m) => m.createdAt),
  ];
}

/** New outbox rows of one tenant as parameter arrays: a fresh id, type, payload. */
function jobArrays(jobs: readonly NewJob[]): unknown[] {
  return [jobs.map(() => crypto.randomUUID()), jobs.map((j) => j.type), jobs.map((j) => JSON.stringify(j.payload))];
}

export function createSqlArchive(options: SqlArchiveOptions): Archive {
  const { sql } = options;
  const adapter = sql.driver;

  /**
   * One ingest in a transaction of its own. Over a Postgres server, two at once may send the
   * same new message (a client's retry while its first try is still in flight): the second
   * waits for the session's lock, but its first statement read the stored ids before that
   * wait, so its insert meets the first one's row (a unique violation on the message's key).
   * Run again, it reads the row and answers it as a repeat.
   */
  async function ingestOne(req: IngestRequest): Promise<IngestResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ingestOnce(req);
      } catch (e) {
        const raced = e instanceof StrataError && e.code === "UNIQUE_VIOLATION" && e.details?.constraint === "messages_pkey";
        if (!raced || attempt >= 3) throw e;
      }
    }
  }

  async function ingestOnce(req: IngestRequest): Promise<IngestResult> {
    const { tenantId, sessionId, userId } = req;
    const ids = req.messages.map((m) => m.id);
    if (ids.length && new Set(ids).size === ids.length) {
      const stored = await ingestNew(req);
      if (stored) return stored;
    }
    return sql.transaction(async (tx) => {
      // One statement creates the user and the session when new, locks the session row
      // (the no-op update takes the lock, so concurrent ingests into one session take seq
      // numbers one after another) and reads back which ids exist or were forgotten.
      // Statements are what an ingest costs, on PGlite and over a network alike.
      const [sess] = await tx.query<Row>(
        `with u as (
           insert into users (tenant_id, id) values ($1, $3) on conflict do nothing
         ),
         s as (
           insert into sessions (tenant_id, id, user_id) values ($1, $2, $3)
           on conflict (tenant_id, id) do update set updated_at = sessions.updated_at
           returning *
         )
         select s.*,
           (select coalesce(json_agg(${MESSAGE_JSON}), '[]'::json)
              from messages m where m.tenant_id = $1 and m.id = any($4::text[])) as existing,
           (select min(t.id) from tombstones t where t.tenant_id = $1 and t.kind = 'message' and t.id = any($4::text[])) as forgotten
         from s`,
        [tenantId, sessionId, userId, ids],
      );
      if (!sess) throw new StrataError("internal", "SESSION_MISSING", `session ${sessionId} vanished inside its transaction`);
      if (String(sess.user_id) !== userId) {
        throw new StrataError("conflict", "SESSION_USER_MISMATCH", `session ${sessionId} belongs to another user, not ${userId}`);
      }
      if (sess.forgotten != null) {
        throw new StrataError("conflict", "MESSAGE_FORGOTTEN", `message id "${String(sess.forgotten)}" was forgotten and cannot be stored again`, {
          details: { id: String(sess.forgotten) },
        });
      }
      const existingRows = parseJson(sess.existing) as Row[];
      const existing = new Map(existingRows.map((r) => [String(r.id), toMessage(r)]));
      const { messages: result, inserted: fresh, seq } = placeMessages(req, Number(sess.last_seq), (id) => existing.get(id), (m) => existing.set(m.id, m));

      let jobs: Job[] = [];
      let userVersion: UserVersion | undefined;
      if (fresh.length) {
        // The user's version (migration 4), the messages stamped with it, the session's last
        // seq and the outbox rows, in one statement. Keyword indexes of other processes load
        // the rows stamped above the version they hold; the bump locks the user's row until
        // the commit, so versions commit in order.
        const newJobs = req.jobsFor(fresh);
        const rows = await tx.query<Row>(
          `with ver as (
             update users set messages_version = messages_version + 1 where tenant_id = $1 and id = $3 returning ${USER_VERSION_COLUMNS}
           ),
           ins as (
             insert into messages (tenant_id, id, session_id, user_id, seq, role, name, content, metadata, tokens, created_at, user_version)
             select $1, m.id, $2, $3, m.seq, m.role, m.name, m.content, m.metadata::jsonb, m.tokens, m.created_at, (select messages_version from ver)
             from unnest($4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::timestamptz[])
               as m(id, seq, role, name, content, metadata, tokens, created_at)
           ),
           upd as (
             update sessions set last_seq = $12, updated_at = now() where tenant_id = $1 and id = $2
           ),
           j as (
             insert into jobs (id, tenant_id, type, payload)
             select j.id, $1, j.type, j.payload::jsonb from unnest($13::text[], $14::text[], $15::text[]) as j(id, type, payload)
             returning *
           )
           select (select coalesce(json_agg(j), '[]'::json) from j) as jobs, (select row_to_json(ver) from ver) as user_version_after`,
          [
            tenantId,
            sessionId,
            userId,
            ...messageArrays(fresh),
            seq,
            ...jobArrays(newJobs),
          ],
        );
        jobs = (parseJson(rows[0]!.jobs) as Row[]).map(toJob);
        userVersion = toUserVersion(parseJson(rows[0]!.user_version_after) as Row);
      }
      return { messages: result, inserted: fresh, jobs, session: { ...toSession(sess), lastSeq: seq }, ...(userVersion ? { userVersion } : {}) };
    });
  }

  /**
   * A request of distinct message ids none of which is stored or forgotten, into a session that
   * is new or its user's: one statement instead of the transaction's four round trips over a
   * Postgres server (begin, two statements, commit; on PGlite, two statements fewer). It does
   * what the transaction's two statements do: the user is created or its version bumped in one
   * upsert, the session created or its last seq raised by the messages' number in another (each
   * takes its row's lock, which concurrent ingests then wait for, so seq numbers and versions
   * are still taken one after another), then the messages and the outbox rows. The user's row
   * is written only once the session's is (it reads `s`), so the locks are taken session first,
   * as the transaction's statements take them. When a check fails it writes nothing and answers
   * null, and the transaction answers as it always did (a repeat, a conflict, a refusal). The
   * checks read the statement's snapshot: an id another ingest stores meanwhile makes the
   * insert fail on the messages' key, which ingestOne runs again (and the transaction then
   * finds the id stored); a session another user creates meanwhile returns no row from the
   * session's upsert, and nothing is written.
   */
  async function ingestNew(req: IngestRequest): Promise<IngestResult | null> {
    const { tenantId, sessionId, userId } = req;
    const ids = req.messages.map((m) => m.id);
    const newJobs = req.jobsFor(req.messages);
    const [r] = await sql.query<Row>(
      `with ok as (
         select not exists (select 1 from messages where tenant_id = $1 and id = any($4::text[]))
            and not exists (select 1 from tombstones where tenant_id = $1 and kind = 'message' and id = any($4::text[]))
            and not exists (select 1 from sessions where tenant_id = $1 and id = $2 and user_id <> $3) as go
       ),
       s as (
         insert into sessions as x (tenant_id, id, user_id, last_seq) select $1, $2, $3, cardinality($4::text[]) where (select go from ok)
         on conflict (tenant_id, id) do update set last_seq = x.last_seq + cardinality($4::text[]), updated_at = now()
           where x.user_id = $3
         returning *
       ),
       ver as (
         insert into users as u (tenant_id, id, messages_version) select $1, $3, 1 where exists (select 1 from s)
         on conflict (tenant_id, id) do update set messages_version = u.messages_version + 1
         returning ${USER_VERSION_COLUMNS}
       ),
       ins as (
         insert into messages (tenant_id, id, session_id, user_id, seq, role, name, content, metadata, tokens, created_at, user_version)
         select $1, m.id, $2, $3, s.last_seq - cardinality($4::text[]) + m.ord::int, m.role, m.name, m.content, m.metadata::jsonb, m.tokens, m.created_at, (select messages_version from ver)
         from s, unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::timestamptz[])
           with ordinality as m(id, role, name, content, metadata, tokens, created_at, ord)
       ),
       j as (
         insert into jobs (id, tenant_id, type, payload)
         select j.id, $1, j.type, j.payload::jsonb from s, unnest($11::text[], $12::text[], $13::text[]) as j(id, type, payload)
         returning *
       )
       select (select row_to_json(s) from s) as session, (select row_to_json(ver) from ver) as user_version,
         (select coalesce(json_agg(j), '[]'::json) from j) as jobs`,
      [
        tenantId,
        sessionId,
        userId,
        ids,
        ...messageContents(req.messages),
        ...jobArrays(newJobs),
      ],
    );
    const session = r ? (parseJson(r.session) as Row | null) : null;
    if (!session) return null;
    const lastSeq = Number(session.last_seq);
    const base = lastSeq - ids.length;
    const inserted: Message[] = req.messages.map((m, i) => ({ ...m, tenantId, sessionId, userId, seq: base + i + 1 }));
    const version = parseJson(r!.user_version) as Row | null;
    return {
      messages: inserted.map((m) => ({ id: m.id, seq: m.seq, created: true })),
      inserted,
      jobs: (parseJson(r!.jobs) as Row[]).map(toJob),
      session: toSession(session),
      ...(version ? { userVersion: toUserVersion(version) } : {}),
    };
  }

  /**
   * Several ingests in one transaction, in two statements however many there are: ingestOne's
   * two, over every request's sessions, ids and rows at once. Answers as ingestOne would have,
   * request after request in this order (a repeat of an id an earlier request of the group
   * stored is a repeat), but for the outbox rows: one set per tenant (below).
   *
   * Throws when any request would be refused, and the group commit then runs each request
   * alone: the refusal its caller sees comes from ingestOne, with nothing of it stored. (Kept
   * apart from ingestOne: these statements, planned for one request, made a lone ingest 27%
   * slower.)
   */
  async function ingestMany(reqs: IngestRequest[]): Promise<IngestResult[]> {
    const key = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;
    // Each session once, with the user of its first request (a later one of another user is refused below).
    const sessions = new Map<string, IngestRequest>();
    const idTenants: string[] = [];
    const ids: string[] = [];
    for (const r of reqs) {
      if (!sessions.has(key(r.tenantId, r.sessionId))) sessions.set(key(r.tenantId, r.sessionId), r);
      for (const m of r.messages) {
        idTenants.push(r.tenantId);
        ids.push(m.id);
      }
    }
    // Sessions, and below users, given in their keys' order, so that two processes' groups on
    // one database take their row locks in one order. (Were they to wait for each other in a
    // cycle anyway, Postgres would fail one, and that group's requests would run one by one.)
    const byKey = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);
    const heads = [...sessions.entries()].sort(byKey).map(([, r]) => r);
    return sql.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `with p as (
           select * from unnest($1::text[], $2::text[], $3::text[]) as p(tenant_id, session_id, user_id)
         ),
         u as (
           insert into users (tenant_id, id) select distinct tenant_id, user_id from p on conflict do nothing
         ),
         s as (
           insert into sessions (tenant_id, id, user_id) select tenant_id, session_id, user_id from p
           on conflict (tenant_id, id) do update set updated_at = sessions.updated_at
           returning *
         ),
         q as (
           select * from unnest($4::text[], $5::text[]) as q(tenant_id, id)
         )
         select s.*,
           (select coalesce(json_agg(${MESSAGE_JSON}), '[]'::json)
              from messages m join q on m.tenant_id = q.tenant_id and m.id = q.id) as existing,
           (select count(*) from tombstones t join q on t.tenant_id = q.tenant_id and t.id = q.id where t.kind = 'message') as forgotten
         from s`,
        [heads.map((r) => r.tenantId), heads.map((r) => r.sessionId), heads.map((r) => r.userId), idTenants, ids],
      );
      if (rows.length !== heads.length) throw new StrataError("internal", "SESSION_MISSING", "a session vanished inside its transaction");
      if (Number(rows[0]!.forgotten) > 0) throw new StrataError("conflict", "MESSAGE_FORGOTTEN", "a message id of the group was forgotten");
      const existingRows = parseJson(rows[0]!.existing) as Row[];
      const stored = new Map<string, Message>(existingRows.map((r) => [key(String(r.tenant_id), String(r.id)), toMessage(r)]));
      const sessionRows = new Map(rows.map((r) => [key(String(r.tenant_id), String(r.id)), r]));
      const lastSeq = new Map(rows.map((r) => [key(String(r.tenant_id), String(r.id)), Number(r.last_seq)]));

      const results: IngestResult[] = [];
      const fresh: Message[] = [];
      // A tenant's outbox rows are built over the group's messages of that tenant at once, and
      // carried by the first request that stored some: the job runner then reads, embeds and
      // extracts them together, as it would a batch (single-message jobs made eight times the rounds).
      const tenantFirst = new Map<string, { request: number; messages: Message[] }>();
      for (const [i, req] of reqs.entries()) {
        const { tenantId, sessionId, userId } = req;
        const sk = key(tenantId, sessionId);
        const sess = sessionRows.get(sk)!;
        if (String(sess.user_id) !== userId) throw new StrataError("conflict", "SESSION_USER_MISMATCH", `session ${sessionId} belongs to another user`);
        const { messages, inserted, seq } = placeMessages(req, lastSeq.get(sk)!, (id) => stored.get(key(tenantId, id)), (m) => stored.set(key(tenantId, m.id), m));
        lastSeq.set(sk, seq);
        fresh.push(...inserted);
        if (inserted.length) {
          const first = tenantFirst.get(tenantId);
          if (first) first.messages.push(...inserted);
          else tenantFirst.set(tenantId, { request: i, messages: [...inserted] });
        }
        results.push({ messages, inserted, jobs: [], session: { ...toSession(sess), lastSeq: seq } });
      }
      if (!fresh.length) return results;
      const jobs: { request: number; job: NewJob; id: string }[] = [];
      for (const { request, messages } of tenantFirst.values()) {
        for (const job of reqs[request]!.jobsFor(messages)) jobs.push({ request, job, id: crypto.randomUUID() });
      }

      // As ingestOne's second statement: each user's version bumped once, the rows stamped
      // with their user's, each session's last seq, and the outbox rows.
      const users = new Map([...new Map(fresh.map((m) => [key(m.tenantId, m.userId), m]))].sort(byKey));
      const touched = [...new Map(fresh.map((m) => [key(m.tenantId, m.sessionId), m])).values()];
      const rowsOut = await tx.query<Row>(
        `with ver as (
           update users set messages_version = messages_version + 1
           from unnest($1::text[], $2::text[]) as v(tenant_id, id)
           where users.tenant_id = v.tenant_id and users.id = v.id
           returning users.tenant_id, users.id, ${USER_VERSION_COLUMNS}
         ),
         ins as (
           insert into messages (tenant_id, id, session_id, user_id, seq, role, name, content, metadata, tokens, created_at, user_version)
           select m.tenant_id, m.id, m.session_id, m.user_id, m.seq, m.role, m.name, m.content, m.metadata::jsonb, m.tokens, m.created_at,
             (select ver.messages_version from ver where ver.tenant_id = m.tenant_id and ver.id = m.user_id)
           from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::timestamptz[])
             as m(tenant_id, session_id, user_id, id, seq, role, name, content, metadata, tokens, created_at)
         ),
         upd as (
           update sessions set last_seq = x.last_seq, updated_at = now()
           from unnest($14::text[], $15::text[], $16::int[]) as x(tenant_id, id, last_seq)
           where sessions.tenant_id = x.tenant_id and sessions.id = x.id
         ),
         j as (
           insert into jobs (id, tenant_id, type, payload)
           select j.id, j.tenant_id, j.type, j.payload::jsonb from unnest($17::text[], $18::text[], $19::text[], $20::text[]) as j(id, tenant_id, type, payload)
           returning *
         )
         select (select coalesce(json_agg(j), '[]'::json) from j) as jobs, (select json_agg(ver) from ver) as user_versions_after`,
        [
          [...users.values()].map((m) => m.tenantId),
          [...users.values()].map((m) => m.userId),
          fresh.map((m) => m.tenantId),
          fresh.map((m) => m.sessionId),
          fresh.map((m) => m.userId),
          ...messageArrays(fresh),
          touched.map((m) => m.tenantId),
          touched.map((m) => m.sessionId),
          touched.map((m) => lastSeq.get(key(m.tenantId, m.sessionId))!),
          jobs.map((j) => j.id),
          jobs.map((j) => reqs[j.request]!.tenantId),
          jobs.map((j) => j.job.type),
          jobs.map((j) => JSON.stringify(j.job.payload)),
        ],
      );
      const byId = new Map((parseJson(rowsOut[0]!.jobs) as Row[]).map((r) => [String(r.id), toJob(r)]));
      for (const j of jobs) results[j.request]!.jobs.push(byId.get(j.id)!);
      // Each user's version after this commit, for the calls that stored messages of theirs.
      const after = new Map(((parseJson(rowsOut[0]!.user_versions_after) ?? []) as Row[]).map((r) => [key(String(r.tenant_id), String(r.id)), toUserVersion(r)]));
      for (const [i, req] of reqs.entries()) {
        const v = results[i]!.inserted.length ? after.get(key(req.tenantId, req.userId)) : undefined;
        if (v) results[i]!.userVersion = v;
      }
      return results;
    });
  }
  return {
    adapter,

    async ping() {
      await sql.ping();
    },

    async migrate() {
      await migrate(sql);
    },

    async createTenant({ id, name }) {
      const tenantId = id ?? `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      const rows = await sql.query<Row>(
        "insert into tenants (id, name) values ($1, $2) on conflict (id) do nothing returning id, name, created_at",
        [tenantId, name],
      );
      const r = rows[0];
      if (!r) throw new StrataError("conflict", "TENANT_EXISTS", `tenant ${tenantId} already exists`);
      return { id: String(r.id), name: String(r.name), createdAt: iso(r.created_at) };
    },

    async ensureTenant({ id, name }) {
      await sql.query("insert into tenants (id, name) values ($1, $2) on conflict (id) do nothing", [id, name]);
      const t = await this.getTenant(id);
      if (!t) throw new StrataError("internal", "TENANT_MISSING", `tenant ${id} vanished after insert`);
      return t;
    },

    async getTenant(id): Promise<Tenant | null> {
      const rows = await sql.query<Row>("select id, name, created_at from tenants where id = $1", [id]);
      const r = rows[0];
      return r ? { id: String(r.id), name: String(r.name), createdAt: iso(r.created_at) } : null;
    },

    async addApiKey({ tenantId, keyHash, label }) {
      const rows = await sql.query<Row>(
        `insert into api_keys (key_hash, tenant_id, label) values ($1, $2, $3)
         on conflict (key_hash) do update set label = coalesce(excluded.label, api_keys.label)
         where api_keys.tenant_id = excluded.tenant_id
         returning tenant_id`,
        [keyHash, tenantId, label ?? null],
      );
      if (!rows[0]) throw new StrataError("conflict", "API_KEY_EXISTS", "that API key already belongs to another tenant");
    },

    async tenantForKey(keyHash) {
      const rows = await sql.query<Row>("select tenant_id from api_keys where key_hash = $1 and revoked_at is null", [keyHash]);
      return rows[0] ? String(rows[0].tenant_id) : null;
    },

    ingest:
      (options.groupIngest ?? true)
        ? groupCommits({
            one: ingestOne,
            many: ingestMany,
            weight: (r) => r.messages.length,
            maxWeight: GROUP_MAX_MESSAGES,
            ...(options.gatherIngests ? { gather: options.gatherIngests } : {}),
          })
        : ingestOne,

    async getSession(tenantId, sessionId) {
      const rows = await sql.query<Row>("select * from sessions where tenant_id = $1 and id = $2", [tenantId, sessionId]);
      return rows[0] ? toSession(rows[0]) : null;
    },

    async listMessages(tenantId, sessionId, q: HistoryQuery) {
      const params: unknown[] = [tenantId, sessionId, q.limit];
      let where = "tenant_id = $1 and session_id = $2";
      if (q.before !== undefined) {
        params.push(q.before);
        where += ` and seq < $${params.length}`;
      }
      if (q.after !== undefined) {
        params.push(q.after);
        where += ` and seq > $${params.length}`;
      }
      // Without `after`, the page nearest the end (or nearest `before`); with it, the page right after.
      const order = q.after !== undefined ? "asc" : "desc";
      const rows = await sql.query<Row>(`select ${MESSAGE_COLUMNS} from messages where ${where} order by seq ${order} limit $3`, params);
      const list = rows.map(toMessage);
      return order === "desc" ? list.reverse() : list;
    },

    async getMessages(tenantId, ids) {
      if (!ids.length) return [];
      const rows = await sql.query<Row>(`select ${MESSAGE_COLUMNS} from messages where tenant_id = $1 and id = any($2::text[])`, [tenantId, ids]);
      return rows.map(toMessage);
    },

    async keywordSearch(q: KeywordQuery): Promise<ScoredId[]> {
      const tsq = keywordTsQuery(q.query);
      if (!tsq) return [];
      const params: unknown[] = [q.tenantId, q.userId, tsq, q.limit];
      let where = "tenant_id = $1 and user_id = $2 and doc @@ query";
      if (q.sessionId) {
        params.push(q.sessionId);
        where += " and session_id = $5";
      }
      // Normalisation 1 divides by 1 + log(length), so long turns don't win by size alone.
      // The document vector is computed here (migration 5 dropped the stored one): this is
      // the fallback for a deployment without the in-process keyword index, not a hot path.
      const rows = await sql.query<Row>(
        `select id, ts_rank(doc, query, 1) as score
         from messages
           cross join lateral (select to_tsvector('english', coalesce(name, '') || ' ' || content) as doc) d,
           to_tsquery('english', $3) as query
         where ${where}
         order by score desc, seq desc
         limit $4`,
        params,
      );
      return rows.map((r) => ({ id: String(r.id), score: Number(r.score) }));
    },

    async readContext(tenantId, sessionId, { userId, memoryLimit, graphDelta }): Promise<ContextReads> {
      // One statement: the session decides whose memories and versions are read (the given
      // user only for a session not stored yet). Rows come back as JSON, one column each. The
      // graph version (migration 6) spares a shared graph index its own version read, and the
      // rows merges added since the version it holds (graphDelta, for the given user when the
      // session is theirs) its catch-up read: after each turn's extraction, a second round trip
      // on the call's path.
      const delta = graphDelta && userId !== undefined;
      const rows = await sql.query<Row>(
        `with s as (select * from sessions where tenant_id = $1 and id = $2),
              u as (select coalesce((select user_id from s), $3::text) as id)
         select
           (select row_to_json(s) from s) as session,
           (select row_to_json(x) from (
              select * from summaries where tenant_id = $1 and session_id = $2 order by up_to_seq desc limit 1) x) as summary,
           (select coalesce(json_agg(m order by m.priority desc, m.created_at desc, m.id), '[]'::json) from (
              select * from memories
              where tenant_id = $1 and user_id = (select id from u) and (expires_at is null or expires_at > now())
              order by priority desc, created_at desc, id
              limit $4) m) as memories,
           ${versionColumns("(select id from u)", delta ? { user: "$3", since: "$5", maxMerges: "$6", when: "(select id from u) = $3" } : null)}`,
        delta ? [tenantId, sessionId, userId, memoryLimit, graphDelta.since, graphDelta.maxMerges] : [tenantId, sessionId, userId ?? null, memoryLimit],
      );
      const r = rows[0] ?? {};
      const session = parseJson(r.session) as Row | null;
      const summary = parseJson(r.summary) as Row | null;
      const memories = (parseJson(r.memories) ?? []) as Row[];
      return {
        session: session ? toSession(session) : null,
        summary: summary ? toSummary(summary) : null,
        memories: memories.map(toMemory),
        ...toVersionReads(r, delta ? graphDelta : undefined),
      };
    },

    async readVersions(tenantId, userId): Promise<VersionReads> {
      // readContext's version columns, for a user rather than a session's.
      const rows = await sql.query<Row>(`select ${versionColumns("$2", null)}`, [tenantId, userId]);
      return toVersionReads(rows[0] ?? {}, undefined);
    },

    async latestSummary(tenantId, sessionId): Promise<Summary | null> {
      const rows = await sql.query<Row>(
        "select * from summaries where tenant_id = $1 and session_id = $2 order by up_to_seq desc limit 1",
        [tenantId, sessionId],
      );
      return rows[0] ? toSummary(rows[0]) : null;
    },

    async saveSummary(summary, basedOn) {
      // FOR SHARE on the summary it was rolled from: a forget deleting that row concurrently
      // makes this insert wait, then find it gone and store nothing.
      // The session's summarized_seq (migration 7) rises with it, in the same statement.
      const rows = await sql.query<Row>(
        `with saved as (
           insert into summaries (tenant_id, session_id, user_id, up_to_seq, content, tokens)
           select $1, $2, $3, $4, $5, $6
           where ($7::int is null or exists (
                   select 1 from summaries where tenant_id = $1 and session_id = $2 and up_to_seq = $7 for share))
             and exists (select 1 from sessions where tenant_id = $1 and id = $2 and user_id = $3)
           on conflict (tenant_id, session_id, up_to_seq) do update set tenant_id = summaries.tenant_id
           returning up_to_seq),
         marked as (
           update sessions s set summarized_seq = greatest(s.summarized_seq, saved.up_to_seq)
             from saved where s.tenant_id = $1 and s.id = $2)
         select up_to_seq from saved`,
        [summary.tenantId, summary.sessionId, summary.userId, summary.upToSeq, summary.content, summary.tokens, basedOn],
      );
      return rows.length > 0;
    },

    async deleteSummaries(tenantId, sessionId) {
      await sql.query(
        `with gone as (delete from summaries where tenant_id = $1 and session_id = $2)
         update sessions set summarized_seq = 0 where tenant_id = $1 and id = $2`,
        [tenantId, sessionId],
      );
    },

    async sessionsDueForSummary({ recentWindow, minNew, limit }) {
      const rows = await sql.query<Row>(
        // Tenant by tenant, so each search starts with the tenant as the index does.
        `select s.tenant_id, s.id from tenants t
           cross join lateral (
             select s.tenant_id, s.id, s.updated_at from sessions s
             where s.tenant_id = t.id and ${SUMMARY_DUE}
             order by s.updated_at, s.id
             limit $3) s
         order by s.updated_at, s.tenant_id, s.id
         limit $3`,
        [recentWindow, Math.max(1, minNew), limit],
      );
      return rows.map((r) => ({ tenantId: String(r.tenant_id), sessionId: String(r.id) }));
    },

    async countSessionsDueForSummary(tenantId, { recentWindow, minNew }) {
      const rows = await sql.query<Row>(
        `select count(*)::int as n from sessions s where s.tenant_id = $3 and ${SUMMARY_DUE}`,
        [recentWindow, Math.max(1, minNew), tenantId],
      );
      return Number(rows[0]?.n ?? 0);
    },

    async markSummarized(tenantId, sessionId, upToSeq) {
      await sql.query("update sessions set summarized_seq = $3 where tenant_id = $1 and id = $2 and summarized_seq < $3", [tenantId, sessionId, upToSeq]);
    },

    async saveMemories(memories) {
      if (!memories.length) return;
      await sql.query(
        `insert into memories (tenant_id, id, user_id, kind, content, priority, tokens, source_message_id, expires_at)
         select m.tenant_id, m.id, m.user_id, m.kind, m.content, m.priority, m.tokens, m.source, m.expires_at
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[], $9::timestamptz[])
           as m(tenant_id, id, user_id, kind, content, priority, tokens, source, expires_at)
         where exists (select 1 from users u where u.tenant_id = m.tenant_id and u.id = m.user_id)
           and not exists (select 1 from tombstones t where t.tenant_id = m.tenant_id and t.kind = 'message' and t.id = m.source)
         on conflict (tenant_id, id) do nothing`,
        [
          memories.map((m) => m.tenantId),
          memories.map((m) => m.id),
          memories.map((m) => m.userId),
          memories.map((m) => m.kind),
          memories.map((m) => m.content),
          memories.map((m) => m.priority),
          memories.map((m) => m.tokens),
          memories.map((m) => m.sourceMessageId),
          memories.map((m) => m.expiresAt ?? null),
        ],
      );
    },

    async listMemories(tenantId, userId, { kinds, limit }) {
      const rows = await sql.query<Row>(
        `select * from memories
         where tenant_id = $1 and user_id = $2 and (expires_at is null or expires_at > now())
           ${kinds?.length ? "and kind = any($4::text[])" : ""}
         order by priority desc, created_at desc, id
         limit $3`,
        kinds?.length ? [tenantId, userId, limit, kinds] : [tenantId, userId, limit],
      );
      return rows.map(toMemory);
    },

    async deleteMemoriesFrom(tenantId, messageIds) {
      if (!messageIds.length) return;
      await sql.query("delete from memories where tenant_id = $1 and source_message_id = any($2::text[])", [tenantId, messageIds]);
    },

    async sweepExpired(limit) {
      const rows = await sql.query<Row>(
        `with gone as (
           select tenant_id, id from memories where expires_at <= now() order by expires_at limit $1 for update skip locked)
         delete from memories m using gone where m.tenant_id = gone.tenant_id and m.id = gone.id
         returning m.tenant_id, m.id`,
        [limit],
      );
      return rows.map((r) => ({ tenantId: String(r.tenant_id), id: String(r.id) }));
    },

    async forget({ tenantId, scope, id }) {
      return sql.transaction(async (tx) => {
        const where = scope === "message" ? "id = $2" : scope === "session" ? "session_id = $2" : "user_id = $2";
        const rows = await tx.query<Row>(`select id, session_id, user_id from messages where tenant_id = $1 and ${where}`, [tenantId, id]);
        if (scope === "message" && !rows.length) {
          throw new StrataError("not_found", "MESSAGE_NOT_FOUND", `no message ${id} (it may have been forgotten already)`);
        }
        if (scope !== "message") {
          const table = scope === "session" ? "sessions" : "users";
          const [exists] = await tx.query<Row>(`select 1 as x from ${table} where tenant_id = $1 and id = $2`, [tenantId, id]);
          if (!exists) throw new StrataError("not_found", `${scope.toUpperCase()}_NOT_FOUND`, `no ${scope} ${id} (it may have been forgotten already)`);
        }
        const messageIds = rows.map((r) => String(r.id));
        const sessionIds =
          scope === "user"
            ? (await tx.query<Row>("select id from sessions where tenant_id = $1 and user_id = $2", [tenantId, id])).map((r) => String(r.id))
            : [...new Set(rows.map((r) => String(r.session_id)))].concat(scope === "session" && !rows.length ? [id] : []);
        const userId = scope === "user" ? id : rows[0] ? String(rows[0].user_id) : null;
        const receiptId = `fgt_${crypto.randomUUID().replaceAll("-", "")}`;

        await tx.query(
          `insert into tombstones (tenant_id, kind, id, receipt_id)
           select $1, 'message', m, $3 from unnest($2::text[]) as m
           on conflict do nothing`,
          [tenantId, messageIds, receiptId],
        );
        if (scope !== "message") {
          await tx.query("insert into tombstones (tenant_id, kind, id, receipt_id) values ($1, $2, $3, $4) on conflict do nothing", [
            tenantId,
            scope,
            id,
            receiptId,
          ]);
        }
        // Foreign keys cascade: a session takes its messages and summaries, a user all of theirs.
        await tx.query("delete from memories where tenant_id = $1 and source_message_id = any($2::text[])", [tenantId, messageIds]);
        // A summary may quote the message: its session's summaries go, and the next run rebuilds them without it.
        if (scope === "message") {
          await tx.query("delete from summaries where tenant_id = $1 and session_id = any($2::text[])", [tenantId, sessionIds]);
          await tx.query("update sessions set summarized_seq = 0 where tenant_id = $1 and id = any($2::text[])", [tenantId, sessionIds]);
          await tx.query("delete from messages where tenant_id = $1 and id = $2", [tenantId, id]);
        }
        else if (scope === "session") await tx.query("delete from sessions where tenant_id = $1 and id = $2", [tenantId, id]);
        else await tx.query("delete from users where tenant_id = $1 and id = $2", [tenantId, id]);
        // Keyword indexes of other processes holding this user reload it whole (migration 4).
        // After the deletes, so locks are taken in ingest's order: session, then user.
        if (scope !== "user" && userId !== null) {
          await tx.query(
            "update users set messages_version = messages_version + 1, forgot_version = messages_version + 1 where tenant_id = $1 and id = $2",
            [tenantId, userId],
          );
        }

        const tiers = { archive: "done", hot: "pending", vectors: "pending", graph: "pending" };
        const [receiptRow] = await tx.query<Row>(
          `insert into forget_receipts (id, tenant_id, scope, target_id, messages, tiers)
           values ($1, $2, $3, $4, $5, $6::jsonb) returning *`,
          [receiptId, tenantId, scope, id, messageIds.length, JSON.stringify(tiers)],
        );
        // User scope purges by user in the derived tiers, so the job need not carry every id.
        const payload = { receiptId, scope, targetId: id, messageIds: scope === "user" ? [] : messageIds, sessionIds, userId };
        const [jobRow] = await tx.query<Row>("insert into jobs (id, tenant_id, type, payload) values ($1, $2, 'forget', $3::jsonb) returning *", [
          crypto.randomUUID(),
          tenantId,
          JSON.stringify(payload),
        ]);
        return { receipt: toReceipt(receiptRow!), job: toJob(jobRow!) };
      });
    },

    async tombstoned(tenantId, messageIds) {
      if (!messageIds.length) return new Set<string>();
      const rows = await sql.query<Row>("select id from tombstones where tenant_id = $1 and kind = 'message' and id = any($2::text[])", [
        tenantId,
        messageIds,
      ]);
      return new Set(rows.map((r) => String(r.id)));
    },

    async getForgetReceipt(tenantId, receiptId) {
      const [r] = await sql.query<Row>("select * from forget_receipts where tenant_id = $1 and id = $2", [tenantId, receiptId]);
      return r ? toReceipt(r) : null;
    },

    async markForgotten(receiptId, tiers) {
      const patch = JSON.stringify(Object.fromEntries(tiers.map((t) => [t, "done"])));
      const [r] = await sql.query<Row>(
        `update forget_receipts set tiers = tiers || $2::jsonb,
           completed_at = case when not exists (select 1 from jsonb_each_text(tiers || $2::jsonb) t where t.value <> 'done')
                               then coalesce(completed_at, now()) else completed_at end
         where id = $1 returning *`,
        [receiptId, patch],
      );
      return r ? toReceipt(r) : null;
    },

    async claimJobs({ limit, leaseMs, types }: ClaimOptions) {
      const params: unknown[] = [limit, leaseMs];
      let typeFilter = "";
      if (types?.length) {
        params.push(types);
        typeFilter = "and type = any($3::text[])";
      }
      const rows = await sql.query<Row>(
        // The CTE picks the rows once; an IN (subquery) may be re-evaluated by the planner and
        // then lease more than `limit` jobs.
        `with picked as (
           select id from jobs
           where ((status in ('pending', 'dispatched') and run_after <= now()) or (status = 'running' and lease_until < now()))
             ${typeFilter}
           order by created_at
           limit $1
           for update skip locked)
         update jobs set status = 'running', attempts = jobs.attempts + 1, lease_until = now() + $2 * interval '1 millisecond'
         from picked where jobs.id = picked.id
         returning jobs.*`,
        params,
      );
      return rows.map(toJob).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    async getJobs(ids) {
      if (!ids.length) return [];
      const rows = await sql.query<Row>("select * from jobs where id = any($1::text[])", [ids]);
      return rows.map(toJob);
    },

    async scanMessages(after, limit) {
      const rows = after
        ? await sql.query<Row>(
            `select ${MESSAGE_COLUMNS} from messages where (tenant_id, id) > ($1, $2) order by tenant_id, id limit $3`,
            [after.tenantId, after.id, limit],
          )
        : await sql.query<Row>(`select ${MESSAGE_COLUMNS} from messages order by tenant_id, id limit $1`, [limit]);
      return rows.map(toMessage);
    },

    async countMessages() {
      const [r] = await sql.query<Row>("select count(*)::int as n from messages");
      return Number(r?.n ?? 0);
    },

    async openReindexRun(target, model) {
      const [open] = await sql.query<Row>(
        "select * from reindex_runs where target = $1 and model = $2 and finished_at is null order by started_at desc limit 1",
        [target, model],
      );
      const r =
        open ??
        (await sql.query<Row>("insert into reindex_runs (id, target, model) values ($1, $2, $3) returning *", [crypto.randomUUID(), target, model]))[0]!;
      return {
        id: String(r.id),
        cursor: r.cursor_tenant == null ? null : { tenantId: String(r.cursor_tenant), id: String(r.cursor_id) },
        processed: Number(r.processed),
        resumed: Boolean(open),
      };
    },

    async saveReindexProgress(runId, cursor, processed, total) {
      await sql.query(
        "update reindex_runs set cursor_tenant = $2, cursor_id = $3, processed = $4, total = $5, updated_at = now() where id = $1",
        [runId, cursor.tenantId, cursor.id, processed, total],
      );
    },

    async finishReindexRun(runId) {
      await sql.query("update reindex_runs set finished_at = now(), updated_at = now() where id = $1", [runId]);
    },

    async releaseRunningJobs() {
      const rows = await sql.query<Row>("update jobs set status = 'pending', lease_until = null where status = 'running' returning id");
      return rows.length;
    },

    async startJobs(ids, leaseMs) {
      if (!ids.length) return [];
      const rows = await sql.query<Row>(
        `update jobs set status = 'running', attempts = attempts + 1, lease_until = now() + $2 * interval '1 millisecond'
         where id = any($1::text[]) and status in ('pending', 'dispatched', 'running')
         returning *`,
        [ids, leaseMs],
      );
      return rows.map(toJob);
    },

    async releaseJob(id, error) {
      await sql.query(
        "update jobs set status = 'dispatched', last_error = $2, lease_until = null where id = $1 and status = 'running'",
        [id, error.slice(0, 4000)],
      );
    },

    async retryFailedJobs(tenantId) {
      const rows = await sql.query<Row>(
        `update jobs set status = 'pending', attempts = 0, run_after = now(), lease_until = null, dispatched_at = null
         where status = 'failed' ${tenantId === undefined ? "" : "and tenant_id = $1"}
         returning *`,
        tenantId === undefined ? [] : [tenantId],
      );
      return rows.map(toJob);
    },

    async undispatchedJobs(olderThanMs, limit) {
      const rows = await sql.query<Row>(
        `select * from jobs
         where status = 'pending' and run_after <= now() and created_at < now() - $1 * interval '1 millisecond'
         order by created_at
         limit $2`,
        [olderThanMs, limit],
      );
      return rows.map(toJob);
    },

    async enqueueJobs(jobs) {
      if (!jobs.length) return [];
      const rows = await sql.query<Row>(
        `insert into jobs (id, tenant_id, type, payload)
         select j.id, j.tenant_id, j.type, j.payload::jsonb from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as j(id, tenant_id, type, payload)
         returning *`,
        [jobs.map(() => crypto.randomUUID()), jobs.map((j) => j.tenantId), jobs.map((j) => j.type), jobs.map((j) => JSON.stringify(j.payload))],
      );
      return rows.map(toJob).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    async markDispatched(ids) {
      if (!ids.length) return;
      // A job can be received and started, even finished, before its sender records the send:
      // it keeps its status then, but the send is still recorded.
      await sql.query(
        "update jobs set status = case when status = 'pending' then 'dispatched' else status end, dispatched_at = coalesce(dispatched_at, now()) where id = any($1::text[])",
        [ids],
      );
    },

    async completeJobs(ids) {
      if (!ids.length) return;
      await sql.query("update jobs set status = 'done', done_at = now(), lease_until = null where id = any($1::text[])", [ids]);
    },

    async failJob(id, error, retryAt) {
      await sql.query(
        `update jobs set status = $2, last_error = $3, run_after = coalesce($4::timestamptz, run_after), lease_until = null
         where id = $1 and status <> 'done'`,
        [id, retryAt ? "pending" : "failed", error.slice(0, 4000), retryAt ? retryAt.toISOString() : null],
      );
    },

    async queueStats(tenantId): Promise<QueueStats> {
      const rows = await sql.query<Row>(
        `select status, count(*)::int as n, min(created_at) as oldest from jobs
         where status <> 'done' ${tenantId === undefined ? "" : "and tenant_id = $1"}
         group by status`,
        tenantId === undefined ? [] : [tenantId],
      );
      const stats: QueueStats = { pending: 0, inFlight: 0, failed: 0, oldestPendingAgeMs: null };
      let oldest: number | null = null;
      for (const r of rows) {
        const n = Number(r.n);
        if (r.status === "failed") {
          stats.failed += n;
          continue;
        }
        stats.pending += n;
        if (r.status === "running") stats.inFlight += n;
        const t = new Date(iso(r.oldest)).getTime();
        oldest = oldest === null ? t : Math.min(oldest, t);
      }
      stats.oldestPendingAgeMs = oldest === null ? null : Math.max(0, Date.now() - oldest);
      return stats;
    },

    async close() {
      if (options.ownsClient) await sql.close();
    },
  };
}
