// Versioned schema migrations, one list for every Postgres driver (PGlite embedded, Neon in
// production). A migration is applied once, in order, inside a transaction, and recorded
// in schema_migrations. Never edit a migration that has shipped: add the next one.
//
// Every table leads with tenant_id, and so does every primary key and index, so no query
// can reach across tenants by accident and every lookup has an index that starts with it.

import type { SqlClient } from "./client.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "tenants, sessions, messages, outbox",
    sql: `
create table tenants (
  id text primary key,
  name text not null,
  created_at timestamptz not null default now()
);

create table api_keys (
  key_hash text primary key,
  tenant_id text not null references tenants(id) on delete cascade,
  label text,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create index api_keys_tenant on api_keys (tenant_id);

create table users (
  tenant_id text not null references tenants(id) on delete cascade,
  id text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);

create table sessions (
  tenant_id text not null,
  id text not null,
  user_id text not null,
  last_seq integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
);
create index sessions_user on sessions (tenant_id, user_id);

create table messages (
  tenant_id text not null,
  id text not null,
  session_id text not null,
  user_id text not null,
  seq integer not null,
  role text not null check (role in ('user', 'assistant', 'system', 'tool')),
  name text,
  content text not null,
  metadata jsonb not null default '{}'::jsonb,
  tokens integer not null,
  created_at timestamptz not null,
  ingested_at timestamptz not null default now(),
  search tsvector generated always as (to_tsvector('english', coalesce(name, '') || ' ' || content)) stored,
  primary key (tenant_id, id),
  unique (tenant_id, session_id, seq),
  foreign key (tenant_id, session_id) references sessions (tenant_id, id) on delete cascade
);
create index messages_user_time on messages (tenant_id, user_id, created_at);
create index messages_search on messages using gin (search);

create table memories (
  tenant_id text not null,
  id text not null,
  user_id text not null,
  kind text not null check (kind in ('fact', 'preference', 'decision', 'task', 'note')),
  content text not null,
  priority smallint not null default 5 check (priority between 0 and 10),
  tokens integer not null,
  source_message_id text,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
);
create index memories_user on memories (tenant_id, user_id, priority desc);

create table summaries (
  tenant_id text not null,
  session_id text not null,
  user_id text not null,
  up_to_seq integer not null,
  content text not null,
  tokens integer not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, session_id, up_to_seq),
  foreign key (tenant_id, session_id) references sessions (tenant_id, id) on delete cascade
);

-- The outbox is also the embedded job queue: a job is pending until a worker marks it done.
create table jobs (
  id text primary key,
  tenant_id text not null,
  type text not null check (type in ('embed', 'extract', 'summarize', 'forget')),
  payload jsonb not null,
  status text not null default 'pending' check (status in ('pending', 'dispatched', 'running', 'done', 'failed')),
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  run_after timestamptz not null default now(),
  lease_until timestamptz,
  dispatched_at timestamptz,
  done_at timestamptz
);
create index jobs_runnable on jobs (run_after) where status in ('pending', 'dispatched', 'running');
create index jobs_tenant_open on jobs (tenant_id, status) where status <> 'done';
`,
  },
  {
    version: 2,
    name: "entity graph and vectors",
    sql: `
create table entities (
  tenant_id text not null,
  user_id text not null,
  id text not null,
  name text not null,
  type text not null,
  -- The name's words as queries are cut into terms (see graph-store.ts nameWords()).
  words text[] not null default '{}',
  mentions integer not null default 0,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, id)
);

create table mentions (
  tenant_id text not null,
  user_id text not null,
  entity_id text not null,
  message_id text not null,
  session_id text not null,
  primary key (tenant_id, user_id, entity_id, message_id)
);
create index mentions_message on mentions (tenant_id, message_id);

create table relations (
  tenant_id text not null,
  user_id text not null,
  from_id text not null,
  type text not null,
  to_id text not null,
  weight integer not null default 0,
  primary key (tenant_id, user_id, from_id, type, to_id)
);
-- to_id before user_id: PGlite never analyses on its own, and without statistics a
-- (tenant_id, user_id, ...) index looks as good as the primary key for a from_id lookup.
create index relations_to on relations (tenant_id, to_id, user_id);

create table relation_evidence (
  tenant_id text not null,
  user_id text not null,
  from_id text not null,
  type text not null,
  to_id text not null,
  message_id text not null,
  primary key (tenant_id, user_id, from_id, type, to_id, message_id)
);
create index relation_evidence_message on relation_evidence (tenant_id, message_id);

-- Vectors are kept here as float4 bytes and served from an in-process index (see
-- lib/adapters/local/vector-index.ts); this table is what the index is rebuilt from.
create table vectors (
  tenant_id text not null,
  kind text not null,
  id text not null,
  user_id text not null,
  session_id text not null,
  model text not null,
  dims integer not null,
  embedding bytea not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, kind, id)
);
create index vectors_user on vectors (tenant_id, user_id);
`,
  },
  {
    version: 3,
    name: "forgetting and reindexing",
    sql: `
-- A tombstone per forgotten message (and one for the session or user forgotten whole):
-- every worker checks them before it writes, so a job already in flight cannot bring a
-- forgotten message back into a derived tier.
create table tombstones (
  tenant_id text not null,
  kind text not null check (kind in ('message', 'session', 'user')),
  id text not null,
  receipt_id text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, kind, id)
);

-- What a forget request answers with, and how far each tier has got.
create table forget_receipts (
  id text primary key,
  tenant_id text not null,
  scope text not null check (scope in ('message', 'session', 'user')),
  target_id text not null,
  messages integer not null,
  tiers jsonb not null,
  created_at timestamptz not null default now(),
  completed_at timestamptz
);
create index forget_receipts_tenant on forget_receipts (tenant_id, created_at);

-- Checkpoints of \`strata reindex\`, so an interrupted run resumes where it stopped.
create table reindex_runs (
  id text primary key,
  target text not null,
  model text not null,
  cursor_tenant text,
  cursor_id text,
  processed integer not null default 0,
  total integer not null default 0,
  started_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
`,
  },
  {
    version: 4,
    name: "per-user message versions for keyword indexes in other processes",
    // A keyword index kept in a process's memory must learn what other processes wrote.
    // Each ingest that stores messages bumps its user's messages_version and stamps the rows
    // with it; the bump locks the user's row until commit, so one user's versions commit in
    // order and "rows stamped above v" is exactly what was added since v. A forget bumps
    // forgot_version too: an index older than that reloads the user whole. Reading the two
    // numbers is one primary-key select per search.
    sql: `
alter table users add column messages_version bigint not null default 0;
alter table users add column forgot_version bigint not null default 0;
alter table messages add column user_version bigint not null default 0;
create index messages_user_version on messages (tenant_id, user_id, user_version);
`,
  },
  {
    version: 5,
    name: "no stored tsvector on messages",
    // Keyword search is the in-process BM25 index in every wiring (lib/runtime.ts); the
    // stored tsvector and its GIN index served only the archive's ts_rank fallback, and cost
    // every ingest a tsvector and a GIN insert per message, ~0.08 ms of PGlite CPU each,
    // a quarter of a batched ingest's server CPU. The fallback computes the vector per query.
    sql: `
drop index if exists messages_search;
alter table messages drop column if exists search;
`,
  },
  {
    version: 6,
    name: "per-user graph versions for graph indexes in other processes",
    // A graph index kept in a process's memory (lib/adapters/local/graph-index.ts, shared
    // mode) must learn what other processes wrote to the graph tables. Every graph write
    // statement (lib/adapters/sql/graph-store.ts) bumps its users' version here, in the same
    // statement: a merge stamps the mention and evidence rows it inserts with it, a delete
    // (by messages or of a user) also sets reset_version to it. The bump locks the user's row
    // until commit, so one user's versions commit in order and, in one snapshot, the rows
    // stamped above v are exactly what merges added since v; an index older than
    // reset_version reloads the user whole. A table of its own rather than columns of users:
    // graph rows are keyed by (tenant, user) with no users row required (a forgotten user's
    // graph is purged by a later job, after the users row is gone), and a row here is never
    // deleted, so a version is never handed out twice for one user. No row means version 0:
    // rows written before this migration carry stamp 0 and are read by whole loads.
    sql: `
create table graph_versions (
  tenant_id text not null,
  user_id text not null,
  version bigint not null default 0,
  reset_version bigint not null default 0,
  primary key (tenant_id, user_id)
);
alter table mentions add column graph_version bigint not null default 0;
alter table relation_evidence add column graph_version bigint not null default 0;
create index mentions_user_version on mentions (tenant_id, user_id, graph_version);
create index relation_evidence_user_version on relation_evidence (tenant_id, user_id, graph_version);
`,
  },
  {
    version: 7,
    name: "each session's summarized seq, for finding sessions due for a summary by index",
    // A session is due for a summary once enough of it is past the recent window and beyond
    // its latest summary (lib/core/services/summaries.ts). Finding those looked up each
    // session's latest summary: every session of every tenant on each scheduled run, and of
    // the tenant on each GET /v1/status, about 5 µs a session in PGlite (0.5 s at 100k
    // sessions). The latest summary's up_to_seq is kept on the session instead (saveSummary
    // raises it, deleting a session's summaries sets it back to 0), and the distance to it is
    // indexed, so a search reads only the sessions that are far enough along. It costs each
    // ingest an entry in this index (the session row's update is no longer a HOT one).
    sql: `
alter table sessions add column summarized_seq integer not null default 0;
update sessions s set summarized_seq = x.up_to_seq
  from (select tenant_id, session_id, max(up_to_seq) as up_to_seq from summaries group by tenant_id, session_id) x
 where x.tenant_id = s.tenant_id and x.session_id = s.id;
create index sessions_summary_lag on sessions (tenant_id, (last_seq - summarized_seq));
`,
  },
  {
    version: 8,
    name: "a user's vectors in key order, for loading them a page at a time",
    // The in-process vector index loads a user's vectors a page at a time in (kind, id) order
    // (lib/adapters/local/vector-index.ts): one select of a 100k-message user's vectors held
    // PGlite, and with it the server's thread, for 2.5–4 s. This index serves those pages and
    // every lookup of the user's vectors that the index it replaces served.
    sql: `
create index vectors_user_key on vectors (tenant_id, user_id, kind, id);
drop index if exists vectors_user;
`,
  },
];

// Two processes starting at once (Lambdas after a deploy) would both find a version missing
// and both apply it, so every step runs holding this advisory lock. It is taken inside the
// step's transaction (pg_advisory_xact_lock), so a migrator that dies lets go of it.
const MIGRATION_LOCK = 0x737472617461; // "strata"

/** Applies every migration newer than the database's version. Returns the versions applied. */
export async function migrate(sql: SqlClient, migrations: Migration[] = MIGRATIONS): Promise<number[]> {
  const lock = (tx: SqlClient) => tx.query("select pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK]);
  const done = await sql.transaction(async (tx) => {
    await lock(tx);
    await tx.exec(
      "create table if not exists schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())",
    );
    const rows = await tx.query<{ version: number }>("select version from schema_migrations");
    return new Set(rows.map((r) => Number(r.version)));
  });
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    const ran = await sql.transaction(async (tx) => {
      await lock(tx);
      // Another process may have applied it while this one waited for the lock.
      if ((await tx.query("select 1 from schema_migrations where version = $1", [m.version])).length) return false;
      await tx.exec(m.sql);
      await tx.query("insert into schema_migrations (version, name) values ($1, $2)", [m.version, m.name]);
      return true;
    });
    if (ran) applied.push(m.version);
  }
  return applied;
}
