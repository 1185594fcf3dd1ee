// Local tokenizer: OpenAI's o200k_base BPE (GPT-4o family) in pure JS, so token counts made
// at ingest match what the models the context is packed for will see.
//
// countJoined counts a text given as pieces (a prompt's lines) exactly, from cached counts of
// its pieces, which a context call mostly has seen before (messages never change after
// ingest). BPE merges only inside one pre-token, and o200k's pre-tokenizer (its split regex,
// O200K_TOKEN_SPLIT_PATTERN in gpt-tokenizer) always ends a pre-token at a "\n" followed by
// a character that is neither whitespace nor "/":
//   - the two letter alternatives, `[^\r\n\p{L}\p{N}]?[…letters…]+…`, never hold a "\n";
//   - `\p{N}{1,3}` holds digits only;
//   - ` ?[^\s\p{L}\p{N}]+[\r\n/]*` holds "\n" only in its tail, which goes on only with "\r", "\n" or "/";
//   - `\s*[\r\n]+`, `\s+(?!\S)` and `\s+` hold whitespace only.
// So no pre-token crosses such a point, and the text before it pre-tokenizes the same alone
// as inside the whole (the only lookahead, in `\s+(?!\S)`, is never tried on a whitespace
// run ending in "\n": `\s*[\r\n]+`, tried first, takes it). The count of the whole is then
// the sum of the counts of the runs between such points. Pieces are merged into runs that
// end at one, and each run's count is cached by its text; any other join (a piece starting
// with a space, a "/" or a newline, a piece not ending in "\n") is counted as one run, so
// the sum is exact whatever the pieces are (tokenizer.test.ts checks it against counting
// the joined text).

import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { Tokenizer } from "../../core/ports.ts";

// User text may contain "<|endoftext|>" and friends; count them as the plain text they
// are instead of letting the encoder throw on a "disallowed special token".
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** A piece that may open a new pre-token run after a "\n": it starts with neither whitespace nor "/". */
const OPENS_RUN = /^[^\s/]/u;

/** Bounds of the run cache: texts held and their total length (UTF-16 units). */
const CACHE_ENTRIES = 8192;
const CACHE_CHARS = 4_000_000;

export interface LocalTokenizerOptions {
  /** Entries the run cache holds at most (0: no cache). */
  cacheEntries?: number;
  /** Total characters the run cache holds at most. */
  cacheChars?: number;
}

export function createLocalTokenizer(options: LocalTokenizerOptions = {}): Tokenizer {
  const maxEntries = options.cacheEntries ?? CACHE_ENTRIES;
  const maxChars = options.cacheChars ?? CACHE_CHARS;
  const count = (text: string): number => (text === "" ? 0 : countTokens(text, PLAIN_TEXT));
  // Least recently used first (a Map keeps insertion order; a hit moves its entry last).
  const cache = new Map<string, number>();
  let chars = 0;
  const cachedCount = (run: string): number => {
    if (maxEntries <= 0 || run.length > maxChars) return count(run);
    const hit = cache.get(run);
    if (hit !== undefined) {
      cache.delete(run);
      cache.set(run, hit);
      return hit;
    }
    const n = count(run);
    cache.set(run, n);
    chars += run.length;
    while (cache.size > maxEntries || chars > maxChars) {
      const oldest = cache.keys().next().value!;
      cache.delete(oldest);
      chars -= oldest.length;
    }
    return n;
  };
  return {
    name: "o200k_base",
    count,
    countJoined(pieces) {
      let total = 0;
      let run = "";
      for (const piece of pieces) {
        if (piece === "") continue;
        if (run.endsWith("\n") && OPENS_RUN.test(piece)) {
          total += cachedCount(run);
          run = piece;
        } else run += piece;
      }
      return run === "" ? total : total + cachedCount(run);
    },
  };
}
