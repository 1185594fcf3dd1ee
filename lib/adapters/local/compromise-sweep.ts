// A faster front for compromise's sweep (its bulk matcher), with the same results.
//
// compromise tags every sentence by sweeping a net of ~730 match rules. To find the rules a
// sentence may trigger, its getHooks walks every hook key of the net (Object.keys(hooks))
// for every sentence and asks whether the sentence's cache (its ~20–60 words and tags) holds
// it: 730 lookups and a growing concat per sentence, about a third of the extractor's CPU
// (profile of extractAll over generated chat turns). The words of a document are far fewer
// than the hooks, so this wrapper hands the original sweep a net whose hooks are only the
// keys some sentence of the document holds, in the original key order. The original code
// then does everything it did (per sentence: the same keys found in the same order, the same
// de-duplication, needs/ifNo/wants trimming, matching and tagging), over fewer keys.

/** The slice of compromise's methods object this file touches. */
interface SweepMethods {
  one: {
    bulkMatch: (document: unknown[], net: Net, methods: SweepMethods, opts?: unknown) => unknown;
    cacheDoc: (document: unknown[]) => Set<string>[];
  };
}

interface Net {
  hooks: Record<string, unknown>;
  always: unknown[];
  [k: string]: unknown;
}

// Nets this small (those compromise builds for one match() call) gain nothing from pruning.
const MIN_HOOKS = 64;

const installed = new WeakSet<object>();

/** Wraps `methods.one.bulkMatch` of the compromise instance `nlp` (once per instance). */
export function installFastSweep(nlp: unknown): void {
  const methods = (nlp as { methods(): SweepMethods }).methods();
  if (installed.has(methods.one)) return;
  installed.add(methods.one);
  const original = methods.one.bulkMatch;
  // Each net's hook keys in Object.keys order, by key; nets are built once and reused.
  const orders = new WeakMap<object, { keys: string[]; index: Map<string, number> }>();
  methods.one.bulkMatch = function fastBulkMatch(document, net, m, opts) {
    let order = orders.get(net.hooks);
    if (!order) {
      const keys = Object.keys(net.hooks);
      order = { keys, index: new Map(keys.map((k, i) => [k, i])) };
      orders.set(net.hooks, order);
    }
    if (order.keys.length < MIN_HOOKS) return original(document, net, m, opts);
    const present: number[] = [];
    const seen = new Set<number>();
    for (const items of m.one.cacheDoc(document)) {
      for (const item of items) {
        const i = order.index.get(item);
        if (i !== undefined && !seen.has(i)) {
          seen.add(i);
          present.push(i);
        }
      }
    }
    present.sort((a, b) => a - b);
    // Inserted in the original order; integer-like keys are ordered first by Object.keys in
    // both objects alike, so the pruned object enumerates in the original order.
    const hooks: Record<string, unknown> = {};
    for (const i of present) hooks[order.keys[i]!] = net.hooks[order.keys[i]!];
    return original(document, { ...net, hooks }, m, opts);
  };
}

/**
 * Stops compromise from running its chunker on every parse. The chunker marks noun and verb
 * phrases (term.chunk), which this extractor never reads: it walks the tagged terms itself,
 * and the people/places/organizations views match on tags. Tags, roots and entities stay
 * the same (compromise-sweep.test.ts; extractions byte-identical over chat, coding-session
 * and LoCoMo turns), for ~5% less CPU a parse. It changes the compromise instance for the
 * whole process: only the extractor uses compromise here.
 */
export function skipChunker(nlp: unknown): void {
  const hooks = (nlp as { world(): { hooks: string[] } }).world().hooks;
  const i = hooks.indexOf("chunks");
  if (i >= 0) hooks.splice(i, 1);
}
