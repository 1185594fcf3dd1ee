// The embedded entity graph: four tables of migration 2 behind the GraphStore port.
//
// Counts are denormalised (entities.mentions, relations.weight) so reads need no
// aggregation over mentions, and they stay exact because they change only by the rows an
// `insert ... on conflict do nothing returning` actually inserted, or a delete removed.
// Each merge or delete is one statement whose data-modifying CTEs share one snapshot and
// commit together: PGlite pays about a millisecond per statement, so a batch costs one.
//
// An entity's id is `${type}:${normalised name}`. Query terms are matched against the
// name's words, cut here with the same words() and stopwords the search service cuts a
// query with, so "Bank of America" is named by "bank america" and "O'Brien" by "obrien";
// an equality test on the normalised name (read back out of the id) catches the rest.

import { upstream } from "../../core/errors.ts";
import type { GraphMerge, GraphStore } from "../../core/ports.ts";
import { STOPWORDS, words } from "../../core/text.ts";
import type { EntityType, Fact, GraphDelta, ScoredId } from "../../core/types.ts";
import type { SqlClient } from "./client.ts";

export interface SqlGraphStoreOptions {
  sql: SqlClient;
}

/** Lower-case, NFKC, single spaces: "  Caroline  SMITH" and "caroline smith" are one entity. */
export function normaliseName(name: string): string {
  return name.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

export function entityId(type: string, name: string): string {
  return `${type}:${normaliseName(name)}`;
}

/** The words a query must hold to name an entity: its name's words less stopwords (all of them for "The Who"). */
export function nameWords(name: string): string[] {
  const all = [...new Set(words(name.normalize("NFKC")))];
  const content = all.filter((w) => !STOPWORDS.has(w));
  return content.length > 0 ? content : all;
}

// Symmetric relations are stored once, endpoints in id order, so A~B and B~A add up.
const SYMMETRIC = new Set(["co_mentioned"]);

/**
 * An extraction's entities with their ids and surface forms (blank names dropped), and the
 * map from normalised name to the id of its first entity, which relations resolve through.
 * Shared by every graph adapter so they key entities the same way.
 */
export function resolveEntities(entities: GraphMerge["extraction"]["entities"]): {
  ids: Map<string, string>;
  entities: { id: string; norm: string; type: EntityType; surface: string }[];
} {
  const ids = new Map<string, string>();
  const out: { id: string; norm: string; type: EntityType; surface: string }[] = [];
  for (const e of entities) {
    const norm = normaliseName(e.name);
    if (!norm) continue;
    const id = `${e.type}:${norm}`;
    if (!ids.has(norm)) ids.set(norm, id);
    out.push({ id, norm, type: e.type, surface: e.name.trim().replace(/\s+/g, " ") });
  }
  return { ids, entities: out };
}

/**
 * An extraction's relations as entity-id triples, given its names' ids (normalised name →
 * entity id): a relation must join two distinct entities of the same extraction, and a
 * symmetric one is oriented by id. Shared by every graph adapter so they store the same edges.
 */
export function resolveRelations(
  relations: GraphMerge["extraction"]["relations"],
  ids: ReadonlyMap<string, string>,
): { fromId: string; type: string; toId: string }[] {
  const out: { fromId: string; type: string; toId: string }[] = [];
  for (const r of relations) {
    let fromId = ids.get(normaliseName(r.from));
    let toId = ids.get(normaliseName(r.to));
    const type = normaliseName(r.type);
    if (!fromId || !toId || fromId === toId || !type) continue;
    if (SYMMETRIC.has(type) && toId < fromId) [fromId, toId] = [toId, fromId];
    out.push({ fromId, type, toId });
  }
  return out;
}

// Entities whose words are all among the terms, or whose normalised name is one of them.
const MATCHED = `
  select e.id, e.mentions
  from entities e
  where e.tenant_id = $1 and e.user_id = $2 and e.mentions > 0
    and ((cardinality(e.words) > 0 and e.words <@ $3::text[]) or substr(e.id, strpos(e.id, ':') + 1) = any($3::text[]))`;

// Every write statement below first bumps the version of each user it writes (migration 6:
// graph indexes in other processes learn from it what changed), and a merge stamps the
// mention and evidence rows it inserts with their user's new version. The bump comes first,
// in users' order, gated by a one-time filter (`(select count(*) from ver) ...`, an InitPlan
// run before the scan it guards): a statement takes the version rows it needs before any
// graph row, so a merge and a delete of one user cannot each hold a lock the other waits for.
// Correctness does not depend on that order, only on the bump committing with the rows.
const BUMP_FOR_MERGE = `
ver as (
  insert into graph_versions as g (tenant_id, user_id, version)
  select t, u, 1 from unnest($18::text[], $19::text[]) as x(t, u) order by t, u
  on conflict (tenant_id, user_id) do update set version = g.version + 1
  returning tenant_id, user_id, version
)`;

const MERGE = `
with ${BUMP_FOR_MERGE},
m_new as (
  insert into mentions (tenant_id, user_id, entity_id, message_id, session_id, graph_version)
  select m.tenant_id, m.user_id, m.entity_id, m.message_id, m.session_id, v.version
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) as m(tenant_id, user_id, entity_id, message_id, session_id)
  join ver v on v.tenant_id = m.tenant_id and v.user_id = m.user_id
  where (select count(*) from ver) > 0
  on conflict do nothing
  returning tenant_id, user_id, entity_id
),
m_count as (
  select tenant_id, user_id, entity_id, count(*)::int as n from m_new group by 1, 2, 3
),
e_up as (
  insert into entities (tenant_id, user_id, id, name, type, words, mentions)
  select e.tenant_id, e.user_id, e.id, e.name, e.type, string_to_array(e.words, ' '), c.n
  from unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
    as e(tenant_id, user_id, id, name, type, words)
  join m_count c on c.tenant_id = e.tenant_id and c.user_id = e.user_id and c.entity_id = e.id
  on conflict (tenant_id, user_id, id) do update set mentions = entities.mentions + excluded.mentions
  returning 1
),
r_new as (
  insert into relation_evidence (tenant_id, user_id, from_id, type, to_id, message_id, graph_version)
  select r.tenant_id, r.user_id, r.from_id, r.type, r.to_id, r.message_id, v.version
  from unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]) as r(tenant_id, user_id, from_id, type, to_id, message_id)
  join ver v on v.tenant_id = r.tenant_id and v.user_id = r.user_id
  where (select count(*) from ver) > 0
  on conflict do nothing
  returning tenant_id, user_id, from_id, type, to_id
),
r_up as (
  insert into relations (tenant_id, user_id, from_id, type, to_id, weight)
  select tenant_id, user_id, from_id, type, to_id, count(*)::int from r_new group by 1, 2, 3, 4, 5
  on conflict (tenant_id, user_id, from_id, type, to_id) do update set weight = relations.weight + excluded.weight
  returning 1
)
select (select count(*) from e_up)::int as entities, (select count(*) from r_up)::int as relations`;

// The users a delete by messages reaches are read from the statement's snapshot, which is
// also what the deletes below see: every user losing a row has its version bumped.
const DELETE_BY_MESSAGES = `
with hit as (
  select user_id from mentions where tenant_id = $1 and message_id = any($2::text[])
  union
  select user_id from relation_evidence where tenant_id = $1 and message_id = any($2::text[])
),
ver as (
  insert into graph_versions as g (tenant_id, user_id, version, reset_version)
  select $1, user_id, 1, 1 from hit order by user_id
  on conflict (tenant_id, user_id) do update set version = g.version + 1, reset_version = g.version + 1
  returning 1
),
m_gone as (
  delete from mentions where tenant_id = $1 and message_id = any($2::text[]) and (select count(*) from ver) >= 0
  returning user_id, entity_id
),
m_count as (select user_id, entity_id, count(*)::int as n from m_gone group by 1, 2),
e_gone as (
  delete from entities e using m_count c
  where e.tenant_id = $1 and e.user_id = c.user_id and e.id = c.entity_id and e.mentions <= c.n
  returning 1
),
e_fix as (
  update entities e set mentions = e.mentions - c.n from m_count c
  where e.tenant_id = $1 and e.user_id = c.user_id and e.id = c.entity_id and e.mentions > c.n
  returning 1
),
r_gone as (
  delete from relation_evidence where tenant_id = $1 and message_id = any($2::text[]) and (select count(*) from ver) >= 0
  returning user_id, from_id, type, to_id
),
r_count as (select user_id, from_id, type, to_id, count(*)::int as n from r_gone group by 1, 2, 3, 4),
rel_gone as (
  delete from relations r using r_count c
  where r.tenant_id = $1 and r.user_id = c.user_id and r.from_id = c.from_id and r.type = c.type
    and r.to_id = c.to_id and r.weight <= c.n
  returning 1
),
rel_fix as (
  update relations r set weight = r.weight - c.n from r_count c
  where r.tenant_id = $1 and r.user_id = c.user_id and r.from_id = c.from_id and r.type = c.type
    and r.to_id = c.to_id and r.weight > c.n
  returning 1
)
select (select count(*) from e_gone)::int as entities, (select count(*) from rel_gone)::int as relations`;

// The user's version row stays (bumped): a version is never handed out twice for one user.
const DELETE_BY_USER = `
with ver as (
  insert into graph_versions as g (tenant_id, user_id, version, reset_version) values ($1, $2, 1, 1)
  on conflict (tenant_id, user_id) do update set version = g.version + 1, reset_version = g.version + 1
  returning version
),
a as (delete from mentions where tenant_id = $1 and user_id = $2 and (select version from ver) > 0 returning 1),
b as (delete from relation_evidence where tenant_id = $1 and user_id = $2 and (select version from ver) > 0 returning 1),
c as (delete from entities where tenant_id = $1 and user_id = $2 and (select version from ver) > 0 returning 1),
d as (delete from relations where tenant_id = $1 and user_id = $2 and (select version from ver) > 0 returning 1)
select (select count(*) from c)::int as entities`;

// Plans here must not depend on statistics: PGlite runs no autovacuum, so its tables go
// unanalysed and every estimate is one row. Migration 2 gives each lookup only one index
// that fits it; the matched entities are computed once (materialized), and each is joined
// through its index by a lateral subquery that `offset 0` keeps from being flattened
// into a scan of all the user's rows (158 ms instead of 6 at 25k mentions).

// Rarer entities say more about which message is meant: "Caroline" in 500 messages
// weighs 0.14, a support group named in 3 weighs 0.48, and a message naming both, 0.62.
// Each weight is cut to a multiple of 2^-40 first, so sums are exact: float8 addition is not
// associative, and exact sums do not depend on the order the plan adds them in, which would
// otherwise decide, in the last bit, the order of two messages naming entities of the same
// counts instead of the id tie-break (and the in-process index, lib/adapters/local/graph-index.ts,
// could not give the same answer). An ordered sum would do too, but costs a sort: 181 → 297 ms
// on a heavy query in PostgreSQL 15.
export const MENTION_WEIGHT = (mentions: string) =>
  `floor((1.0 / (1.0 + ln(greatest(${mentions}, 1)))) * 1099511627776) / 1099511627776`;
const MESSAGES_MENTIONING = `
with matched as materialized (${MATCHED})
select m.message_id as id, m.session_id, sum(${MENTION_WEIGHT("e.mentions")})::float8 as score
from matched e
cross join lateral (
  select message_id, session_id from mentions
  where tenant_id = $1 and user_id = $2 and entity_id = e.id
  offset 0
) m
group by m.message_id, m.session_id
order by score desc, m.message_id desc
limit $4`;

/**
 * What merges added to a user's graph after a version (migration 6), as rows of eight columns
 * (k, a, b, c, d, w, n, r): 'm' rows are mention rows with their entity's current row (entity,
 * message, name, session, words, mentions), 'x' rows evidence rows with their relation's
 * current weight (from, type, to, message, weight). None when a delete came after the version
 * (the reader then loads the user whole). `tenant`, `user` and `since` are the statement's
 * placeholders. The shared graph index reads it alone (its catch-up) and the archive's
 * readContext inside the context call's first statement, so both read the same rows.
 *
 * Each row's entity or relation is looked up by its primary key through a lateral subquery
 * that \`offset 0\` keeps from being flattened: as a join, an unanalysed table got a nested loop
 * rescanning all the user's entities per row (1.9 s for 947 rows at 10k messages, instead of
 * ~5 ms).
 */
export function graphDeltaRows(p: { tenant: string; user: string; since: string }): string {
  const { tenant, user, since } = p;
  const noReset = `not exists (select 1 from graph_versions where tenant_id = ${tenant} and user_id = ${user} and reset_version > ${since}::bigint)`;
  return `
select 'm' as k, m.entity_id as a, m.message_id as b, e.name as c, m.session_id as d, e.words as w, e.mentions as n, null::bigint as r
  from mentions m
  cross join lateral (select name, words, mentions from entities where tenant_id = ${tenant} and user_id = ${user} and id = m.entity_id offset 0) e
  where m.tenant_id = ${tenant} and m.user_id = ${user} and m.graph_version > ${since}::bigint and ${noReset}
union all
select 'x', v.from_id, v.type, v.to_id, v.message_id, null, r.weight, null
  from relation_evidence v
  cross join lateral (
    select weight from relations where tenant_id = ${tenant} and user_id = ${user} and from_id = v.from_id and type = v.type and to_id = v.to_id offset 0
  ) r
  where v.tenant_id = ${tenant} and v.user_id = ${user} and v.graph_version > ${since}::bigint and ${noReset}`;
}

/** The rows of graphDeltaRows (as the driver or as JSON objects give them) as what they add after `since`; other rows are skipped. */
export function graphDeltaOf(since: number, rows: readonly { k?: unknown; a?: unknown; b?: unknown; c?: unknown; d?: unknown; w?: unknown; n?: unknown }[]): GraphDelta {
  const delta: GraphDelta = { since, mentions: [], evidence: [] };
  for (const r of rows) {
    if (r.k === "m") {
      const words = (r.w ?? []) as unknown[];
      delta.mentions.push({ entity: String(r.a), message: String(r.b), name: String(r.c), session: String(r.d), words: words.map(String), mentions: Number(r.n) });
    } else if (r.k === "x") {
      delta.evidence.push({ from: String(r.a), type: String(r.b), to: String(r.c), message: String(r.d), weight: Number(r.n) });
    }
  }
  return delta;
}

// How many evidence message ids a fact carries.
const FACT_EVIDENCE = 3;

/** Names the ends of the picked relations and attaches a few supporting message ids. */
const describeFacts = (picked: string) => `
with picked as materialized (${picked})
select
  (select name from entities where tenant_id = $1 and user_id = $2 and id = p.from_id) as subject,
  p.type as predicate,
  (select name from entities where tenant_id = $1 and user_id = $2 and id = p.to_id) as object,
  p.weight,
  array(
    select v.message_id from relation_evidence v
    where v.tenant_id = $1 and v.user_id = $2 and v.from_id = p.from_id and v.type = p.type and v.to_id = p.to_id
    order by v.message_id desc
    limit ${FACT_EVIDENCE}
  ) as message_ids
from picked p
order by p.weight desc, p.from_id, p.type, p.to_id`;

// Relations with either end among the matched entities: from_id through the primary key,
// to_id through relations_to.
const FACTS_ABOUT = describeFacts(`
  with matched as materialized (${MATCHED})
  select r.from_id, r.type, r.to_id, r.weight
  from matched e
  cross join lateral (
    select from_id, type, to_id, weight from relations
    where tenant_id = $1 and user_id = $2 and from_id = e.id
    offset 0
  ) r
  union
  select r.from_id, r.type, r.to_id, r.weight
  from matched e
  cross join lateral (
    select from_id, type, to_id, weight from relations
    where tenant_id = $1 and user_id = $2 and to_id = e.id
    offset 0
  ) r
  order by weight desc, from_id, type, to_id
  limit $4`);

const FACTS_STRONGEST = describeFacts(`
  select from_id, type, to_id, weight from relations
  where tenant_id = $1 and user_id = $2 and weight > 0
  order by weight desc, from_id, type, to_id
  limit $3`);

function cleanTerms(terms: string[]): string[] {
  return [...new Set(terms.map(normaliseName).filter((t) => t.length > 0))];
}

/** Column arrays for the MERGE statement, deduplicated so each key appears once. */
function mergeColumns(items: GraphMerge[]): unknown[] {
  const mentions = { seen: new Set<string>(), cols: [[], [], [], [], []] as string[][] };
  const entities = { seen: new Set<string>(), cols: [[], [], [], [], [], []] as string[][] };
  const evidence = { seen: new Set<string>(), cols: [[], [], [], [], [], []] as string[][] };
  const add = (target: { seen: Set<string>; cols: string[][] }, key: string[], row: string[]) => {
    const k = key.join("\u0000");
    if (target.seen.has(k)) return;
    target.seen.add(k);
    row.forEach((v, i) => target.cols[i]!.push(v));
  };

  for (const item of items) {
    const { tenantId, userId, sessionId, messageId } = item;
    const { ids, entities: named } = resolveEntities(item.extraction.entities);
    for (const { id, type, surface } of named) {
      // Words hold no spaces, so one joined string per row keeps the arrays rectangular.
      add(entities, [tenantId, userId, id], [tenantId, userId, id, surface, type, nameWords(surface).join(" ")]);
      add(mentions, [tenantId, userId, id, messageId], [tenantId, userId, id, messageId, sessionId]);
    }
    for (const { fromId: from, type, toId: to } of resolveRelations(item.extraction.relations, ids)) {
      add(evidence, [tenantId, userId, from, type, to, messageId], [tenantId, userId, from, type, to, messageId]);
    }
  }
  // The users written, for the version bump ($18, $19), in the order their rows are locked.
  const users = [...new Set(mentions.cols[0]!.map((t, i) => `${t}\u0000${mentions.cols[1]![i]}`))].sort().map((k) => k.split("\u0000"));
  return [...mentions.cols, ...entities.cols, ...evidence.cols, users.map((u) => u[0]!), users.map((u) => u[1]!)];
}

export function createSqlGraphStore(options: SqlGraphStoreOptions): GraphStore {
  const { sql } = options;
  const adapter = `${sql.driver}-graph`;

  async function run<T>(text: string, params: unknown[]): Promise<T[]> {
    try {
      return await sql.query<T>(text, params);
    } catch (e) {
      throw upstream(adapter, e);
    }
  }

  return {
    adapter,

    async ping() {
      try {
        await sql.ping();
      } catch (e) {
        throw upstream(adapter, e);
      }
    },

    async merge(items) {
      if (items.length === 0) return;
      const params = mergeColumns(items);
      if ((params[0] as string[]).length === 0) return; // no entity anywhere: nothing to tie
      await run(MERGE, params);
    },

    async messagesMentioning({ tenantId, userId, terms, limit }) {
      const wanted = cleanTerms(terms);
      if (wanted.length === 0 || limit <= 0) return [];
      const rows = await run<{ id: string; session_id: string; score: number }>(MESSAGES_MENTIONING, [tenantId, userId, wanted, Math.floor(limit)]);
      return rows.map((r) => ({ id: r.id, score: Number(r.score), sessionId: r.session_id }));
    },

    async facts({ tenantId, userId, terms, limit }) {
      if (limit <= 0) return [];
      const wanted = cleanTerms(terms);
      if (terms.length > 0 && wanted.length === 0) return []; // only blank terms: nothing named
      const rows = await run<{ subject: string; predicate: string; object: string; weight: number; message_ids: string[] }>(
        wanted.length > 0 ? FACTS_ABOUT : FACTS_STRONGEST,
        wanted.length > 0 ? [tenantId, userId, wanted, Math.floor(limit)] : [tenantId, userId, Math.floor(limit)],
      );
      return rows.map(
        (r): Fact => ({
          subject: r.subject,
          predicate: r.predicate,
          object: r.object,
          weight: Number(r.weight),
          messageIds: r.message_ids,
        }),
      );
    },

    async counts(tenantId, userId) {
      const [row] = await run<{ entities: number; relations: number; mentions: number }>(
        `select
           (select count(*) from entities where tenant_id = $1 and user_id = $2)::int as entities,
           (select count(*) from relations where tenant_id = $1 and user_id = $2)::int as relations,
           (select count(*) from mentions where tenant_id = $1 and user_id = $2)::int as mentions`,
        [tenantId, userId],
      );
      return { entities: Number(row?.entities ?? 0), relations: Number(row?.relations ?? 0), mentions: Number(row?.mentions ?? 0) };
    },

    async deleteByMessages(tenantId, messageIds) {
      if (messageIds.length === 0) return;
      await run(DELETE_BY_MESSAGES, [tenantId, [...new Set(messageIds)]]);
    },

    async deleteByUser(tenantId, userId) {
      await run(DELETE_BY_USER, [tenantId, userId]);
    },

    // The SqlClient is shared with the archive and the vector index: it is not ours to close.
    async close() {},
  };
}
