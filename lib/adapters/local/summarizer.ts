// The embedded summarizer: extractive, no LLM. A session's sentences are scored by how
// central their terms are to the session (TF-IDF over the sentences), with bonuses for what
// a summary must not lose — decisions and tasks (commitments.ts), names, dates and numbers —
// and filler ("ok thanks!") scores nothing. The best ones that fit the token cap are kept
// and printed in chronological order, one line each, with the speaker and the day:
//
//   [2026-03-04] Alice: We decided to move the launch to May 12.
//
// Rolling: the previous summary's lines compete with the new sentences on the same scores
// (they keep their place, before everything new), so the summary stays under the cap while
// old decisions hold on and small talk from long ago falls out. Deterministic: ties go to
// the earlier sentence.

import type { Summarizer, SummaryInput, Tokenizer } from "../../core/ports.ts";
import { terms } from "../../core/text.ts";
import { statesCommitment } from "./commitments.ts";
import { descending } from "../../core/order.ts";

export const LOCAL_SUMMARIZER_VERSION = "local-extractive-v1";

interface Unit {
  /** Position in chronological order (previous lines first). */
  order: number;
  line: string;
  terms: string[];
  /** The sentence alone (without the speaker and date prefix), for the cue bonuses. */
  text: string;
  previous: boolean;
}

const MONTH = /\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|yesterday|tonight|next week|last week)\b/i;
const NUMBER = /\d/;
// A capitalised word not at the start of the sentence: a name, a place, a product.
const PROPER = /(?<=[\p{L}\p{N},;:)]\s+)\p{Lu}[\p{L}\p{M}'’-]+/gu;
const PREVIOUS_LINE = /^\[\d{4}-\d{2}-\d{2}\] /;

/** Whether a code unit is whitespace to the encoder's split regex (\s). */
function whitespace(c: number): boolean {
  if (c < 128) return c === 32 || (c >= 9 && c <= 13);
  return /\s/.test(String.fromCharCode(c));
}

/**
 * Fewer tokens than the o200k count of `line` can be, found without counting it. The
 * encoder splits text into pre-tokens (its split regex, tokenizer.ts's header), each at least
 * one token, and no pre-token holds a non-whitespace character, then a space (" "), then
 * another: the word and number ones take one leading character at most, the punctuation one
 * a leading space and then "\r", "\n" or "/" only, and the rest are whitespace alone. So each
 * part of the line between spaces that holds something other than whitespace is a pre-token
 * at least. A line that opens with its day, "[2026-03-04] ", holds eight in that part alone:
 * "[", "202", "6", "-", "03", "-", "04", "]" (digits go in threes, and neither a bracket nor
 * a hyphen joins a digit). summarizer.test.ts checks it against the count.
 */
export function tokensAtLeast(line: string): number {
  let parts = 0;
  let inPart = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 32) inPart = false;
    else if (!inPart && !whitespace(c)) {
      parts++;
      inPart = true;
    }
  }
  return PREVIOUS_LINE.test(line) ? parts + 7 : parts;
}

const MAX_SENTENCE_CHARS = 400;

/**
 * Work between two turns given back to the event loop (LocalSummarizerOptions.scheduleSlice).
 * Summarizing a long session at once held the embedded server's thread, and every request
 * with it: 400 turns of a coding agent's session (tool output, 17,000 lines) took 0.45 s.
 */
const SLICE_MS = 4;
/** Sentences scored or counted between two looks at the clock. */
const PACE_EVERY = 64;

/** Awaited between pieces of work: gives the event loop a turn once SLICE_MS have passed since the last. */
type Pace = () => Promise<void> | undefined;

function pacer(scheduleSlice: ((run: () => void) => void) | undefined): Pace {
  if (!scheduleSlice) return () => undefined;
  let since = performance.now();
  return () => {
    if (performance.now() - since < SLICE_MS) return undefined;
    return new Promise<void>((resolve) =>
      scheduleSlice(() => {
        since = performance.now();
        resolve();
      }),
    );
  };
}

function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s.length > 0)
    .map((s) => (s.length > MAX_SENTENCE_CHARS ? `${s.slice(0, MAX_SENTENCE_CHARS - 1)}…` : s));
}

async function unitsOf(input: SummaryInput, pace: Pace): Promise<Unit[]> {
  const units: Unit[] = [];
  for (const line of (input.previous ?? "").split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    // "[date] Speaker: text" — the cue bonuses look at the text after the speaker.
    const text = PREVIOUS_LINE.test(trimmed) ? trimmed.replace(PREVIOUS_LINE, "").replace(/^[^:]{1,80}:\s*/, "") : trimmed;
    units.push({ order: units.length, line: trimmed, terms: terms(text), text, previous: true });
  }
  for (const m of input.messages) {
    await pace();
    const day = m.createdAt.slice(0, 10);
    const speaker = m.name ?? m.role;
    for (const text of sentences(m.content)) {
      units.push({ order: units.length, line: `[${day}] ${speaker}: ${text}`, terms: terms(text), text, previous: false });
    }
  }
  return units;
}

/** Salience of each unit: TF-IDF centrality plus bonuses; 0 for filler. */
async function score(units: Unit[], pace: Pace): Promise<number[]> {
  const df = new Map<string, number>();
  const tf = new Map<string, number>();
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (i % PACE_EVERY === 0) await pace();
    for (const t of u.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const t of new Set(u.terms)) df.set(t, (df.get(t) ?? 0) + 1);
  }
  const n = units.length;
  const scores: number[] = [];
  for (const u of units) {
    if (scores.length % PACE_EVERY === 0) await pace();
    scores.push(salience(u, tf, df, n));
  }
  return scores;
}

function salience(u: Unit, tf: Map<string, number>, df: Map<string, number>, n: number): number {
  const distinct = new Set(u.terms);
  // Fewer than three content words is an acknowledgement or a greeting, whatever it says.
  const commitment = statesCommitment(u.text);
  if (distinct.size < 3 && !commitment) return 0;
  let centrality = 0;
  for (const t of distinct) {
    // A term the session keeps coming back to is central; one in every sentence is not.
    centrality += Math.log(1 + (tf.get(t) ?? 0)) * Math.log(1 + n / (df.get(t) ?? 1));
  }
  centrality /= Math.sqrt(distinct.size);
  let bonus = 1;
  if (commitment) bonus += 1.5;
  if (MONTH.test(u.text) || NUMBER.test(u.text)) bonus += 0.5;
  const names = u.text.match(PROPER)?.length ?? 0;
  if (names) bonus += Math.min(0.75, 0.25 * names);
  if (u.text.endsWith("?")) bonus -= 0.25;
  return centrality * bonus;
}

export interface LocalSummarizerOptions {
  tokenizer: Tokenizer;
  /**
   * Runs the summary's next slice on a later turn of the event loop; the embedded server's
   * runs it between requests (request-gate.ts, sliceScheduler). A slice is about SLICE_MS of
   * work. Without it a summary is made in one go.
   */
  scheduleSlice?: (run: () => void) => void;
}

export function createLocalSummarizer(options: LocalSummarizerOptions): Summarizer {
  const { tokenizer, scheduleSlice } = options;
  const countWithin = (text: string, limit: number): number | false => {
    if (tokenizer.countWithin) return tokenizer.countWithin(text, limit);
    const n = tokenizer.count(text);
    return n <= limit ? n : false;
  };
  return {
    version: LOCAL_SUMMARIZER_VERSION,
    async summarize(input) {
      if (!(input.maxTokens > 0)) return "";
      const pace = pacer(scheduleSlice);
      const units = await unitsOf(input, pace);
      const scores = await score(units, pace);
      const ranked = units
        .map((u, i) => ({ u, s: scores[i]! }))
        .filter((x) => x.s > 0)
        .sort((a, b) => descending(a.s, b.s) || a.u.order - b.u.order);
      const chosen: typeof ranked = [];
      let used = 0;
      const seen = new Set<string>();
      for (let i = 0; i < ranked.length; i++) {
        const x = ranked[i]!;
        if (i % PACE_EVERY === 0) await pace();
        // Every line is a token at least, and a newline joins it to the others: once not even
        // that fits, no line can. Lines are counted here, as they are reached, and filler
        // (scored 0) never is.
        if (used + (chosen.length ? 2 : 1) > input.maxTokens) break;
        if (seen.has(x.u.line)) continue;
        // What is left of the cap, after the newline that joins the line to the others. Once
        // the first lines have filled most of it, a line is counted only as far as that, not
        // to its end (a session's lines were nearly all counted whole).
        const joint = chosen.length ? 1 : 0;
        const room = input.maxTokens - used - joint;
        if (tokensAtLeast(x.u.line) > room) continue;
        const tokens = countWithin(x.u.line, room);
        if (tokens === false) continue;
        const cost = tokens + joint;
        chosen.push(x);
        seen.add(x.u.line);
        used += cost;
      }
      // Token counts of joined text can differ from the sum of the parts by a token or two
      // at the joins: drop the least salient line until the whole is under the cap.
      for (;;) {
        const text = [...chosen].sort((a, b) => a.u.order - b.u.order).map((x) => x.u.line).join("\n");
        if (tokenizer.count(text) <= input.maxTokens || !chosen.length) return text;
        chosen.pop();
      }
    },
  };
}
