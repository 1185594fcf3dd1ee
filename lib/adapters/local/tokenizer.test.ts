import { describe, expect, it } from "vitest";
import { createLocalTokenizer } from "./tokenizer.ts";

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
