// Backlog and tier health. Health pings every tier in parallel, each under the read-path time
// limit, and reports the adapter in use, so an operator sees at once which tier is embedded,
// which is managed, and which is slow or down.

import type { StrataDeps } from "../deps.ts";
import type { Pingable } from "../ports.ts";
import type { QueueStats, TierHealth } from "../types.ts";
import { SUMMARY_MIN_NEW } from "./summaries.ts";

/**
 * The tenant's backlog: derived jobs not yet done (`queue`); sessions whose next rolling
 * summary is due but not yet queued (`summaries.due`: the summary schedule, a timer in the
 * embedded server and a cron in the managed stack, queues them on its next run, so they are
 * not in `queue.pending` until then); and the vector indexes this process is building in the
 * background (`indexes.building`: users whose queries are answered by an exact scan until
 * their approximate index is ready, tens of seconds for a user of 100k messages, and users
 * whose rows are being laid out again in their index's order after much growth, the index
 * answering meanwhile). Work is caught up when all three are 0; a managed index reports no
 * builds.
 */
export async function queueStatus(
  deps: StrataDeps,
  tenantId: string,
): Promise<{ queue: QueueStats; summaries: { due: number }; indexes: { building: number } }> {
  const [queue, due] = await Promise.all([
    deps.archive.queueStats(tenantId),
    deps.archive.countSessionsDueForSummary(tenantId, { recentWindow: deps.settings.recentWindow, minNew: SUMMARY_MIN_NEW }),
  ]);
  return { queue, summaries: { due }, indexes: { building: deps.vectors.buildsInFlight?.(tenantId) ?? 0 } };
}

async function probe(tier: string, target: Pingable, limitMs: number): Promise<TierHealth> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      target.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${limitMs} ms`)), limitMs);
      }),
    ]);
    const latencyMs = performance.now() - t0;
    return { tier, adapter: target.adapter, status: latencyMs > limitMs / 2 ? "degraded" : "ok", latencyMs };
  } catch (e) {
    return { tier, adapter: target.adapter, status: "down", latencyMs: performance.now() - t0, detail: e instanceof Error ? e.message : String(e) };
  } finally {
    clearTimeout(timer);
  }
}

export async function health(deps: StrataDeps): Promise<{ status: "ok" | "degraded" | "down"; tiers: TierHealth[] }> {
  const limitMs = Math.max(deps.settings.tierTimeoutMs, 1000);
  const tiers = await Promise.all([
    probe("archive", deps.archive, limitMs),
    probe("hot", deps.hot, limitMs),
    probe("vectors", deps.vectors, limitMs),
    probe("graph", deps.graph, limitMs),
    probe("queue", deps.queue, limitMs),
  ]);
  const archive = tiers[0]!;
  const status = archive.status === "down" ? "down" : tiers.every((t) => t.status === "ok") ? "ok" : "degraded";
  // Not probed: the local ones run in this process and cannot be down; a remote embedder is
  // billed per call, so health checks do not call it (a failing one shows up as failed jobs).
  const remote = /^(openai|pinecone):/.test(deps.embedder.model);
  tiers.push(
    { tier: "embedder", adapter: deps.embedder.model, status: "ok", latencyMs: 0, detail: remote ? "remote; not probed by health checks" : "in-process" },
    { tier: "extractor", adapter: deps.extractor.version, status: "ok", latencyMs: 0, detail: deps.extractor.detail ?? "in-process" },
    { tier: "tokenizer", adapter: deps.tokenizer.name, status: "ok", latencyMs: 0, detail: "in-process" },
  );
  return { status, tiers };
}
