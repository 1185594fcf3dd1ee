import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../test/fixtures/random.ts";
import { dateFitter, queryDates, utcYear, type DateRange } from "./temporal.ts";

const day = (s: string) => Date.parse(`${s}T00:00:00Z`);
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);

describe("queryDates", () => {
  it("reads a day, a month or a year the query names, most specific first, and removes the phrase", () => {
    const cases: [string, string, string, string][] = [
      ["What did Maria share on 16 June, 2023?", "2023-06-16", "2023-06-17", "What did Maria share on ?"],
      ["What did she show on October 13, 2023?", "2023-10-13", "2023-10-14", "What did she show on ?"],
      ["the 1st of March 2022 trip", "2022-03-01", "2022-03-02", "the trip"],
      ["What did John host in May 2023 for veterans?", "2023-05-01", "2023-06-01", "What did John host in for veterans?"],
      ["Trips taken in Sept. 2021", "2021-09-01", "2021-10-01", "Trips taken in"],
      ["How often at the beach in 2023?", "2023-01-01", "2024-01-01", "How often at the beach ?"],
    ];
    for (const [query, start, end, rest] of cases) {
      const { ranges, rest: left } = queryDates(query);
      expect(ranges.map((r) => [iso(r.start), iso(r.end)]), query).toEqual([[start, end]]);
      expect(left).toBe(rest);
    }
  });

  it("reads a bare month after a preposition as that month of any year", () => {
    const { ranges } = queryDates("When did Melanie go camping in June?");
    expect(ranges).toHaveLength(1);
    expect(ranges[0]!.anyYear).toBe(true);
  });

  it("leaves the modal verb 'may', numbers and question words alone", () => {
    for (const q of ["What may happen in may?", "Who has 3 cats?", "When did Jon open the studio?", "a march for peace"]) {
      expect(queryDates(q).ranges, q).toEqual([]);
    }
  });
});

describe("dateFitter", () => {
  const june16 = queryDates("on 16 June, 2023").ranges;

  it("is 1 inside the range, fades over the slack after it, and is 0 before it", () => {
    const week = 7 * 86_400_000;
    expect(dateFitter(june16, week)(day("2023-06-16") + 3_600_000)).toBe(1);
    expect(dateFitter(june16, week)(day("2023-06-17") + week / 2)).toBeCloseTo(0.5);
    expect(dateFitter(june16, week)(day("2023-06-30"))).toBe(0);
    expect(dateFitter(june16, week)(day("2023-06-15"))).toBe(0);
    expect(dateFitter(june16, 0)(day("2023-06-18"))).toBe(0);
  });

  it("matches a month of any year against the message's year and the year before", () => {
    const june = queryDates("in June").ranges;
    expect(dateFitter(june, 0)(day("2021-06-20"))).toBe(1);
    expect(dateFitter(june, 0)(day("2024-06-01"))).toBe(1);
    expect(dateFitter(june, 0)(day("2024-05-31"))).toBe(0);
    const december = queryDates("in December").ranges;
    expect(dateFitter(december, 7 * 86_400_000)(day("2024-01-03"))).toBeGreaterThan(0);
  });

  it("gives, made once for many times, what a test made with Dates per time gives", () => {
    // The reference: the month-only range's month and the time's year read from Dates.
    const reference = (t: number, ranges: readonly DateRange[], slack: number): number => {
      const fit = (start: number, end: number) => (t < start ? 0 : t < end ? 1 : slack <= 0 || t >= end + slack ? 0 : 1 - (t - end) / slack);
      let best = 0;
      for (const r of ranges) {
        if (r.anyYear) {
          const month = new Date(r.start).getUTCMonth();
          const y = new Date(t).getUTCFullYear();
          for (const year of [y, y - 1]) best = Math.max(best, fit(Date.UTC(year, month, 1), Date.UTC(year, month + 1, 1)));
        } else best = Math.max(best, fit(r.start, r.end));
      }
      return best;
    };
    const r = mulberry32(3);
    const queries = ["in December", "in March or in February", "on 16 June, 2023", "in 2022", "in January, and on 29 February, 2024", "during Aug"];
    let faded = 0;
    for (const q of queries) {
      const { ranges } = queryDates(q);
      expect(ranges.length).toBeGreaterThan(0);
      for (const slack of [0, 7 * 86_400_000, 45 * 86_400_000]) {
        const fits = dateFitter(ranges, slack);
        for (let i = 0; i < 3000; i++) {
          const t = Date.UTC(2019, 0, 1) + Math.floor(r() * 6 * 365 * 86_400_000);
          const want = reference(t, ranges, slack);
          expect(fits(t)).toBe(want);
          if (want > 0 && want < 1) faded++;
        }
      }
    }
    expect(faded).toBeGreaterThan(100);
    // A time no Date holds fits as the reference says (NaN), through the month-only path too.
    const { ranges } = queryDates("in March, and on 16 June, 2023");
    for (const slack of [0, 7 * 86_400_000]) expect(dateFitter(ranges, slack)(NaN)).toBe(reference(NaN, ranges, slack));
    expect(dateFitter(queryDates("in March").ranges, 86_400_000)(NaN)).toBe(reference(NaN, queryDates("in March").ranges, 86_400_000));
  });
});

describe("utcYear", () => {
  it("answers as a Date does: year ends, leap days, before 1970 and before year 0, and the range's ends", () => {
    const r = mulberry32(4);
    const times = [0, -1, 8.64e15, -8.64e15, Date.UTC(2024, 1, 29, 12), Date.UTC(2023, 11, 31, 23, 59, 59, 999), Date.UTC(2024, 0, 1), Date.UTC(1969, 11, 31, 23, 59, 59, 999), Date.UTC(1600, 1, 29), Date.UTC(1900, 2, 1) - 1, Date.UTC(-1, 11, 31), Date.UTC(0, 0, 1) - 1];
    for (let i = 0; i < 20_000; i++) times.push(Math.floor((r() * 2 - 1) * 8.64e15), Date.UTC(1900 + Math.floor(r() * 250), 0, 1) + Math.floor(r() * 3) - 1);
    for (const t of times) expect(utcYear(t)).toBe(new Date(t).getUTCFullYear());
    expect(utcYear(8.64e15 + 1)).toBeNaN();
    expect(utcYear(NaN)).toBeNaN();
  });
});
