// Dates a query names ("on 16 June, 2023", "in May 2023", "in 2022", "in August"), as time
// ranges a message's createdAt can be tested against. A question that names a date is asking
// about what was said around then: the search service favours turns written in the range
// (or shortly after it: people report an event days after it happened), and the date's
// words leave the keyword query, where "2023" or "june" would only match turns that happen
// to contain the number or the month.
//
// Deliberately narrow: only explicit calendar dates. "Last week" in a question has no
// anchor (the question's own time is unknown), and "may" alone is a modal verb unless it is
// capitalised and stands with a day or year, or after "in".

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];
// Any word starting like a month; monthIndex() then accepts only a month or its abbreviation.
const MONTH = "((?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\\.?";
const DAY = "(\\d{1,2})(?:st|nd|rd|th)?";
const YEAR = "((?:19|20)\\d{2})";

export interface DateRange {
  /** Inclusive start, epoch ms (UTC). */
  start: number;
  /** Exclusive end, epoch ms (UTC). */
  end: number;
  /** What the range was read from, e.g. "16 June, 2023". */
  text: string;
  /** Month-only ranges ("in August") carry no year: they match that month of any year. */
  anyYear?: boolean;
}

export interface QueryDates {
  ranges: DateRange[];
  /** The query with the date phrases removed. */
  rest: string;
}

function monthIndex(word: string): number {
  const w = word.toLowerCase();
  return MONTHS.findIndex((m) => m === w || (w.length >= 3 && m.startsWith(w)));
}

const dayRange = (y: number, m: number, d: number, text: string): DateRange | null =>
  m < 0 || d < 1 || d > 31 ? null : { start: Date.UTC(y, m, d), end: Date.UTC(y, m, d + 1), text };
const monthRange = (y: number, m: number, text: string): DateRange | null => (m < 0 ? null : { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1), text });

// Most specific first, so "16 June, 2023" is one day, not a month and a year.
const PATTERNS: { re: RegExp; read: (m: RegExpExecArray) => DateRange | null }[] = [
  {
    re: new RegExp(`\\b${DAY}\\s+(?:of\\s+)?${MONTH},?\\s+${YEAR}\\b`, "gi"),
    read: (m) => dayRange(Number(m[3]), monthIndex(m[2]!), Number(m[1]), m[0]),
  },
  {
    re: new RegExp(`\\b${MONTH}\\s+${DAY},?\\s+${YEAR}\\b`, "gi"),
    read: (m) => dayRange(Number(m[3]), monthIndex(m[1]!), Number(m[2]), m[0]),
  },
  {
    re: new RegExp(`\\b${MONTH},?\\s+(?:of\\s+)?${YEAR}\\b`, "gi"),
    read: (m) => monthRange(Number(m[2]), monthIndex(m[1]!), m[0]),
  },
  {
    // "in August", "during Nov." — a bare month needs a preposition, and May a capital.
    re: new RegExp(`\\b(?:in|during|since|until|before|after|of|early|late|mid)\\s+${MONTH}\\b(?!\\s*\\d)`, "gi"),
    read: (m) => {
      const word = m[1]!;
      if (word.toLowerCase() === "may" && word !== "May") return null;
      const i = monthIndex(word);
      if (i < 0) return null;
      return { start: Date.UTC(2000, i, 1), end: Date.UTC(2000, i + 1, 1), text: m[0], anyYear: true };
    },
  },
  {
    re: new RegExp(`\\b(?:in|during|since|until|before|after|of)\\s+${YEAR}\\b`, "gi"),
    read: (m) => ({ start: Date.UTC(Number(m[1]), 0, 1), end: Date.UTC(Number(m[1]) + 1, 0, 1), text: m[0] }),
  },
];

/** The calendar dates a query names, and the query without them. */
export function queryDates(query: string): QueryDates {
  let rest = query;
  const ranges: DateRange[] = [];
  for (const { re, read } of PATTERNS) {
    rest = rest.replace(re, (...args) => {
      const m = args.slice(0, -2) as unknown as RegExpExecArray;
      const r = read(m);
      if (!r || !Number.isFinite(r.start) || r.end <= r.start) return m[0];
      ranges.push(r);
      return " ";
    });
  }
  return { ranges, rest: rest.replace(/\s+/g, " ").trim() };
}

/**
 * How well a message time fits the ranges, as a test made once for them: 1 inside one, falling
 * linearly to 0 at `slackMs` after its end (an event is often told of days later), 0 before it
 * or farther after. Made once, for the many times a search tests (a keyword search filtered to
 * a query's dates tests every turn it scores). A month-only range ("in March") fits that month
 * of the time's year or of the year before (a January turn telling of December). The time's
 * year and the months' bounds are read from tables of the years 1900–2199, not from Dates:
 * made per time, as an earlier dateFit did, a month-only range cost about 360 ns a time (three
 * Dates and an array) against 20–40 for a dated one.
 */
export function dateFitter(ranges: readonly DateRange[], slackMs: number): (t: number) => number {
  const fixed = ranges.filter((r) => !r.anyYear);
  const months = ranges.filter((r) => r.anyYear).map((r) => new Date(r.start).getUTCMonth());
  if (months.length === 0 && fixed.length === 1) {
    const { start, end } = fixed[0]!;
    return (t) => fitOne(t, start, end, slackMs);
  }
  // The max over the ranges, in any order.
  return (t) => {
    let best = 0;
    for (const r of fixed) {
      best = Math.max(best, fitOne(t, r.start, r.end, slackMs));
      if (best === 1) return 1;
    }
    if (months.length === 0) return best;
    const y = utcYear(t);
    for (const m of months) {
      best = Math.max(best, fitOne(t, monthStart(y, m), monthStart(y, m + 1), slackMs), fitOne(t, monthStart(y - 1, m), monthStart(y - 1, m + 1), slackMs));
      if (best === 1) return 1;
    }
    return best;
  };
}

const TABLE_FIRST_YEAR = 1900;
const TABLE_YEARS = 300;
/** Epoch ms of 1 January of each table year, and one past the last. */
const yearStarts = Float64Array.from({ length: TABLE_YEARS + 1 }, (_, i) => Date.UTC(TABLE_FIRST_YEAR + i, 0, 1));
/** Epoch ms of the 1st of each month of each table year (month 12: the next 1 January), filled as read. */
const monthStarts = new Float64Array(TABLE_YEARS * 13).fill(NaN);
const AVERAGE_YEAR_MS = 365.2425 * 86_400_000;

/** The UTC calendar year of an epoch-ms time, as `new Date(t).getUTCFullYear()` answers (NaN for a time no Date holds). */
export function utcYear(t: number): number {
  if (!(t >= yearStarts[0]! && t < yearStarts[TABLE_YEARS]!)) return new Date(t).getUTCFullYear();
  let i = Math.min(TABLE_YEARS - 1, Math.floor((t - yearStarts[0]!) / AVERAGE_YEAR_MS));
  while (t < yearStarts[i]!) i--;
  while (t >= yearStarts[i + 1]!) i++;
  return TABLE_FIRST_YEAR + i;
}

/** Date.UTC(year, month, 1) for month 0–12, from the table where the year is in it. */
function monthStart(year: number, month: number): number {
  const i = year - TABLE_FIRST_YEAR;
  // Outside the table, or no year at all (a time no Date holds): as Date.UTC answers.
  if (!(i >= 0 && i < TABLE_YEARS)) return Date.UTC(year, month, 1);
  const at = i * 13 + month;
  const v = monthStarts[at]!;
  return v === v ? v : (monthStarts[at] = Date.UTC(year, month, 1));
}

function fitOne(t: number, start: number, end: number, slackMs: number): number {
  if (t < start) return 0;
  if (t < end) return 1;
  if (slackMs <= 0 || t >= end + slackMs) return 0;
  return 1 - (t - end) / slackMs;
}
