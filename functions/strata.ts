// One Strata per Lambda execution environment, built during init from the linked resources
// and reused by every invocation the environment serves. Init starts at import, so the
// connection set-up and migrations run in Lambda's init phase, before the first request.

import { Resource } from "sst/resource";
import { createLogger } from "../lib/core/log.ts";
import { tuneHeap } from "../lib/heap.ts";
import { createStrata, type Strata } from "../lib/runtime.ts";
import { lambdaConfig } from "./linked.ts";

let strata: Promise<Strata> | null = null;

/** The environment's Strata, made on first use from process.env and the SST links. */
export function lambdaStrata(): Promise<Strata> {
  strata ??= (async () => {
    // A warm environment keeps the users it served in its keyword and graph indexes, as the
    // server does, so it gets the server's heap settings (lib/heap.ts) before it loads any.
    tuneHeap();
    const config = lambdaConfig(process.env, Resource as unknown as Record<string, unknown>);
    return createStrata(config, { log: createLogger(config.logLevel) });
  })();
  // A failed init is not cached: the next invocation tries again instead of failing forever.
  strata.catch(() => {
    strata = null;
  });
  return strata;
}
