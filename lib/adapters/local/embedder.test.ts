import { describe, expect, it } from "vitest";
import { createLocalEmbedder } from "./embedder.ts";

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(cosine(a, a));

describe("local embedder", () => {
  const embedder = createLocalEmbedder();

  it("names its scheme and size in the model", () => {
    expect(embedder.dimensions).toBe(512);
    expect(embedder.model).toBe("strata-hash-v1-512");
    expect(createLocalEmbedder({ dimensions: 256 }).model).toBe("strata-hash-v1-256");
    // Any change of weights is a different model: its vectors must not mix with the default's.
    expect(createLocalEmbedder({ charWeight: 0 }).model).toBe("strata-hash-v1-512-b0.25-c0-n34");
  });

  it("rejects a nonsensical size", () => {
    expect(() => createLocalEmbedder({ dimensions: 0 })).toThrow(RangeError);
    expect(() => createLocalEmbedder({ dimensions: 100.5 })).toThrow(RangeError);
  });

  it("returns one unit vector of the right size per text, in order", async () => {
    const texts = ["Caroline went to the LGBTQ support group.", "Melanie painted a sunrise.", "pottery"];
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(3);
    for (const v of vectors) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(512);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    const [again] = await embedder.embed([texts[1]!]);
    expect(Array.from(vectors[1]!)).toEqual(Array.from(again!));
  });

  it("is deterministic across instances", async () => {
    const [a] = await createLocalEmbedder().embed(["Hey Mel! Good to see you!"]);
    const [b] = await createLocalEmbedder().embed(["Hey Mel! Good to see you!"]);
    expect(Array.from(a!)).toEqual(Array.from(b!));
  });

  it("embeds empty and stopword-only text to the zero vector, without NaN", async () => {
    const vectors = await embedder.embed(["", "   ", "?!", "I am what I am, and you are too"]);
    for (const v of vectors) {
      expect(v).toHaveLength(512);
      expect(v.every((x) => x === 0)).toBe(true);
    }
    expect(await embedder.embed([])).toEqual([]);
  });

  it("ignores case, punctuation and stopwords", async () => {
    const [a, b] = await embedder.embed(["Caroline went to Sweden!", "caroline WENT sweden"]);
    expect(cosine(a!, b!)).toBeCloseTo(1, 5);
  });

  it("places texts that share content nearer than unrelated ones", async () => {
    const [query, related, unrelated] = await embedder.embed([
      "When did Caroline go to the LGBTQ support group?",
      "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
      "Melanie: We went camping in the mountains with the kids last weekend.",
    ]);
    expect(cosine(query!, related!)).toBeGreaterThan(0.3);
    expect(cosine(query!, related!)).toBeGreaterThan(cosine(query!, unrelated!) + 0.2);
  });

  it("brings word forms and typos together through character n-grams", async () => {
    const withGrams = createLocalEmbedder();
    const termsOnly = createLocalEmbedder({ charWeight: 0 });
    // Porter gives these pairs different stems: only the n-grams relate them.
    for (const [x, y] of [["painter", "painting"], ["photographer", "photography"], ["musician", "music"], ["recieved", "received"]]) {
      const [a, b] = await withGrams.embed([x!, y!]);
      const [c, d] = await termsOnly.embed([x!, y!]);
      expect(Math.abs(cosine(c!, d!))).toBeLessThan(0.1);
      expect(cosine(a!, b!)).toBeGreaterThan(Math.abs(cosine(c!, d!)) + 0.15);
    }
    const [typo, right, other] = await withGrams.embed(["recieved the package", "received the package", "sent the letter"]);
    expect(cosine(typo!, right!)).toBeGreaterThan(cosine(typo!, other!) + 0.3);
  });

  it("weights a repeated term sublinearly", async () => {
    const [once, many, other] = await embedder.embed(["pottery class", "pottery pottery pottery pottery class", "class"]);
    // Five repeats do not erase the other word: the text still overlaps "class".
    expect(cosine(many!, other!)).toBeGreaterThan(0.2);
    expect(cosine(once!, many!)).toBeGreaterThan(0.8);
  });

  it("embeds a typical 30-word message well under a millisecond", async () => {
    const text =
      "Hey Caroline! Good to see you! I'm swamped with the kids & work. We went camping last weekend and the kids loved roasting marshmallows by the fire. What's new with you?";
    const texts = Array.from({ length: 2000 }, (_, i) => `${text} ${i}`);
    await embedder.embed(texts.slice(0, 200));
    const start = performance.now();
    await embedder.embed(texts);
    const perText = (performance.now() - start) / texts.length;
    expect(perText).toBeLessThan(0.5); // about 0.02 ms measured; loose for loaded CI machines
  });
});
