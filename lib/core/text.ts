// Shared text utilities for the local embedder, the keyword query builder and the graph.
// They run on every message at ingest and on every query, so they avoid per-call
// allocation beyond the result arrays and cache stems.

import { stemmer } from "stemmer";
import type { KnownPiece } from "./ports.ts";

// A word is a run of letters, marks and digits, optionally joined by apostrophes
// (straight or curly) so "Caroline's" and "don't" stay one token before the clean-up.
const WORD = /[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu;
const POSSESSIVE = /['’]s$/;
const APOSTROPHE = /['’]/g;

/**
 * Lower-cased word tokens, numbers kept, split on punctuation and whitespace.
 * Possessive "'s" is dropped ("Caroline's" -> "caroline"); other apostrophes are
 * removed in place ("don't" -> "dont", "I'm" -> "im") so contractions stay one token.
 */
export function words(text: string): string[] {
  const out: string[] = [];
  const matches = text.toLowerCase().match(WORD);
  if (matches === null) return out;
  for (let word of matches) {
    if (word.includes("'") || word.includes("’")) {
      word = word.replace(POSSESSIVE, "").replace(APOSTROPHE, "");
      if (word === "") continue;
    }
    out.push(word);
  }
  return out;
}

/**
 * English stopwords, in the apostrophe-free form words() produces ("dont", "im"),
 * plus chat interjections ("hey", "lol") that carry no topic.
 */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    "a about above after again against all am an and any are arent as at be because been before being below " +
    "between both but by can cant cannot could couldnt did didnt do does doesnt doing dont down during each few " +
    "for from further had hadnt has hasnt have havent having he hed hes her here heres hers herself him " +
    "himself his how hows i id ill im ive if in into is isnt it its itself lets me more most mustnt my myself " +
    "no nor not of off on once only or other ought our ours ourselves out over own same shant she shed shes " +
    "should shouldnt so some such than that thats the their theirs them themselves then there theres these they " +
    "theyd theyll theyre theyve this those through to too under until up very was wasnt we wed well were weve " +
    "werent what whats when whens where wheres which while who whos whom why whys will with wont would wouldnt " +
    "you youd youll youre youve your yours yourself yourselves also just really yeah yes oh hey hi hello wow ok " +
    "okay lol haha hmm um uh gonna wanna got get s t"
  ).split(" "),
);

// Porter stemming is the hot spot of terms(); chat vocabulary is small, so a bounded
// cache turns almost every call into a map lookup.
const STEM_CACHE_LIMIT = 50_000;
const stemCache = new Map<string, string>();

/** Porter stem of a lower-case word (cached). */
export function stem(word: string): string {
  let s = stemCache.get(word);
  if (s === undefined) {
    s = stemmer(word);
    if (stemCache.size >= STEM_CACHE_LIMIT) stemCache.clear();
    stemCache.set(word, s);
  }
  return s;
}

/** words() minus STOPWORDS, Porter-stemmed, in text order (repeats kept). */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const word of words(text)) {
    if (!STOPWORDS.has(word)) out.push(stem(word));
  }
  return out;
}

/** A prompt piece's text: a KnownPiece's before + text + after, a string as it is. */
export function pieceText(p: string | KnownPiece): string {
  return typeof p === "string" ? p : p.before + p.text + p.after;
}
