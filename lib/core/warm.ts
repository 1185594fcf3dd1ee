// Reads ahead of a step that looks many objects up by string, so the CPU fetches them together.
//
// In a server holding a long-lived user (a heap of gigabytes), the ids and sessions a ranking
// step reads are cold: each is a cache miss, and the TLB's too. Looked up in a Map one after
// another, each lookup waits for its string (its hash is in the string's header) before the
// next starts: about 450 such misses a context call at 100k turns, one after the other. A
// loop that only reads each string's length has no such dependency between its iterations, so
// the CPU keeps many of those misses in flight at once, and the lookups that follow find the
// strings in cache. A standalone loop of 450 Map lookups of cold ids over a 3M-object heap took
// 0.129 ms alone and 0.049 ms after such a pass. With the passes of fusion, the neighbours, the
// session prior and the vector tier's matches, a 100k-turn user's context call ranked in 0.705
// of the time and took 0.935 of it, a 1k-turn user's 0.848 and 0.967 (bench/search.ts --switch,
// caches emptied between calls; BENCHMARKS.md, nineteenth round).

/** What the passes read, kept where the JIT cannot prove it unused. */
export const warmed = { chars: 0 };

/** Reads the length of each item's `id` (its header, beside the hash a Map lookup reads). */
export function warmIds(items: readonly { readonly id: string }[]): void {
  let chars = 0;
  for (let i = 0; i < items.length; i++) chars += items[i]!.id.length;
  warmed.chars += chars;
}
