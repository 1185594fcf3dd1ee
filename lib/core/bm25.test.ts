import { describe, expect, it } from "vitest";
import { Bm25Corpus, type CorpusDoc } from "./bm25.ts";
import { terms } from "./text.ts";

const doc = (id: string, seq: number, name = "Ann", sessionId = "s1"): CorpusDoc => ({ id, sessionId, seq, name, createdAt: seq * 1000 });

/** A corpus where "Ann" speaks every turn and says "coffee" in most of them. */
function chat(): Bm25Corpus {
  const c = new Bm25Corpus();
  c.add(doc("t1", 1), "coffee this morning, coffee all day");
  c.add(doc("t2", 2), "more coffee please");
  c.add(doc("t3", 3), "coffee and a croissant");
  c.add(doc("t4", 4), "I adopted a greyhound");
  c.add(doc("t5", 5), "coffee again");
  return c;
}

describe("Bm25Corpus.search", () => {
  it("ranks a turn matching a rare query word above turns matching a common one", () => {
    const ids = chat().search(terms("Ann coffee greyhound"), { limit: 5 }).map((h) => h.id);
    expect(ids[0]).toBe("t4");
  });

  it("weighs a word by how few turns hold it: the speaker's name in every turn adds almost nothing", () => {
    const c = chat();
    expect(c.idf("ann")).toBeLessThan(0.2);
    expect(c.idf("greyhound")).toBeGreaterThan(c.idf("coffe") + 0.5);
  });

  it("saturates repeated words and normalises by length", () => {
    const c = new Bm25Corpus();
    c.add(doc("short", 1), "jazz");
    c.add(doc("long", 2), "jazz records and vinyl shops and old turntables and radios downtown");
    c.add(doc("other", 3), "nothing here");
    c.add(doc("other2", 4), "nor here");
    const [first] = c.search(["jazz"], { limit: 2 });
    expect(first!.id).toBe("short");
  });

  it("filters by session and breaks ties towards the newer turn", () => {
    const c = new Bm25Corpus();
    c.add(doc("a", 1, "Ann", "s1"), "piano");
    c.add(doc("b", 2, "Ann", "s2"), "piano");
    c.add(doc("c", 3, "Ann", "s2"), "other");
    expect(c.search(["piano"], { limit: 5 }).map((h) => h.id)).toEqual(["b", "a"]);
    expect(c.search(["piano"], { limit: 5, sessionId: "s1" }).map((h) => h.id)).toEqual(["a"]);
    expect(c.search(["piano"], { limit: 5, filter: (d) => d.seq === 1 }).map((h) => h.id)).toEqual(["a"]);
  });

  it("forgets removed turns and whole sessions, and replaces a turn added twice", () => {
    const c = chat();
    c.remove("t4");
    expect(c.search(["greyhound"], { limit: 5 })).toEqual([]);
    c.add(doc("t1", 1), "greyhound now");
    expect(c.size).toBe(4);
    expect(c.search(["greyhound"], { limit: 5 }).map((h) => h.id)).toEqual(["t1"]);
    c.removeSession("s1");
    expect(c.size).toBe(0);
    expect(c.search(["coffe"], { limit: 5 })).toEqual([]);
  });
});

describe("Bm25Corpus.neighbours", () => {
  it("lists the turns around a turn in its own session, nearest first and the next turn before the previous", () => {
    const c = new Bm25Corpus();
    // Added out of order, and another session in between, on purpose.
    for (const seq of [3, 1, 2, 5, 4]) c.add(doc(`a${seq}`, seq, "Ann", "s1"), `turn ${seq}`);
    c.add(doc("b1", 1, "Bob", "s2"), "elsewhere");
    expect(c.neighbours("a3", 2)).toEqual([
      { id: "a4", offset: 1 },
      { id: "a2", offset: -1 },
      { id: "a5", offset: 2 },
      { id: "a1", offset: -2 },
    ]);
    expect(c.neighbours("a1", 1)).toEqual([{ id: "a2", offset: 1 }]);
    expect(c.neighbours("b1", 3)).toEqual([]);
    expect(c.neighbours("unknown", 1)).toEqual([]);
  });

  it("knows which turns ask a question", () => {
    const c = new Bm25Corpus();
    c.add(doc("q", 1), "What did you take away from the book?");
    c.add(doc("a", 2), "It taught me self-acceptance.");
    expect([c.asks("q"), c.asks("a")]).toEqual([true, false]);
  });
});

describe("Bm25Corpus.expand", () => {
  it("adds the words of the best first hits, so a turn sharing no query word can be found", () => {
    const c = new Bm25Corpus();
    c.add(doc("t1", 1), "We are looking into adoption agencies");
    c.add(doc("t2", 2), "The adoption interview went well, the agencies liked us");
    c.add(doc("t3", 3), "Two agencies called back about the home study");
    c.add(doc("t4", 4), "I baked bread");
    c.add(doc("t5", 5), "Bread again");
    const plain = c.search(terms("adoption"), { limit: 5 }).map((h) => h.id);
    expect(plain).not.toContain("t3");
    const { terms: expanded, weights } = c.expand(terms("adoption"), { docs: 2, terms: 3, weight: 0.5 });
    expect(expanded).toContain("agenc");
    expect(Math.max(...weights.values())).toBeCloseTo(0.5);
    const ids = c.search(expanded, { limit: 5, weights }).map((h) => h.id);
    expect(ids).toContain("t3");
    expect(ids.indexOf("t3")).toBeGreaterThan(ids.indexOf("t2"));
  });

  it("changes nothing when turned off or when nothing matches", () => {
    const c = chat();
    expect(c.expand(["coffe"], { docs: 0, terms: 5, weight: 0.5 })).toEqual({ terms: ["coffe"], weights: new Map() });
    expect(c.expand(["zebra"], { docs: 3, terms: 5, weight: 0.5 })).toEqual({ terms: ["zebra"], weights: new Map() });
  });
});
