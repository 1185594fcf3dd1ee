import { describe, expect, it } from "vitest";
import { generateMessages, rehydrationSession } from "../../../bench/peers/data.ts";
import { mulberry32 } from "../../../test/fixtures/random.ts";
import type { KnownPiece } from "../../core/ports.ts";
import { pieceText } from "../../core/text.ts";
import { createLocalTokenizer, cutAt } from "./tokenizer.ts";

describe("local tokenizer (o200k_base)", () => {
  const tokenizer = createLocalTokenizer();

  it("is named after its encoding", () => {
    expect(tokenizer.name).toBe("o200k_base");
  });

  it("gives the o200k_base counts of known strings", () => {
    expect(tokenizer.count("hello world")).toBe(2);
    expect(tokenizer.count("Hello, world!")).toBe(4);
    expect(tokenizer.count("The quick brown fox jumps over the lazy dog.")).toBe(10);
    expect(tokenizer.count("🙂👍")).toBe(2);
  });

  it("counts the empty string as 0", () => {
    expect(tokenizer.count("")).toBe(0);
  });

  it("counts special-token text as plain text instead of throwing", () => {
    expect(tokenizer.count("a <|endoftext|> b")).toBe(9);
  });

  it("gives sane counts for long text", () => {
    const sentence = "The quick brown fox jumps over the lazy dog. ";
    const long = sentence.repeat(1000);
    const n = tokenizer.count(long);
    // About 10 tokens per sentence; BPE merges across the repeats only at the seams.
    expect(n).toBeGreaterThan(9_000);
    expect(n).toBeLessThan(11_000);
    // Roughly 4 characters per token for English prose.
    expect(long.length / n).toBeGreaterThan(3);
    expect(long.length / n).toBeLessThan(6);
  });

  it("is additive-ish: two paragraphs count close to the sum of their parts", () => {
    const a = "Caroline went to the LGBTQ support group yesterday and found it powerful.";
    const b = "Melanie painted a sunrise by the lake last summer.";
    const joined = tokenizer.count(`${a}\n${b}`);
    expect(Math.abs(joined - (tokenizer.count(a) + tokenizer.count(b)))).toBeLessThanOrEqual(2);
  });
});

describe("local tokenizer: countJoined", () => {
  const tokenizer = createLocalTokenizer();
  const joined = (pieces: string[]) => tokenizer.count(pieces.join(""));

  it("equals the count of the joined text where the pieces' own counts do not add up", () => {
    // ".\n\n", "  \n" and "\n\n" are one pre-token each: counting these pieces apart would be wrong.
    for (const pieces of [["ok.\n", "\nnext"], ["a  ", "\nb"], ["a\n", "\nb"], ["end.", "\n\n## H"]]) {
      expect(tokenizer.count(pieces[0]!) + tokenizer.count(pieces[1]!)).not.toBe(joined(pieces));
      expect(tokenizer.countJoined!(pieces)).toBe(joined(pieces));
    }
    for (const pieces of [["done.\n", "/tmp/x"], ["x\n", " y"], ["x", "y\n", "z"], ["a\r", "\nb"]]) {
      expect(tokenizer.countJoined!(pieces)).toBe(joined(pieces));
    }
  });

  it("counts nothing as 0 and skips empty pieces", () => {
    expect(tokenizer.countJoined!([])).toBe(0);
    expect(tokenizer.countJoined!(["", ""])).toBe(0);
    expect(tokenizer.countJoined!(["", "a\n", "", "b"])).toBe(joined(["a\n", "b"]));
  });

  it("is exact on random joins of the fragments where o200k's pre-tokenizer could merge across pieces", () => {
    const fragments = [
      "\n", "\n\n", "\r\n", "\r", " ", "  ", "\t", " \n", "  \n", ".", ".\n", "!\n\n", "/", "//", "\n/", "/\n", "a", "Ab", "ABC", "x's", "'s", "'LL",
      "1", "12", "1234", "3.14", "é", "e\u0301", "\u0301", "日本語", "🙂", "👍🏽", "#", "## Recent messages", "-", "- ", "[", "[2026-01-05]", ":", "Ann: ",
      "dev: ", "tool: ", "<|endoftext|>", "\u00a0", "\u2028", "`", "```ts", "=>", "{}", "a.b", "_", "$ ",
    ];
    const r = mulberry32(8);
    const pick = () => fragments[Math.floor(r() * fragments.length)]!;
    for (let trial = 0; trial < 5_000; trial++) {
      const pieces = Array.from({ length: 1 + Math.floor(r() * 8) }, () => Array.from({ length: Math.floor(r() * 6) }, pick).join(""));
      const want = joined(pieces);
      const got = tokenizer.countJoined!(pieces);
      if (got !== want) expect({ pieces, got }).toEqual({ pieces, got: want });
    }
  });

  it("is exact on prompts of the benchmark sessions' turns, cached or not", () => {
    const uncached = createLocalTokenizer({ cacheEntries: 0 });
    const tiny = createLocalTokenizer({ cacheEntries: 3, cacheChars: 5_000 });
    const turns = [
      ...rehydrationSession(),
      ...generateMessages({ seed: 1000, count: 2_000, profile: "chat", prefix: "g" }),
      ...generateMessages({ seed: 7, count: 300, profile: "coding", prefix: "c" }),
    ];
    const r = mulberry32(9);
    for (let trial = 0; trial < 100; trial++) {
      // A prompt the way the context renders one: sections of lines, "\n" within and "\n\n" between.
      const sections: string[][] = [];
      for (let s = 0, n = 1 + Math.floor(r() * 4); s < n; s++) {
        const at = Math.floor(r() * turns.length);
        const lines = [`## Section ${s}`];
        for (const m of turns.slice(at, at + 1 + Math.floor(r() * 40))) {
          if (r() < 0.2) lines.push(`[${m.createdAt.slice(0, 10)}]`);
          lines.push(`${m.name ?? m.role}: ${m.content}`);
        }
        sections.push(lines);
      }
      const pieces = sections.flatMap((lines, i) => lines.map((l, j) => (j < lines.length - 1 ? `${l}\n` : i < sections.length - 1 ? `${l}\n\n` : l)));
      const want = joined(pieces);
      expect(tokenizer.countJoined!(pieces)).toBe(want);
      // Again, now from the cache.
      expect(tokenizer.countJoined!(pieces)).toBe(want);
      expect(uncached.countJoined!(pieces)).toBe(want);
      expect(tiny.countJoined!(pieces)).toBe(want);
    }
  });
});

describe("local tokenizer: countJoined with known pieces", () => {
  const tokenizer = createLocalTokenizer();
  const uncached = createLocalTokenizer({ cacheEntries: 0 });
  const joined = (pieces: (string | KnownPiece)[]) => tokenizer.count(pieces.map(pieceText).join(""));
  const known = (before: string, content: string, after: string): KnownPiece => ({ before, text: content, tokens: tokenizer.count(content), after });

  it("counts a turn's line from its content's count as the whole line counts", () => {
    for (const content of ["I love painting sunsets.", "ok", "see you at 5 pm!", "  leading spaces and trailing  ", "a b", "x's y'll z", "日本語 and English 123 456"]) {
      for (const after of ["\n", "\n\n", ""]) {
        const pieces = ["## Recent messages\n", known("Ann: ", content, after), "Bob: next\n"];
        expect(tokenizer.countJoined!(pieces)).toBe(joined(pieces));
        expect(uncached.countJoined!(pieces)).toBe(joined(pieces));
      }
    }
  });

  it("is exact on random contents built of fragments the pre-tokenizer could merge across", () => {
    const fragments = [
      " ", "  ", "\n", "\n\n", "\t", ".", "!", "?", "'s", "'", "a", "Ab", "ABC", "word", "Word", "12", "1234", "3.14", "é", "e\u0301", "日本", "🙂",
      "-", "/", "//", "[x]", ":", "```", "\u00a0", "<|endoftext|>", "_", "$",
      // Digit places (after a letter or a mark) and places after a "\n" (cutAt in tokenizer.ts).
      "(", ")", ":319", ":22)", "x1", "a1b2", "v2.3.4", "0", "007", "12345", "'1", "/1", "\t1", "\r1", " 1", "\u0663", "\u00b2", "1\u0663", "\n}", "\n```", "\n1",
      "\n/", "\n ", "\r\n1", ".\n)", "é1", "🙂1",
    ];
    const r = mulberry32(10);
    const pick = () => fragments[Math.floor(r() * fragments.length)]!;
    for (let trial = 0; trial < 3_000; trial++) {
      const content = Array.from({ length: Math.floor(r() * 12) }, pick).join("");
      const before = r() < 0.5 ? "Ann: " : pick();
      const after = ["\n", "\n\n", "", " ", "\n/"][Math.floor(r() * 5)]!;
      const pieces = [pick(), known(before, content, after), r() < 0.5 ? "Bob: hi" : pick()];
      const want = joined(pieces);
      const got = tokenizer.countJoined!(pieces);
      if (got !== want) expect({ pieces, got }).toEqual({ pieces, got: want });
    }
  });

  it("is exact on the benchmark sessions' turns written as known pieces", () => {
    const turns = [...generateMessages({ seed: 1001, count: 1_000, profile: "chat", prefix: "g" }), ...generateMessages({ seed: 8, count: 200, profile: "coding", prefix: "c" })];
    for (let at = 0; at < turns.length; at += 20) {
      const pieces: (string | KnownPiece)[] = ["## Relevant earlier messages\n"];
      const run = turns.slice(at, at + 20);
      run.forEach((m, i) => pieces.push(known(`${m.name ?? m.role}: `, m.content, i < run.length - 1 ? "\n" : "")));
      expect(tokenizer.countJoined!(pieces)).toBe(joined(pieces));
    }
  });

  it("cuts only where the parts count apart what they count together", () => {
    // Every place cutAt allows, not only the first and the last a line uses.
    const fragments = [
      " ", "  ", "\n", "\n\n", "\t", "\r", ".", "!", "'", "'s", "a", "Ab", "word", "12", "1234", "0", "é", "日本", "🙂", "-", "/", "(", ")", ":", "```",
      "\u00a0", "\u0663", "\u00b2", "_", "$", "}", "x1",
    ];
    const r = mulberry32(11);
    const pick = () => fragments[Math.floor(r() * fragments.length)]!;
    const contents = Array.from({ length: 1_500 }, () => Array.from({ length: 2 + Math.floor(r() * 10) }, pick).join(""));
    contents.push(...generateMessages({ seed: 1002, count: 300, profile: "chat", prefix: "g" }).map((m) => m.content));
    let places = 0;
    for (const text of contents) {
      for (let k = 1; k < text.length; k++) {
        if (!cutAt(text, k)) continue;
        places++;
        for (const [before, after] of [["", ""], ["Ann: ", "\n"], [pick(), pick()]] as const) {
          const whole = tokenizer.count(before + text + after);
          const parts = tokenizer.count(before + text.slice(0, k)) + tokenizer.count(text.slice(k) + after);
          if (parts !== whole) expect({ before, text, after, k, parts }).toEqual({ before, text, after, k, parts: whole });
        }
      }
    }
    expect(places).toBeGreaterThan(10_000);
  });

  it("is exact on turns of code and log output cut at digits and after newlines", () => {
    // A stack frame's tail, a code block's closing fence, numbers after marks and letters: the
    // places cutAt adds besides spaces, with every kind of neighbour the line puts around them.
    const contents = [
      "TypeError: x\n      at flushBatch (src/search-index/snapshot.ts:319:22)",
      "```ts\nexport async function f(a: string) {\n  return { a: 1 };\n}\n```",
      "v2.3.4 rolled back at 12:05:09, then 1234567 rows",
      "ratio 3/4 and 10/3\n)\n1st\n2nd",
      "x1y2z3 (a1) [b2] {c3} <d4> 'e5' \"f6\"",
      "line\n\n1. one\n2. two\n/3",
      "\u0663\u0664 ٣1 ²2 é3 🙂4",
    ];
    for (const content of contents) {
      for (const before of ["Ann: ", "", "(", "7", "\n"]) {
        for (const after of ["\n", "\n\n", "", " ", "1", ")", "\n/"]) {
          const pieces = ["## Relevant earlier messages\n", known(before, content, after), "Bob: next"];
          expect(tokenizer.countJoined!(pieces)).toBe(joined(pieces));
          expect(uncached.countJoined!(pieces)).toBe(joined(pieces));
        }
      }
    }
  });

  it("falls back to counting the whole line when the stored count cannot be right", () => {
    // One cut: head and tail are the whole content, so a count other than theirs is wrong.
    const wrong: KnownPiece = { before: "Ann: ", text: "hello world", tokens: 7, after: "\n" };
    expect(tokenizer.countJoined!([wrong])).toBe(tokenizer.count("Ann: hello world\n"));
    // A count below what the ends alone hold.
    const low: KnownPiece = { before: "Ann: ", text: "one two three four", tokens: 1, after: "\n" };
    expect(tokenizer.countJoined!([low])).toBe(tokenizer.count("Ann: one two three four\n"));
  });
});

describe("local tokenizer: countWithin", () => {
  const tokenizer = createLocalTokenizer();

  it("is the count when the text fits the limit, and false when it does not, on the benchmark sessions' turns", () => {
    const turns = [...generateMessages({ seed: 21, count: 300, profile: "chat", prefix: "w" }), ...generateMessages({ seed: 22, count: 100, profile: "coding", prefix: "v" })];
    const r = mulberry32(23);
    for (const t of turns) {
      const n = tokenizer.count(t.content);
      expect(tokenizer.countWithin!(t.content, n)).toBe(n);
      expect(tokenizer.countWithin!(t.content, n + Math.floor(r() * 50))).toBe(n);
      if (n > 0) expect(tokenizer.countWithin!(t.content, Math.floor(r() * n))).toBe(false);
    }
  });

  it("counts special-token text as plain text, and the empty string as 0 within any limit of 0 or more", () => {
    const text = "before <|endoftext|> after";
    expect(tokenizer.countWithin!(text, 100)).toBe(tokenizer.count(text));
    expect(tokenizer.countWithin!("", 0)).toBe(0);
    expect(tokenizer.countWithin!("", -1)).toBe(false);
  });
});
