import { afterAll, describe, expect, it } from "vitest";
import { createWordNetLexicon, lemmaCandidates } from "./wordnet.ts";

const lexicon = createWordNetLexicon();
afterAll(() => lexicon.close());

describe("WordNet lexicon", () => {
  it("undoes common inflections to find a lemma", () => {
    expect(lemmaCandidates("parties")).toContain("party");
    expect(lemmaCandidates("painted")).toContain("paint");
    expect(lemmaCandidates("running")).toContain("run");
    expect(lemmaCandidates("hobbies")).toContain("hobby");
  });

  it("relates a word to its synonyms, and with hypernyms to more general words", () => {
    const kids = lexicon.related("kids", { senses: 1, hypernyms: false });
    expect(kids).toContain("child");
    expect(kids).not.toContain("kid");
    const puppy = lexicon.related("puppy", { senses: 1, hypernyms: true });
    expect(puppy).toContain("dog");
    expect(lexicon.related("puppy", { senses: 1, hypernyms: false })).not.toContain("dog");
  });

  it("gives single lower-case words only, and nothing for an unknown word", () => {
    for (const w of lexicon.related("career", { senses: 2, hypernyms: true })) expect(w).toMatch(/^[a-z]+$/);
    expect(lexicon.related("xqzzyv", { senses: 3, hypernyms: true })).toEqual([]);
  });
});
