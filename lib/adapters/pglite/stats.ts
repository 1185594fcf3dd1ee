// The planner's statistics for the embedded archive. PGlite has no autovacuum, so without an
// ANALYZE its planner never has statistics and picks plans for one-row tables (seq scans of the
// graph and keyword tables as they grow). The server used to ANALYZE the whole database every
// five minutes. PGlite runs on the server's own thread, so that stalled every request for the
// length of it: 1.3–1.4 s at 100k messages, and longer as the archive grows (BENCHMARKS.md,
// "Growth, twenty-second round").
//
// Now it does what autovacuum's analyze does: a table is analysed again once the rows changed
// since its last analysis exceed 50 + 10% of the rows it then held (Postgres' defaults for
// autovacuum_analyze_threshold and autovacuum_analyze_scale_factor), one table at a time, each
// after a moment without a request in flight (the job runner's gate). At 100k messages that is
// the messages table about every 10k turns, 130–270 ms a table at Postgres's statistics target
// of 100 and 30–46 ms at the archive's (STATISTICS_TARGET, client.ts), instead of the whole
// database every five minutes. PGlite keeps the change counts in process only, so the server
// analyses everything once when it opens the archive, as before.
//
// Unlike derived work, an analysis can wait: the statistics it refreshes only need to follow a
// table's growth by a tenth. The keeper waits up to a minute for each one (STATS_QUIET_WAIT_MS):
// waiting at most QUIET_WAIT_MS, as the job runner does, a check that came during steady load
// analysed its tables one after another between the requests in flight, each one holding them
// all for its length (searches' p99 of 125–261 ms at 8 and 32 clients; BENCHMARKS.md,
// fifty-third round). close() cuts the wait short.

import { QUIET_SETTLE_MS, type RequestGate } from "../../core/request-gate.ts";
import type { SqlClient } from "../sql/client.ts";

/** How long the keeper waits at most for a moment without a request, per analysis (yieldMs's default). */
export const STATS_QUIET_WAIT_MS = 60_000;

/** Postgres' autovacuum_analyze_threshold and autovacuum_analyze_scale_factor defaults. */
export const ANALYZE_THRESHOLD = 50;
export const ANALYZE_SCALE = 0.1;

export interface StatsKeeper {
  /** Analyses the tables changed enough since their last analysis, one at a time; their names. */
  check(): Promise<string[]>;
  /** Stops the periodic checks (a check running finishes first). */
  close(): Promise<void>;
}

export interface StatsKeeperOptions {
  /** Requests first: each ANALYZE waits for a moment without one (at most `yieldMs`, STATS_QUIET_WAIT_MS unless given). */
  gate?: RequestGate;
  yieldMs?: number;
  settleMs?: number;
  /** How often to look at the change counts (0: only when check() is called). */
  everyMs?: number;
  onError?: (e: unknown) => void;
}

interface Row {
  name: string;
  changed: number | string;
  tuples: number | string;
}

export function createStatsKeeper(sql: SqlClient, options: StatsKeeperOptions = {}): StatsKeeper {
  const yieldMs = options.yieldMs ?? STATS_QUIET_WAIT_MS;
  const settleMs = options.settleMs ?? QUIET_SETTLE_MS;
  let running: Promise<string[]> | null = null;
  let closed = false;
  // Resolved by close(): a wait for a quiet moment ends there.
  let closing!: () => void;
  const whenClosed = new Promise<void>((resolve) => (closing = resolve));

  async function due(): Promise<Row[]> {
    // The counts reach the views when the backend flushes them: at the end of the next statement.
    await sql.query("select pg_stat_force_next_flush()");
    return sql.query<Row>(
      `select quote_ident(s.schemaname) || '.' || quote_ident(s.relname) as name, s.n_mod_since_analyze as changed, greatest(c.reltuples, 0) as tuples
         from pg_stat_user_tables s join pg_class c on c.oid = s.relid
        where s.n_mod_since_analyze > $1 + $2 * greatest(c.reltuples, 0)
        order by s.n_mod_since_analyze desc`,
      [ANALYZE_THRESHOLD, ANALYZE_SCALE],
    );
  }

  async function run(): Promise<string[]> {
    const done: string[] = [];
    for (const { name } of await due()) {
      if (closed) break;
      if (options.gate) await Promise.race([options.gate.quiet(yieldMs, settleMs), whenClosed]);
      if (closed) break;
      await sql.exec(`analyze ${name}`);
      done.push(name);
    }
    return done;
  }

  function check(): Promise<string[]> {
    running ??= run().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = options.everyMs
    ? setInterval(() => {
        if (!running) check().catch((e) => options.onError?.(e));
      }, options.everyMs)
    : null;
  timer?.unref();

  return {
    check,
    async close() {
      closed = true;
      closing();
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
