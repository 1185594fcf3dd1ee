// `strata doctor`: opens every configured tier, pings it and says, per tier, what is wrong
// and what to set or start. It reads and changes nothing (no migrations, no writes).

import type { StrataConfig } from "./config.ts";
import { isStrataError } from "./core/errors.ts";
import { createLogger } from "./core/log.ts";
import type { Pingable } from "./core/ports.ts";
import { MIGRATIONS } from "./adapters/sql/migrations.ts";
import { describeTiers, openTiers } from "./runtime.ts";

export interface DoctorLine {
  tier: string;
  ok: boolean;
  adapter: string;
  detail: string;
  fix?: string;
}

const HINTS: Record<string, Record<string, string>> = {
  archive: {
    neon: "check DATABASE_URL (host, user, password, database) and that the database accepts connections; unset it to use the embedded archive",
    pglite: "check that STRATA_DATA_DIR is writable and not open in another Strata process",
  },
  hot: { upstash: "check UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (a 401 means the token is wrong); unset both for the in-process hot store" },
  vectors: {
    local: "the embedded index lives in the archive: fix the archive first",
    pinecone: "check PINECONE_API_KEY and PINECONE_INDEX or PINECONE_HOST, and that the index exists with metric cosine; unset PINECONE_API_KEY for the embedded index",
  },
  graph: {
    sql: "the embedded graph lives in the archive: fix the archive first",
    neo4j: "check NEO4J_URI, NEO4J_USERNAME and NEO4J_PASSWORD, and that the server is up; unset NEO4J_URI for the embedded graph",
  },
  queue: { sqs: "check STRATA_QUEUE_URL, AWS_REGION (and AWS_ENDPOINT_URL_SQS for a local endpoint) and the credentials' sqs:GetQueueAttributes permission; unset STRATA_QUEUE_URL for the in-process runner" },
};

async function check(tier: string, kind: string, target: Pingable): Promise<DoctorLine> {
  const t0 = performance.now();
  try {
    await target.ping();
    return { tier, ok: true, adapter: target.adapter, detail: `answered in ${(performance.now() - t0).toFixed(1)} ms` };
  } catch (e) {
    const detail = isStrataError(e) ? e.message : e instanceof Error ? e.message : String(e);
    return { tier, ok: false, adapter: target.adapter, detail, fix: HINTS[tier]?.[kind] };
  }
}

export async function runDoctor(config: StrataConfig): Promise<DoctorLine[]> {
  const lines: DoctorLine[] = [];
  const described = describeTiers(config);
  let tiers;
  try {
    tiers = await openTiers(config, createLogger("silent"));
  } catch (e) {
    // The embedded archive's directory held by another process is not a setting to fix.
    if (isStrataError(e) && e.code === "DATA_DIR_IN_USE") {
      return [{ tier: "archive", ok: false, adapter: "pglite", detail: e.message, fix: "stop the process named above (a running server answers GET /v1/health itself), or point STRATA_DATA_DIR elsewhere" }];
    }
    return [{ tier: "config", ok: false, adapter: "-", detail: isStrataError(e) ? e.message : String(e), fix: "fix the variable named above" }];
  }
  try {
    const kinds = config.tiers;
    lines.push(
      ...(await Promise.all([
        check("archive", kinds.archive.kind, tiers.archive),
        check("hot", kinds.hot.kind, tiers.hot),
        check("vectors", kinds.vectors.kind, tiers.vectors),
        check("graph", kinds.graph.kind, tiers.graph),
        check("queue", kinds.queue.kind, tiers.queue),
      ])),
    );
    for (const line of lines) line.detail = `${described[line.tier] ?? line.adapter}: ${line.detail}`;
    if (lines[0]!.ok) {
      const rows = await tiers.sql
        .query<{ version: number }>("select max(version)::int as version from schema_migrations")
        .catch(() => [{ version: 0 }]);
      const have = Number(rows[0]?.version ?? 0);
      const want = Math.max(...MIGRATIONS.map((m) => m.version));
      lines.push(
        have >= want
          ? { tier: "schema", ok: true, adapter: "migrations", detail: `at version ${have}` }
          : { tier: "schema", ok: false, adapter: "migrations", detail: `at version ${have}, code expects ${want}`, fix: "run `npx strata migrate` (serve also migrates at start)" },
      );
    }
    if (config.tiers.queue.kind === "sqs" && config.tiers.archive.kind === "pglite") {
      lines.push({
        tier: "wiring",
        ok: true,
        adapter: "sqs + pglite",
        detail: "an SQS worker in another process cannot open this process's embedded archive",
        fix: "set DATABASE_URL so API and workers share one archive, or run the worker inside `strata serve` (STRATA_WORKERS=on)",
      });
    }
  } finally {
    await tiers.queue.stop().catch(() => {});
    await Promise.all([tiers.hot.close(), tiers.vectors.close(), tiers.graph.close()].map((p) => p.catch(() => {})));
    await tiers.archive.close().catch(() => {});
  }
  return lines;
}

export function formatDoctor(lines: DoctorLine[]): string {
  return lines
    .map((l) => `${l.ok ? "ok  " : "FAIL"} ${l.tier.padEnd(8)} ${l.detail}${l.fix ? `\n     fix: ${l.fix}` : ""}`)
    .join("\n");
}
