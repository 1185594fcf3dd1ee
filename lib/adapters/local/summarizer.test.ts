import { describe, expect, it } from "vitest";
import { generateMessages, rehydrationSession } from "../../../bench/peers/data.ts";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import { createLocalSummarizer, tokensAtLeast } from "./summarizer.ts";
import { createLocalTokenizer } from "./tokenizer.ts";

const tokenizer = createLocalTokenizer();
const summarizer = createLocalSummarizer({ tokenizer });

type M = { seq: number; role: "user" | "assistant"; name: string | null; content: string; createdAt: string };
const m = (seq: number, name: string, content: string, day = "2026-03-04"): M => ({
  seq,
  role: "user",
  name,
  content,
  createdAt: `${day}T10:00:00.000Z`,
});

const FILLER = ["ok", "thanks!", "sounds good", "lol yeah", "cool cool", "hmm okay", "nice", "sure thing"];

function longSession(): M[] {
  const out: M[] = [];
  let seq = 0;
  for (let i = 0; i < 30; i++) {
    out.push(m(++seq, i % 2 ? "Bob" : "Alice", FILLER[i % FILLER.length]!));
    out.push(m(++seq, "Bob", `The database migration for the billing service is on step ${i} of the rollout plan.`));
  }
  out.splice(20, 0, m(++seq, "Alice", "We decided to move the billing launch to May 12 with Postgres as the only database."));
  return out;
}

describe("local summarizer", () => {
  it("stays under the token cap", async () => {
    for (const cap of [30, 60, 150]) {
      const text = await summarizer.summarize({ previous: null, messages: longSession(), maxTokens: cap });
      expect(text.length).toBeGreaterThan(0);
      expect(tokenizer.count(text)).toBeLessThanOrEqual(cap);
    }
    expect(await summarizer.summarize({ previous: null, messages: longSession(), maxTokens: 0 })).toBe("");
  });

  it("keeps a decision over filler, with speaker and date, and drops the filler", async () => {
    const text = await summarizer.summarize({ previous: null, messages: longSession(), maxTokens: 60 });
    expect(text).toContain("[2026-03-04] Alice: We decided to move the billing launch to May 12");
    for (const f of FILLER) expect(text.split("\n").some((l) => l.endsWith(`: ${f}`))).toBe(false);
  });

  it("prints the lines in chronological order", async () => {
    const messages = [
      m(1, "Alice", "Caroline flew to Lisbon for the robotics conference in June.", "2026-01-01"),
      m(2, "Bob", "ok", "2026-01-02"),
      m(3, "Bob", "Melanie painted a lake sunrise and sold it at the Portland market.", "2026-01-03"),
      m(4, "Alice", "We agreed that Caroline presents the robotics demo in Lisbon.", "2026-01-04"),
    ];
    const text = await summarizer.summarize({ previous: null, messages, maxTokens: 200 });
    const lines = text.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.slice(1, 11))).toEqual(["2026-01-01", "2026-01-03", "2026-01-04"]);
  });

  it("rolls: merges the previous summary, keeps it first and old decisions under the cap", async () => {
    const first = await summarizer.summarize({ previous: null, messages: longSession(), maxTokens: 80 });
    expect(first).toContain("We decided to move the billing launch");
    const later = [
      m(100, "Carol", "Carol booked the Berlin offsite for the billing team on June 3.", "2026-04-01"),
      m(101, "Bob", "thanks!", "2026-04-01"),
      m(102, "Carol", "I need to send the offsite agenda to the billing team by Friday.", "2026-04-02"),
    ];
    const second = await summarizer.summarize({ previous: first, messages: later, maxTokens: 80 });
    expect(tokenizer.count(second)).toBeLessThanOrEqual(80);
    expect(second).toContain("We decided to move the billing launch");
    expect(second).toContain("[2026-04-02] Carol: I need to send the offsite agenda");
    const lines = second.split("\n");
    const decision = lines.findIndex((l) => l.includes("We decided"));
    const task = lines.findIndex((l) => l.includes("offsite agenda"));
    expect(decision).toBeLessThan(task);
    // Deterministic: the same input gives the same summary.
    expect(await summarizer.summarize({ previous: first, messages: later, maxTokens: 80 })).toBe(second);
  });

  it("counts the tokens of lines it may keep, never of filler", async () => {
    const counted: string[] = [];
    const spy = createLocalSummarizer({ tokenizer: { name: tokenizer.name, count: (t) => (counted.push(t), tokenizer.count(t)) } });
    const text = await spy.summarize({ previous: null, messages: longSession(), maxTokens: 60 });
    expect(text).toBe(await summarizer.summarize({ previous: null, messages: longSession(), maxTokens: 60 }));
    expect(counted.length).toBeGreaterThan(0);
    for (const f of FILLER) expect(counted.some((l) => l.endsWith(`: ${f}`))).toBe(false);
  });

  it("never counts a line with more parts between spaces than the cap has room for", async () => {
    const long = (i: number) => `The billing launch plan step ${i} ${Array.from({ length: 40 }, (_, j) => `billing${(i + j) % 7}`).join(" ")}.`;
    const messages = [m(1, "Alice", "We decided to move the billing launch to May 12."), ...Array.from({ length: 20 }, (_, i) => m(i + 2, "Bob", long(i)))];
    const counted: string[] = [];
    const spy = createLocalSummarizer({ tokenizer: { name: tokenizer.name, count: (t) => (counted.push(t), tokenizer.count(t)) } });
    const text = await spy.summarize({ previous: null, messages, maxTokens: 30 });
    expect(text).toBe("[2026-03-04] Alice: We decided to move the billing launch to May 12.");
    expect(text).toBe(await summarizer.summarize({ previous: null, messages, maxTokens: 30 }));
    // Each long line is 47 parts and more: it could not fit 30 tokens, and was not counted.
    expect(counted.filter((l) => l.includes("billing0"))).toEqual([]);
  });

  it("tokensAtLeast is never above a line's count", () => {
    const fragments = [
      " ", "  ", "\t", "\n", "a", "Ab", "word", "x's", "1", "12", "1234", "3.14", "-", "[", "]", ":", "é", "日本語", "🙂", "<|endoftext|>",
      "\u00a0", "…", "```ts", "=>", "{}", "a.b", "_", "$ ", "//", "/", "[2026-01-05] ", "[1999-12-31]", "Ann: ", "tool: ",
    ];
    const r = mulberry32(12);
    const pick = () => fragments[Math.floor(r() * fragments.length)]!;
    const lines: string[] = [];
    for (let i = 0; i < 5_000; i++) lines.push(Array.from({ length: 1 + Math.floor(r() * 12) }, pick).join(""));
    for (const t of [...rehydrationSession(), ...generateMessages({ seed: 3, count: 300, profile: "coding", prefix: "k" })]) {
      for (const s of t.content.split("\n")) lines.push(`[${t.createdAt.slice(0, 10)}] ${t.name ?? t.role}: ${s.replace(/\s+/g, " ").trim()}`);
    }
    for (const line of lines) {
      const bound = tokensAtLeast(line);
      const n = tokenizer.count(line);
      if (bound > n) expect({ line, bound }).toEqual({ line, bound: n });
    }
    // The day alone is eight tokens, and each run of non-spaces after it one at least.
    expect(tokensAtLeast("[2026-03-04] Ann: we ship")).toBe(11);
    expect(tokenizer.count("[2026-03-04] Ann: we ship")).toBeGreaterThanOrEqual(11);
  });

  it("makes a long session's summary in slices, giving the event loop turns, with the same result", async () => {
    // 300 turns of 12 sentences each: tens of milliseconds of work at the least.
    const words = ["billing", "rollout", "Postgres", "latency", "schema", "migration", "Lisbon", "robotics", "invoice", "cache", "deploy", "review"];
    const messages = Array.from({ length: 300 }, (_, i) =>
      m(i + 1, i % 2 ? "Bob" : "Alice", Array.from({ length: 12 }, (_, j) => `The ${words[(i + j) % 12]} step ${i * 12 + j} touches ${words[(i * 7 + j) % 12]} and ${words[(j * 5 + i) % 12]}.`).join(" ")),
    );
    let slices = 0;
    let timerFired = false;
    const sliced = createLocalSummarizer({
      tokenizer,
      scheduleSlice: (run) => {
        slices++;
        setImmediate(run);
      },
    });
    const timer = setTimeout(() => (timerFired = true), 0);
    const text = await sliced.summarize({ previous: null, messages, maxTokens: 250 });
    clearTimeout(timer);
    expect(slices).toBeGreaterThan(0);
    // A timer due before the summary ended ran before it ended: the thread was given back.
    expect(timerFired).toBe(true);
    expect(text).toBe(await summarizer.summarize({ previous: null, messages, maxTokens: 250 }));
    expect(tokenizer.count(text)).toBeLessThanOrEqual(250);
  });

  it("makes nothing of a session of filler", async () => {
    const text = await summarizer.summarize({ previous: null, messages: FILLER.map((f, i) => m(i + 1, "Bob", f)), maxTokens: 100 });
    expect(text).toBe("");
  });
});
