// Decisions and tasks a conversation states, found without an LLM: sentence-level cue
// phrases that people use when they settle something ("we decided to", "let's go with") or
// take something on ("I need to", "remind me to", "TODO"). Precision over recall: a missed
// commitment is still findable by search, a false one would be presented as a fact.

import type { ExtractedStatement } from "../../core/types.ts";

const DECISION = [
  /\b(?:we|i|they|he|she)\s+(?:have\s+|'ve\s+|had\s+|'d\s+)?(?:decided|agreed|settled|committed)\b/i,
  /\b(?:we|i)(?:'ve| have)?\s+(?:made|reached)\s+(?:a|the|our|my)\s+decision\b/i,
  /\blet'?s\s+(?:go\s+with|stick\s+with|use|choose|pick)\b/i,
  /\b(?:we|i)(?:'ll| will| are going to|'re going to|'m going to| am going to)\s+go\s+with\b/i,
  /\b(?:the|our|my)\s+(?:decision|plan)\s+is\s+to\b/i,
  /\b(?:we|i)\s+(?:chose|picked|opted)\b/i,
  /^\s*(?:decision|decided)\s*:/i,
];

const TASK = [
  /\b(?:i|we)\s+(?:really\s+)?(?:need|have|ought|must)\s+to\b/i,
  /\b(?:i|we)(?:'ve| have)\s+got\s+to\b/i,
  /\bremind\s+(?:me|us)\s+to\b/i,
  /\b(?:don'?t|do not)\s+(?:let\s+me\s+)?forget\s+to\b/i,
  /\b(?:todo|to-do|action item)\b\s*:?/i,
  /\b(?:i|we)(?:'ll| will)\s+(?:make\s+sure|remember)\s+to\b/i,
  /\bcan\s+you\s+(?:please\s+)?(?:remind|schedule|book|send|set\s+up|draft|follow\s+up)\b/i,
];

// Each list as one regex: a sentence is tested once for any of its cues, not once per cue
// (the same matches: an alternation matches where one of its branches does).
const anyOf = (list: RegExp[]) => new RegExp(list.map((re) => `(?:${re.source})`).join("|"), "i");
const ANY_DECISION = anyOf(DECISION);
const ANY_TASK = anyOf(TASK);

// Reported or hypothetical speech states no commitment of the speaker's.
const HEDGE = /\b(?:if|whether|should we|do we need|did you|have you|would you|maybe|might)\b|\?\s*$/i;

const MAX_LEN = 300;

function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length >= 8);
}

/** What a sentence commits its speaker to, if anything. */
function kindOf(s: string): ExtractedStatement["kind"] | null {
  if (HEDGE.test(s)) return null;
  return ANY_DECISION.test(s) ? "decision" : ANY_TASK.test(s) ? "task" : null;
}

/** Whether findCommitments would find any in the text (without making them). */
export function statesCommitment(text: string): boolean {
  return sentences(text.slice(0, 20_000)).some((s) => kindOf(s) !== null);
}

/** Decisions and tasks stated in one message, at most a few, each one sentence long. */
export function findCommitments(text: string): ExtractedStatement[] {
  const out: ExtractedStatement[] = [];
  const seen = new Set<string>();
  for (const s of sentences(text.slice(0, 20_000))) {
    const kind = kindOf(s);
    if (!kind) continue;
    const content = s.length > MAX_LEN ? `${s.slice(0, MAX_LEN - 1)}…` : s;
    const key = `${kind}:${content.toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ kind, text: content });
    if (out.length >= 5) break;
  }
  return out;
}
