import { describe, expect, it } from "vitest";
import { STOPWORDS, stem, terms, words } from "./text.ts";

describe("words", () => {
  it("lower-cases and splits on punctuation and whitespace", () => {
    expect(words("Hey Mel! Good to see you... How've you been?")).toEqual(["hey", "mel", "good", "to", "see", "you", "howve", "you", "been"]);
    expect(words("support-group/self_care")).toEqual(["support", "group", "self", "care"]);
  });

  it("drops the possessive 's and joins other contractions", () => {
    expect(words("Caroline's mom")).toEqual(["caroline", "mom"]);
    expect(words("Caroline’s mom")).toEqual(["caroline", "mom"]);
    expect(words("I don't know, I'm O'Brien")).toEqual(["i", "dont", "know", "im", "obrien"]);
  });

  it("keeps numbers and non-ASCII letters", () => {
    expect(words("Ran 3.5 km in 2022, 10/12 at Café Zürich")).toEqual(["ran", "3", "5", "km", "in", "2022", "10", "12", "at", "café", "zürich"]);
    expect(words("東京 naïve")).toEqual(["東京", "naïve"]);
  });

  it("returns nothing for empty or punctuation-only text", () => {
    expect(words("")).toEqual([]);
    expect(words(" ?!... -- ''")).toEqual([]);
  });
});

describe("STOPWORDS", () => {
  it("holds function words in the form words() produces", () => {
    for (const w of ["the", "and", "i", "im", "dont", "youre", "was", "hey", "lol"]) expect(STOPWORDS.has(w)).toBe(true);
  });

  it("leaves content words alone, including ones a contraction could collide with", () => {
    for (const w of ["caroline", "sweden", "painting", "group", "shell", "hell"]) expect(STOPWORDS.has(w)).toBe(false);
  });
});

describe("terms", () => {
  it("drops stopwords and Porter-stems the rest, in order", () => {
    expect(terms("When did Caroline go to the LGBTQ support group?")).toEqual(["carolin", "go", "lgbtq", "support", "group"]);
  });

  it("maps inflections to one stem", () => {
    expect(terms("painting paints painted")).toEqual(["paint", "paint", "paint"]);
    expect(terms("adopting adoption")).toEqual(["adopt", "adopt"]);
  });

  it("keeps repeats and numbers", () => {
    expect(terms("Sweden, Sweden in 2022")).toEqual(["sweden", "sweden", "2022"]);
  });

  it("is empty for stopword-only text", () => {
    expect(terms("I am what I am, and you are too")).toEqual([]);
  });

  it("stem() agrees with the stemmer and is stable across calls", () => {
    expect(stem("caresses")).toBe("caress");
    expect(stem("ponies")).toBe("poni");
    expect(stem("ponies")).toBe("poni");
  });
});
