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

import { countTokens, isWithinTokenLimit } from "gpt-tokenizer/encoding/o200k_base";
import type { KnownPiece, Tokenizer } from "../../core/ports.ts";
import { pieceText } from "../../core/text.ts";

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

/** Code unit of an ASCII letter or digit: a pre-token holding one ends with it when a space follows. */
function asciiWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}

/** Code unit of an ASCII digit. */
function asciiDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Whether a known piece's text can be cut before its code unit `k` so that the parts count apart
 * what they count together, inside before + text + after as alone. Three kinds of place:
 * - a space after an ASCII letter or digit: the pre-token holding that letter or digit (one of
 *   the letter alternatives, or `\p{N}{1,3}`) cannot take a space, so it ends there;
 * - an ASCII digit after an ASCII letter or punctuation mark (neither a digit nor whitespace):
 *   only `\p{N}{1,3}` holds a digit, and it holds digits alone, so a pre-token ends before the
 *   digit, and the next starts there as it would alone (the digits' groups of three included);
 *   the mark before it is not whitespace, so `\s+(?!\S)` never looks across;
 * - after a "\n" followed by a character that is neither whitespace nor "/" (the points
 *   countJoined's runs end at, from the module's comment).
 * The regex has no lookbehind: what follows such a place is pre-tokenized the same whatever came
 * before, and what precedes the same whatever follows (the only lookahead, `\s+(?!\S)`, looks one
 * character past a whitespace run: before a space or a digit place the character is not
 * whitespace, and a run ending in "\n" is taken by `\s*[\r\n]+`, tried first). Digits and "\n"
 * places let a turn's last line of code or log output (a stack frame's ":319:22)", a closing
 * "```") be cut near its end, where the space-only cuts left its whole last words to count.
 */
export function cutAt(text: string, k: number): boolean {
  const c = text.charCodeAt(k);
  const p = text.charCodeAt(k - 1);
  if (c === 32) return asciiWordChar(p);
  if (asciiDigit(c)) return p > 32 && p < 127 && !asciiDigit(p);
  return p === 10 && c > 32 && c < 127 && c !== 47;
}

/** The first and the last place cutAt allows in text, or -1 when there is none. */
function firstCut(text: string): number {
  for (let k = 1; k < text.length; k++) if (cutAt(text, k)) return k;
  return -1;
}
function lastCut(text: string): number {
  for (let k = text.length - 1; k > 0; k--) if (cutAt(text, k)) return k;
  return -1;
}

export function createLocalTokenizer(options: LocalTokenizerOptions = {}): Tokenizer {
  const maxEntries = options.cacheEntries ?? CACHE_ENTRIES;
  const maxChars = options.cacheChars ?? CACHE_CHARS;
  const count = (text: string): number => (text === "" ? 0 : countTokens(text, PLAIN_TEXT));
  // Two generations instead of a least-recently-used order: a hit in the old one moves its
  // entry to the young one, and when the young one holds half the bounds it becomes the old
  // one (the old one's entries not used since go). A Map kept in LRU order by delete and
  // re-insert cost more than the counts it saved: V8 leaves deleted entries in place until it
  // rehashes, and finding the oldest live entry walks past all of them.
  let young = new Map<string, number>();
  let old = new Map<string, number>();
  let youngChars = 0;
  const cachedCount = (run: string): number => {
    if (maxEntries <= 0 || run.length > maxChars) return count(run);
    let n = young.get(run);
    if (n !== undefined) return n;
    n = old.get(run);
    if (n === undefined) n = count(run);
    young.set(run, n);
    youngChars += run.length;
    if (2 * young.size > maxEntries || 2 * youngChars > maxChars) {
      old = young;
      young = new Map();
      youngChars = 0;
    }
    return n;
  };
  /**
   * count(before + text + after) given count(text) = tokens, by the cuts (firstCut, lastCut)
   * in text: before + text up to its first cut, and text from its last cut + after, are
   * counted (short, and mostly cached: a speaker and a first word, a last word and a newline);
   * what lies between counts what text counts less its two ends. Without a cut, or with a
   * stored count that cannot be right (it leaves less than nothing between), the whole.
   */
  const countAround = (p: KnownPiece): number => {
    const { before, text, tokens, after } = p;
    const j = firstCut(text);
    if (j < 0) return cachedCount(before + text + after);
    const i = lastCut(text);
    const head = text.slice(0, j);
    const tail = text.slice(i);
    const middle = tokens - cachedCount(head) - cachedCount(tail);
    if (middle < 0 || (i === j && middle !== 0)) return cachedCount(before + text + after);
    return cachedCount(before + head) + middle + cachedCount(tail + after);
  };
  return {
    name: "o200k_base",
    count,
    // The encoder's pre-tokens one at a time, stopping once past the limit.
    countWithin: (text, limit) => (text === "" ? (limit >= 0 ? 0 : false) : isWithinTokenLimit(text, limit, PLAIN_TEXT)),
    countJoined(pieces) {
      let total = 0;
      let run = "";
      // The known piece the run holds alone so far, if it does.
      let alone: KnownPiece | null = null;
      const flush = () => {
        if (run !== "") total += alone ? countAround(alone) : cachedCount(run);
      };
      for (const piece of pieces) {
        const text = pieceText(piece);
        if (text === "") continue;
        if (run === "" || (run.endsWith("\n") && OPENS_RUN.test(text))) {
          flush();
          run = text;
          alone = typeof piece === "string" ? null : piece;
        } else {
          run += text;
          alone = null;
        }
      }
      flush();
      return total;
    },
  };
}
