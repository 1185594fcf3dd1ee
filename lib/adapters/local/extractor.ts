// Local extractor: entities and relations from chat messages with compromise (rule-based
// English NLP), no LLM. People, places and organisations come from compromise's named-
// entity views; dates from its #Date tags, with relative ones ("yesterday", "last week")
// resolved against the message time; topics from runs of common nouns, singular and
// lower-case. Relations link the speaker to everything the message mentions, and entities
// in one sentence to each other through the verb between them.

import nlp from "compromise";
import type { EntityType, ExtractedEntity, ExtractedRelation, Extraction } from "../../core/types.ts";
import { STOPWORDS } from "../../core/text.ts";
import { findCommitments } from "./commitments.ts";
import { installFastSweep, skipChunker } from "./compromise-sweep.ts";

// Same tags and entities for less CPU (see compromise-sweep.ts).
installFastSweep(nlp);
skipChunker(nlp);

/** The slice of compromise's Term this file reads. */
interface Term {
  text: string;
  normal: string;
  post: string;
  root?: string;
  tags: Set<string>;
}

/** A compromise View, as far as this file uses it. */
interface View {
  docs: Term[][];
  fullPointer: [number, number, number, ...unknown[]][];
}

/** One occurrence of an entity in the text, for pairing within a sentence. */
interface Occurrence {
  type: EntityType;
  name: string;
  sentence: number;
  start: number;
  end: number;
}

const MAX_TOPICS = 5;
// compromise takes a few ms per 30 words; the tail of a huge paste is not worth seconds.
const MAX_CHARS = 20_000;
// Pairs grow quadratically; a sentence rarely names more than this many things.
const MAX_PER_SENTENCE = 8;

// Nouns too vague to be a topic of anything.
const GENERIC_NOUNS = new Set(
  (
    "thing stuff lot kind sort type way bit time moment day week month year weekend one someone somebody something " +
    "anything anybody anyone everything everyone everybody nothing nobody other others guy folk people person part " +
    "place look today tomorrow yesterday tonight morning afternoon evening night spring summer fall autumn winter " +
    "thanks thank congrats hey wow yeah lol ok"
  ).split(" "),
);

const DATE_MODIFIERS = new Set(["last", "next", "this", "past", "coming", "previous", "early", "late", "mid"]);
// Month (0-based) each season starts in, northern hemisphere.
const SEASON_START: Record<string, number> = { spring: 2, summer: 5, fall: 8, autumn: 8, winter: 11 };
const SEASONS = new Set(Object.keys(SEASON_START));
// Words compromise may leave untagged: the first stand alone as dates, the rest (like
// seasons and durations) only with a modifier ("last night", "this morning").
const DAY_WORDS = new Set(["today", "tonight", "yesterday", "tomorrow"]);
const DAY_PARTS = new Set(["morning", "afternoon", "evening", "night"]);
const NUMBER_WORDS: Record<string, number> = {
  a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, couple: 2,
};
const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const DAY_MS = 86_400_000;
const FIRST_PERSON = /^(?:i|me)(?:['’]\w+)?$/;

const isoDay = (t: number) => new Date(t).toISOString().slice(0, 10);
const mondayOf = (t: number) => t - ((new Date(t).getUTCDay() + 6) % 7) * DAY_MS;

/**
 * Absolute form of a relative date phrase at time `now` (ms, UTC), or null when the phrase
 * is absolute already or too vague: days resolve to "2023-05-07", weeks to
 * "week of 2023-05-01" (its Monday), months to "2023-04", years to "2022".
 */
export function resolveRelativeDate(phrase: string, now: number): string | null {
  // "yesterday morning" is yesterday; "last night" is yesterday too.
  const p = phrase
    .toLowerCase()
    .replace(/[^a-z0-9 ]/g, "")
    .trim()
    .replace(/^(yesterday|today|tomorrow) (morning|afternoon|evening|night)$/, "$1")
    .replace(/^last night$/, "yesterday")
    .replace(/^this (morning|afternoon|evening)$/, "today");
  if (p === "today" || p === "tonight") return isoDay(now);
  if (p === "yesterday") return isoDay(now - DAY_MS);
  if (p === "tomorrow") return isoDay(now + DAY_MS);
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const month = (offset: number) => {
    const x = new Date(Date.UTC(y, m + offset, 1));
    return `${x.getUTCFullYear()}-${String(x.getUTCMonth() + 1).padStart(2, "0")}`;
  };

  const ago = /^(\w+) (day|week|month|year)s? ago$/.exec(p);
  if (ago) {
    const n = NUMBER_WORDS[ago[1]!] ?? Number(ago[1]);
    if (!Number.isInteger(n) || n <= 0) return null;
    if (ago[2] === "day") return isoDay(now - n * DAY_MS);
    if (ago[2] === "week") return `week of ${isoDay(mondayOf(now - n * 7 * DAY_MS))}`;
    if (ago[2] === "month") return month(-n);
    return String(y - n);
  }

  const rel = /^(last|next|this|past|coming|previous) (\w+)$/.exec(p);
  if (!rel) return null;
  const dir = rel[1] === "next" || rel[1] === "coming" ? 1 : rel[1] === "this" ? 0 : -1;
  const unit = rel[2]!;
  // Full or abbreviated weekday: "Friday", "Fri", "Tues".
  const wd = unit.length >= 3 ? WEEKDAYS.findIndex((w) => w.startsWith(unit)) : -1;
  if (wd >= 0) {
    // "last Friday": the latest Friday before today; "next"/"this Friday": the first one after.
    const today = d.getUTCDay();
    const back = (today - wd + 7) % 7 || 7;
    const ahead = (wd - today + 7) % 7 || 7;
    return isoDay(dir < 0 ? now - back * DAY_MS : now + ahead * DAY_MS);
  }
  if (unit === "week") return `week of ${isoDay(mondayOf(now + dir * 7 * DAY_MS))}`;
  if (unit === "weekend") {
    const today = d.getUTCDay();
    const saturday = dir < 0 ? now - (((today - 6 + 7) % 7) || 7) * DAY_MS : now + ((6 - today + 7) % 7) * DAY_MS;
    return `weekend of ${isoDay(saturday)}`;
  }
  const season = SEASON_START[unit];
  if (season !== undefined) {
    // "last summer" in May 2023 is summer 2022; in October it is summer 2023.
    const year = dir < 0 ? (m > season + 2 ? y : y - 1) : dir > 0 ? (m < season ? y : y + 1) : y;
    return `${unit} ${year}`;
  }
  if (unit === "month") return month(dir);
  if (unit === "year") return String(y + dir);
  return null;
}

/** Surface text of a run of terms, keeping inner punctuation ("March 3rd, 2024"), trimmed. */
function surface(terms: Term[]): string {
  let s = "";
  terms.forEach((t, i) => {
    if (t.text === "") return; // implicit term of a contraction
    s += t.text + (i < terms.length - 1 ? t.post : "");
  });
  return s
    .replace(/['’]s$/i, "")
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "")
    .replace(/\s+/g, " ");
}

const isDateTerm = (t: Term) => t.tags.has("Date") || SEASONS.has(t.normal) || DAY_WORDS.has(t.normal) || DAY_PARTS.has(t.normal);
const breaksRun = (t: Term) => /[.;:!?()"]/.test(t.post);

/** Date phrases of one sentence: runs of #Date terms with their numbers and modifiers. */
function datesOf(terms: Term[], sentence: number, now: number): Occurrence[] {
  const out: Occurrence[] = [];
  let i = 0;
  let prevEnd = 0;
  while (i < terms.length) {
    if (!isDateTerm(terms[i]!)) {
      i++;
      continue;
    }
    let start = i;
    let end = i + 1;
    // Numbers and "of" glued to date terms: "5 May 2023", "3rd of May", "two days ago".
    while (end < terms.length && !breaksRun(terms[end - 1]!)) {
      const t = terms[end]!;
      const glued = isDateTerm(t) || t.tags.has("Value") || (t.normal === "of" && end + 1 < terms.length && isDateTerm(terms[end + 1]!));
      // A comma ends the phrase unless a year follows ("March 3rd, 2024").
      if (!glued || (terms[end - 1]!.post.includes(",") && !t.tags.has("Year"))) break;
      end++;
    }
    while (start > prevEnd && !breaksRun(terms[start - 1]!) && !terms[start - 1]!.post.includes(",")) {
      const t = terms[start - 1]!;
      if (!(t.tags.has("Value") || DATE_MODIFIERS.has(t.normal) || t.normal in NUMBER_WORDS)) break;
      start--;
    }
    const run = terms.slice(start, end);
    const modified = DATE_MODIFIERS.has(run[0]!.normal) || run.some((t) => t.normal === "ago");
    // Bare durations ("a few days", "every week"), seasons and day parts are not dates.
    const anchored = run.some(
      (t) =>
        DAY_WORDS.has(t.normal) ||
        (t.tags.has("Date") && !t.tags.has("Duration") && !SEASONS.has(t.normal) && !DAY_PARTS.has(t.normal) && t.normal !== "ago"),
    );
    if (anchored || modified) {
      const text = surface(run);
      const name = (Number.isNaN(now) ? null : resolveRelativeDate(text, now)) ?? text;
      if (name !== "") out.push({ type: "date", name, sentence, start, end });
    }
    i = prevEnd = end;
  }
  return out;
}

const NOT_TOPIC_TAGS = ["Pronoun", "Possessive", "Person", "Place", "Organization", "Date", "Value", "Determiner"];

/** Topic candidates of a sentence: runs of plain common nouns, singular and lower-case. */
function topicsOf(terms: Term[], sentence: number): Occurrence[] {
  const out: Occurrence[] = [];
  let run: string[] = [];
  let runStart = 0;
  const flush = (end: number) => {
    const words = run.slice(-4);
    const name = words.join(" ");
    if (name.length > 1 && !(words.length === 1 && GENERIC_NOUNS.has(name))) {
      out.push({ type: "topic", name, sentence, start: runStart, end });
    }
    run = [];
  };
  terms.forEach((t, i) => {
    const word = (t.root ?? t.normal).replace(/['’]s$/, "");
    const plain =
      t.text !== "" &&
      (t.tags.has("Noun") || t.tags.has("Acronym")) &&
      !NOT_TOPIC_TAGS.some((tag) => t.tags.has(tag)) &&
      !STOPWORDS.has(word) &&
      /\p{L}/u.test(word);
    if (plain) {
      if (run.length === 0) runStart = i;
      run.push(word);
    } else flush(i);
    if (breaksRun(t) || t.post.includes(",")) flush(i + 1);
  });
  flush(terms.length);
  return out;
}

interface VerbAt {
  sentence: number;
  start: number;
  lemma: string;
}

/** Main verbs of a sentence by lemma ("didn't go" -> "not go"); auxiliaries and modals skipped. */
function verbsOf(terms: Term[], sentence: number): VerbAt[] {
  const out: VerbAt[] = [];
  terms.forEach((t, i) => {
    if (!t.tags.has("Verb") || t.tags.has("Auxiliary") || t.tags.has("Modal") || t.text === "") return;
    let lemma = (t.root ?? t.normal).toLowerCase();
    if (t.tags.has("Copula") || lemma === "is") lemma = "be";
    // Negation sits in the auxiliary chain before the verb ("did n't go", "have not been"),
    // or right after a main "do"/"be" ("don't", "isn't").
    let negative = terms[i + 1]?.tags.has("Negative") === true;
    for (let j = i - 1; j >= 0 && j >= i - 4; j--) {
      const p = terms[j]!;
      if (p.tags.has("Negative")) negative = true;
      else if (!p.tags.has("Auxiliary") && !p.tags.has("Modal") && !p.tags.has("Adverb")) break;
    }
    out.push({ sentence, start: i, lemma: negative ? `not ${lemma}` : lemma });
  });
  return out;
}

function extractOne(content: string, speaker: string | null, createdAt: string): Extraction {
  const entities = new Map<string, ExtractedEntity>();
  const add = (type: EntityType, name: string): string => {
    const key = `${type}|${name.toLowerCase()}`;
    if (!entities.has(key)) entities.set(key, { name, type });
    return key;
  };
  const speakerKey = speaker ? add("person", speaker) : null;
  const occurrences: Occurrence[] = [];
  const verbs: VerbAt[] = [];

  if (content.trim() !== "") {
    const doc = nlp(content.length > MAX_CHARS ? content.slice(0, MAX_CHARS) : content);
    doc.compute("root");
    const named: [EntityType, View][] = [
      ["person", doc.people() as unknown as View],
      ["place", doc.places() as unknown as View],
      ["organization", doc.organizations() as unknown as View],
    ];
    for (const [type, view] of named) {
      let prev: { occurrence: Occurrence; terms: Term[] } | undefined;
      view.docs.forEach((terms, i) => {
        const [sentence, start, end] = view.fullPointer[i]!;
        // compromise splits "John Smith's" into "John" + "Smith's": rejoin touching matches.
        if (prev && prev.occurrence.sentence === sentence && prev.occurrence.end === start) {
          prev.terms = [...prev.terms, ...terms];
          prev.occurrence.name = surface(prev.terms);
          prev.occurrence.end = end;
          return;
        }
        // A name starts at its first capitalised word: "my sister Anna" -> "Anna"; a match
        // with none ("kids & work") is a tagging slip.
        const lead = terms.findIndex((t) => /^\p{Lu}/u.test(t.text));
        if (lead < 0) return;
        const kept = terms.slice(lead);
        const name = surface(kept);
        if (name === "") return;
        prev = { occurrence: { type, name, sentence, start: start + lead, end }, terms: kept };
        occurrences.push(prev.occurrence);
      });
    }

    // One walk over the tagged sentences for dates, "I", topics and verbs: cheaper than
    // compromise's noun and verb chunkers, whose phrases would be cut to these runs anyway.
    const now = Date.parse(createdAt);
    const topics: Occurrence[] = [];
    (doc as unknown as View).docs.forEach((terms, sentence) => {
      occurrences.push(...datesOf(terms, sentence, now));
      topics.push(...topicsOf(terms, sentence));
      verbs.push(...verbsOf(terms, sentence));
      // "I went to Sweden": the speaker is the subject.
      if (speaker) {
        terms.forEach((t, start) => {
          if (t.tags.has("Pronoun") && FIRST_PERSON.test(t.normal)) occurrences.push({ type: "person", name: speaker, sentence, start, end: start + 1 });
        });
      }
    });
    // Salience: multi-word topics first, then first mentioned; at most MAX_TOPICS distinct.
    const size = (t: Occurrence) => t.name.split(" ").length;
    const kept = new Set<string>();
    for (const t of [...topics].sort((a, b) => size(b) - size(a) || a.sentence - b.sentence || a.start - b.start)) {
      if (kept.size >= MAX_TOPICS) break;
      kept.add(t.name);
    }
    occurrences.push(...topics.filter((t) => kept.has(t.name)));
  }

  const keyed = occurrences.map((o) => ({ ...o, key: add(o.type, o.name) }));

  const relations = new Map<string, ExtractedRelation>();
  const relate = (fromKey: string, toKey: string, type: string) => {
    const from = entities.get(fromKey)!.name;
    const to = entities.get(toKey)!.name;
    if (fromKey === toKey) return;
    // co_mentioned has no direction: one relation per unordered pair.
    const [x, y] = type === "co_mentioned" && to.toLowerCase() < from.toLowerCase() ? [to, from] : [from, to];
    const key = `${x.toLowerCase()}|${y.toLowerCase()}|${type}`;
    if (!relations.has(key)) relations.set(key, { from, to, type });
  };
  if (speakerKey) for (const key of entities.keys()) relate(speakerKey, key, "mentioned");

  const bySentence = new Map<number, typeof keyed>();
  for (const o of keyed) {
    const list = bySentence.get(o.sentence);
    if (list) list.push(o);
    else bySentence.set(o.sentence, [o]);
  }
  for (const [sentence, list] of bySentence) {
    const ordered = list.sort((a, b) => a.start - b.start).slice(0, MAX_PER_SENTENCE);
    for (let i = 0; i < ordered.length; i++) {
      for (let j = i + 1; j < ordered.length; j++) {
        const a = ordered[i]!;
        const b = ordered[j]!;
        // The first verb between the two mentions types the link: "Caroline went to Sweden".
        const verb = verbs.find((v) => v.sentence === sentence && v.start >= a.end && v.start < b.start);
        relate(a.key, b.key, verb?.lemma ?? "co_mentioned");
      }
    }
  }

  return { entities: [...entities.values()], relations: [...relations.values()] };
}

/**
 * Extractions of messages, synchronously, in order: what the thread of extractor-thread.ts
 * runs, and what extractor-host.ts runs in the caller's thread when no thread can.
 */
export function extractAll(messages: { content: string; name: string | null; createdAt: string }[]): Extraction[] {
  return messages.map((m) => ({ ...extractOne(m.content, m.name, m.createdAt), statements: findCommitments(m.content) }));
}
