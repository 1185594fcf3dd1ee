// The Tokenizer port's behaviour suite: exact, additive enough for packing, fast on long text.

import { describe, expect, it } from "vitest";
import type { Tokenizer } from "../../lib/core/ports.ts";

export function tokenizerContract(name: string, setup: () => Promise<Tokenizer>) {
  describe(`Tokenizer contract: ${name}`, () => {
    it("counts nothing in an empty string and something in any text", async () => {
      const t = await setup();
      expect(t.name).toMatch(/\S/);
      expect(t.count("")).toBe(0);
      expect(t.count("hello")).toBeGreaterThan(0);
      expect(t.count("héllo wörld, 你好 🌍")).toBeGreaterThan(0);
    });

    it("grows with the text and stays near additive across a line break", async () => {
      const t = await setup();
      const a = "The quick brown fox jumps over the lazy dog.";
      const b = "Pack my box with five dozen liquor jugs.";
      expect(t.count(a + " " + a)).toBeGreaterThan(t.count(a));
      const joined = t.count(`${a}\n${b}`);
      expect(Math.abs(joined - (t.count(a) + t.count(b) + 1))).toBeLessThanOrEqual(2);
    });

    it("is deterministic", async () => {
      const t = await setup();
      const text = "Strata packs context into a token budget. ".repeat(50);
      expect(t.count(text)).toBe(t.count(text));
    });
  });
}
