import { describe, expect, it } from "vitest";
import type { Extraction } from "../../core/types.ts";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { resolveRelativeDate } from "./extractor.ts";
import { createLocalExtractor } from "./extractor-host.ts";

// A Monday.
const NOW = "2023-05-08T13:56:00Z";
const extractor = createLocalExtractor();

async function extract(content: string, name: string | null = null, createdAt = NOW): Promise<Extraction> {
  const [extraction] = await extractor.extract([{ content, name, createdAt }]);
  return extraction!;
}

const named = (e: Extraction, type: string) => e.entities.filter((x) => x.type === type).map((x) => x.name);
const has = (e: Extraction, from: string, type: string, to: string) =>
  e.relations.some((r) => r.from === from && r.type === type && r.to === to);

function expectWellFormed(e: Extraction): void {
  const keys = e.entities.map((x) => `${x.type}|${x.name.toLowerCase()}`);
  expect(new Set(keys).size).toBe(keys.length);
  const names = new Set(e.entities.map((x) => x.name));
  for (const r of e.relations) {
    expect(names.has(r.from)).toBe(true);
    expect(names.has(r.to)).toBe(true);
    expect(r.from).not.toBe(r.to);
    expect(r.type).toBe(r.type.toLowerCase());
  }
  const relationKeys = e.relations.map((r) => `${r.from}|${r.type}|${r.to}`);
  expect(new Set(relationKeys).size).toBe(relationKeys.length);
}

describe("local extractor", () => {
  it("has a version", () => {
    expect(extractor.version).toBe("local-nlp-v2");
  });

  it("finds people, places and relative dates, linked through the verb", async () => {
    const e = await extract("Caroline went to Sweden with John Smith last week!", "Melanie");
    expectWellFormed(e);
    expect(named(e, "person").sort()).toEqual(["Caroline", "John Smith", "Melanie"]);
    expect(named(e, "place")).toEqual(["Sweden"]);
    expect(named(e, "date")).toEqual(["week of 2023-05-01"]);
    expect(has(e, "Caroline", "go", "Sweden")).toBe(true);
    for (const other of ["Caroline", "John Smith", "Sweden", "week of 2023-05-01"]) {
      expect(has(e, "Melanie", "mentioned", other)).toBe(true);
    }
  });

  it("reads 'I' as the speaker and resolves 'yesterday' against the message time", async () => {
    const e = await extract("I went to a LGBTQ support group yesterday and it was so powerful.", "Caroline");
    expectWellFormed(e);
    expect(named(e, "person")).toEqual(["Caroline"]);
    expect(named(e, "topic")).toEqual(["lgbtq support group"]);
    expect(named(e, "date")).toEqual(["2023-05-07"]);
    expect(has(e, "Caroline", "go", "lgbtq support group")).toBe(true);
  });

  it("finds organisations and absolute dates", async () => {
    const e = await extract("I'm starting a new job at Google on March 3rd, 2024!", "Jon");
    expectWellFormed(e);
    expect(named(e, "organization")).toEqual(["Google"]);
    expect(named(e, "date")).toEqual(["March 3rd, 2024"]);
    expect(named(e, "topic")).toEqual(["job"]);
    expect(has(e, "Jon", "start", "job")).toBe(true);
  });

  it("normalises topics to lower-case singular nouns without pronouns", async () => {
    const e = await extract("My kids love pottery classes and we're camping next month.", "Melanie");
    expectWellFormed(e);
    expect(named(e, "topic").sort()).toEqual(["kid", "pottery class"]);
    expect(named(e, "date")).toEqual(["2023-06"]);
    expect(has(e, "kid", "love", "pottery class")).toBe(true);
  });

  it("finds years, weekdays and month dates, and adds no speaker links without a speaker", async () => {
    const e = await extract("Melanie painted a sunrise in 2022 and we met on Friday, 5 May 2023.");
    expectWellFormed(e);
    expect(named(e, "date").sort()).toEqual(["2022", "5 May 2023", "Friday"]);
    expect(named(e, "person")).toEqual(["Melanie"]);
    expect(has(e, "Melanie", "paint", "sunrise")).toBe(true);
    expect(e.relations.some((r) => r.type === "mentioned")).toBe(false);
  });

  it("finds day words and abbreviated weekdays, resolved", async () => {
    const e = await extract("Last night was amazing! Last Fri I took my kids to the museum, and tonight we cook.", "Melanie");
    expectWellFormed(e);
    expect(named(e, "date").sort()).toEqual(["2023-05-05", "2023-05-07", "2023-05-08"]);
    expect(named(e, "topic")).not.toContain("night");
  });

  it("dedupes entities and relations within a message", async () => {
    const e = await extract("Paris is lovely. I love Paris! Paris, Paris, PARIS.", "Caroline");
    expectWellFormed(e);
    expect(e.entities.filter((x) => x.name.toLowerCase() === "paris")).toHaveLength(1);
    expect(named(e, "person")).toEqual(["Caroline"]);
    expect(has(e, "Caroline", "love", "Paris")).toBe(true);
  });

  it("keeps names clean of kinship words and possessives", async () => {
    const e = await extract("My sister Anna met John Smith's wife at the lake.", "Tim");
    expectWellFormed(e);
    expect(named(e, "person").sort()).toEqual(["Anna", "John Smith", "Tim"]);
  });

  it("keeps at most five topics, multi-word ones first", async () => {
    const e = await extract(
      "I bought a guitar, a bike, a camera, a tent, a kayak, some books, a lamp and a new phone for the trip to the beach house.",
      "Tim",
    );
    expectWellFormed(e);
    const topics = named(e, "topic");
    expect(topics.length).toBeLessThanOrEqual(5);
    expect(topics).toContain("beach house");
    expect(has(e, "Tim", "buy", "guitar")).toBe(true);
  });

  it("marks negated verbs", async () => {
    const e = await extract("I didn't enjoy the concert in Boston.", "Anna");
    expectWellFormed(e);
    expect(named(e, "place")).toEqual(["Boston"]);
    expect(has(e, "Anna", "not enjoy", "concert")).toBe(true);
  });

  it("links entities of one sentence without a verb between them as co_mentioned", async () => {
    const e = await extract("Sweden and Norway were beautiful.", "Caroline");
    expectWellFormed(e);
    expect(e.relations.some((r) => r.type === "co_mentioned" && [r.from, r.to].sort().join() === "Norway,Sweden")).toBe(true);
  });

  it("reports the decisions and tasks a message states", async () => {
    const e = await extract("We decided to rent the cabin. I need to pay the deposit tomorrow.", "Ann");
    expect(e.statements).toEqual([
      { kind: "decision", text: "We decided to rent the cabin." },
      { kind: "task", text: "I need to pay the deposit tomorrow." },
    ]);
  });

  it("gives only the speaker for empty text, and nothing without a speaker", async () => {
    expect(await extract("", "Caroline")).toEqual({ entities: [{ name: "Caroline", type: "person" }], relations: [], statements: [] });
    expect(await extract("   \n", "Caroline")).toEqual({ entities: [{ name: "Caroline", type: "person" }], relations: [], statements: [] });
    expect(await extract("")).toEqual({ entities: [], relations: [], statements: [] });
  });

  it("keeps a relative date as written when the message time is unusable", async () => {
    const e = await extract("We met yesterday in Rome.", null, "not a date");
    expect(named(e, "date")).toEqual(["yesterday"]);
    expect(named(e, "place")).toEqual(["Rome"]);
  });

  it("answers one extraction per message, in order", async () => {
    const speakers = ["Ann", "Bob", "Cleo", "Dan"];
    const messages = Array.from({ length: 40 }, (_, i) => ({
      content: `I visited Berlin with my friend number ${i}.`,
      name: speakers[i % 4]!,
      createdAt: NOW,
    }));
    const out = await extractor.extract(messages);
    expect(out).toHaveLength(40);
    out.forEach((e, i) => {
      expect(e.entities[0]).toEqual({ name: speakers[i % 4], type: "person" });
      expect(named(e, "place")).toEqual(["Berlin"]);
    });
  });
});

describe("resolveRelativeDate", () => {
  const now = Date.parse(NOW); // Monday 2023-05-08

  it("resolves days", () => {
    expect(resolveRelativeDate("yesterday", now)).toBe("2023-05-07");
    expect(resolveRelativeDate("Today", now)).toBe("2023-05-08");
    expect(resolveRelativeDate("tomorrow", now)).toBe("2023-05-09");
    expect(resolveRelativeDate("two days ago", now)).toBe("2023-05-06");
    expect(resolveRelativeDate("3 days ago", now)).toBe("2023-05-05");
    expect(resolveRelativeDate("last night", now)).toBe("2023-05-07");
    expect(resolveRelativeDate("tomorrow morning", now)).toBe("2023-05-09");
    expect(resolveRelativeDate("this evening", now)).toBe("2023-05-08");
  });

  it("resolves weekdays relative to the message's own weekday", () => {
    expect(resolveRelativeDate("last Saturday", now)).toBe("2023-05-06");
    expect(resolveRelativeDate("last Monday", now)).toBe("2023-05-01");
    expect(resolveRelativeDate("next Monday", now)).toBe("2023-05-15");
    expect(resolveRelativeDate("this Friday", now)).toBe("2023-05-12");
    expect(resolveRelativeDate("last Tues", now)).toBe("2023-05-02");
  });

  it("resolves weeks, weekends, months, seasons and years", () => {
    expect(resolveRelativeDate("last week", now)).toBe("week of 2023-05-01");
    expect(resolveRelativeDate("this week", now)).toBe("week of 2023-05-08");
    expect(resolveRelativeDate("a week ago", now)).toBe("week of 2023-05-01");
    expect(resolveRelativeDate("last weekend", now)).toBe("weekend of 2023-05-06");
    expect(resolveRelativeDate("next month", now)).toBe("2023-06");
    expect(resolveRelativeDate("next month", Date.parse("2023-12-20T00:00:00Z"))).toBe("2024-01");
    expect(resolveRelativeDate("last summer", now)).toBe("summer 2022");
    expect(resolveRelativeDate("last summer", Date.parse("2023-10-01T00:00:00Z"))).toBe("summer 2023");
    expect(resolveRelativeDate("last year", now)).toBe("2022");
    expect(resolveRelativeDate("three years ago", now)).toBe("2020");
  });

  it("leaves absolute or vague phrases alone", () => {
    expect(resolveRelativeDate("5 May 2023", now)).toBeNull();
    expect(resolveRelativeDate("Friday", now)).toBeNull();
    expect(resolveRelativeDate("few days ago", now)).toBeNull();
  });
});

describe("extraction on a worker thread", () => {
  it("gives the same extractions as in-thread", async () => {
    const messages = [
      { content: "My sister Maria moved to Lisbon last week and started at Google.", name: "Ann", createdAt: "2026-05-10T10:00:00.000Z" },
      { content: "We decided to use Postgres. TODO: migrate the billing cron by Friday.", name: null, createdAt: "2026-05-11T10:00:00.000Z" },
      { content: "", name: "Bob", createdAt: "2026-05-12T10:00:00.000Z" },
    ];
    const threaded = createLocalExtractor({ thread: true });
    expect(threaded.detail).toBe("in-process, on a worker thread");
    expect(createLocalExtractor().detail).toBe("in-process, on the caller's thread");
    expect(await threaded.extract(messages)).toEqual(await createLocalExtractor().extract(messages));
    // A second call reuses the thread.
    expect(await threaded.extract(messages.slice(0, 1))).toEqual(await createLocalExtractor().extract(messages.slice(0, 1)));
  });

  it("never loads compromise on the calling thread while the worker thread parses", () => {
    // The server's extractor: compromise's init (a few hundred ms to a second) and lexicon,
    // loaded on the API's thread by the first extraction after a start, stalled every request
    // in flight. A process of its own, whose module graph no other test has filled.
    const run = (...args: string[]) => {
      const r = spawnSync(process.execPath, [fileURLToPath(new URL("../../../test/fixtures/extractor-main-thread.ts", import.meta.url)), ...args], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      return JSON.parse(r.stdout) as { entities: string[]; compromise: boolean };
    };
    const threaded = run();
    expect(threaded.entities).toEqual(expect.arrayContaining(["Maria", "Lisbon"]));
    expect(threaded.compromise).toBe(false);
    // The check sees compromise when this thread does parse.
    const inThread = run("in-thread");
    expect(inThread.entities).toEqual(threaded.entities);
    expect(inThread.compromise).toBe(true);
  });

  it("extracts in-thread when the thread cannot start (a bundle without its script)", async () => {
    const messages = [{ content: "Maria moved to Lisbon in May.", name: "Ann", createdAt: "2026-05-02T10:00:00Z" }];
    const missing = new URL("./no-such-extractor-thread.ts", import.meta.url);
    const fallback = createLocalExtractor({ thread: true, threadScript: missing });
    const expected = await createLocalExtractor().extract(messages);
    expect(await fallback.extract(messages)).toEqual(expected);
    // And it stays in-thread rather than failing every later call, and says so.
    expect(await fallback.extract(messages)).toEqual(expected);
    expect(fallback.detail).toBe("in-process, on the caller's thread");
  });
});
