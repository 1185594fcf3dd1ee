// Forgetting, across every store, for good. The archive transaction removes the rows and
// leaves tombstones; the hot tier is cleared at once; a forget job purges vectors and graph.
// Workers check tombstones before and after they write (see worker.ts), so an embed or
// extract job already in flight cannot bring a forgotten message back.

import type { StrataDeps } from "../deps.ts";
import type { ForgetReceipt, ForgetScope, Job } from "../types.ts";

export async function forget(deps: StrataDeps, input: { tenantId: string; scope: ForgetScope; id: string }): Promise<ForgetReceipt> {
  const { receipt, job } = await deps.archive.forget(input);
  let out = receipt;
  const cleared = await dropHotWindows(deps, input.tenantId, (job as Job<"forget">).payload.sessionIds);
  if (cleared) out = (await deps.archive.markForgotten(receipt.id, ["hot"])) ?? out;
  try {
    await deps.queue.dispatch([job]);
    await deps.archive.markDispatched([job.id]);
  } catch (e) {
    deps.log.warn("forget job dispatch failed; the outbox keeps it pending", { receiptId: receipt.id, error: e });
  }
  return out;
}

async function dropHotWindows(deps: StrataDeps, tenantId: string, sessionIds: string[]): Promise<boolean> {
  try {
    for (const s of sessionIds) await deps.hot.dropSession(tenantId, s);
    return true;
  } catch (e) {
    // The forget job drops the windows again before anything else; the receipt shows hot pending until it has.
    deps.log.warn("hot tier not cleared at once; the forget job retries", { error: e });
    return false;
  }
}

/** The forget job: purge the derived tiers, tier by tier, recording each on the receipt. */
export async function runForgetJob(deps: StrataDeps, job: Job<"forget">): Promise<void> {
  const { receiptId, scope, messageIds, sessionIds, userId } = job.payload;
  const { tenantId } = job;
  const receipt = await deps.archive.getForgetReceipt(tenantId, receiptId);
  if (!receipt) return;
  if (receipt.tiers.hot !== "done") {
    if (!(await dropHotWindows(deps, tenantId, sessionIds))) throw new Error("hot tier unavailable; forget will be retried");
    await deps.archive.markForgotten(receiptId, ["hot"]);
  }
  if (scope === "user" && userId) await deps.vectors.deleteByUser(tenantId, userId);
  else await deps.vectors.deleteByIds(tenantId, messageIds);
  await deps.archive.markForgotten(receiptId, ["vectors"]);
  if (scope === "user" && userId) await deps.graph.deleteByUser(tenantId, userId);
  else await deps.graph.deleteByMessages(tenantId, messageIds);
  await deps.archive.markForgotten(receiptId, ["graph"]);
}
