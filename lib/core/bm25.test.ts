import { describe, expect, it } from "vitest";
import { Bm25Corpus, gridAverage, type CorpusDoc } from "./bm25.ts";
import { mulberry32 } from "../../test/fixtures/random.ts";
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

  it("normalises by the average length on a grid: within 0.14% of it, and the same for averages a few millionths apart", () => {
    for (const avg of [1, 1.5, 7.25, 12.3456, 48, 1000.5]) {
      expect(Math.abs(gridAverage(avg) / avg - 1)).toBeLessThanOrEqual(2 ** (1 / 512) - 1 + 1e-12);
      expect(gridAverage(gridAverage(avg))).toBe(gridAverage(avg));
    }
    // A 100k-turn corpus of 12-word turns gaining one 40-word turn: its average moves by 2.8e-4
    // words, and stays on the same point of the grid.
    const before = (100_000 * 12) / 100_000;
    const after = (100_000 * 12 + 40) / 100_001;
    expect(gridAverage(after)).toBe(gridAverage(before));
  });

  it("scores each turn by the BM25 formula, to the bit, while turns come and go between searches", () => {
    // Searches in between pack the searched terms' postings and the length table; every add
    // (appended to those postings when its slot is past their last, as a new turn's is),
    // replace and remove after them must show in the next search's scores. Now and then a
    // turn is longer than the length table (a pasted log), whose length terms are computed apart.
    const words = ["coffee", "greyhound", "piano", "jazz", "tea", "lisbon", "kyoto", "retries"];
    let seed = 3;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const sentence = () =>
      Array.from({ length: random() < 0.05 ? 4200 + Math.floor(random() * 200) : 1 + Math.floor(random() * 12) }, () => words[Math.floor(random() * words.length)]).join(" ");
    const c = new Bm25Corpus();
    const live = new Map<string, string>();
    const params = { k1: 1.2, b: 0.3 };
    const query = terms("coffee greyhound piano jazz tea");
    const weights = new Map([["piano", 0.5]]);
    /** BM25 straight from the definition, over what is live now (the average length on its grid, gridAverage). */
    const expected = () => {
      const docs = [...live].map(([id, text]) => ({ id, list: terms(`Ann ${text}`) }));
      const avg = gridAverage(docs.reduce((a, d) => a + d.list.length, 0) / docs.length || 1);
      const scored = docs.map((d) => {
        let score = 0;
        for (const t of new Set(query)) {
          const df = docs.filter((x) => x.list.includes(t)).length;
          if (df === 0) continue;
          const tf = d.list.filter((x) => x === t).length;
          const w = (weights.get(t) ?? 1) * Math.log(1 + (docs.length - df + 0.5) / (df + 0.5));
          if (tf > 0) score += w * (tf * (params.k1 + 1) / (tf + params.k1 * (1 - params.b + (params.b * d.list.length) / avg)));
        }
        return { id: d.id, score, seq: Number(d.id.slice(1)) };
      });
      return scored
        .filter((x) => x.score > 0)
        .sort((a, b) => b.score - a.score || b.seq - a.seq)
        .slice(0, 20)
        .map(({ id, score }) => ({ id, score }));
    };
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 5; k++) {
        const seq = Math.floor(random() * 60);
        const id = `d${seq}`;
        if (live.has(id) && random() < 0.4) {
          c.remove(id);
          live.delete(id);
        } else {
          const text = sentence();
          c.add(doc(id, seq), text);
          live.set(id, text);
        }
      }
      const want = expected();
      const hits = c.search(query, { limit: 20, params, weights });
      expect(hits.map(({ id, score }) => ({ id, score }))).toEqual(want);
      expect(c.search(query, { limit: 20, params, weights, exhaustive: true }).map(({ id, score }) => ({ id, score }))).toEqual(want);
      // Each hit carries the turn the corpus holds under its id.
      for (const h of hits) expect(h.turn).toBe(c.doc(h.id));
    }
  });
});

describe("Bm25Corpus postings kept packed", () => {
  it("scores a turn appended after a search even when the average length stays the same", () => {
    // Every turn is two terms long ("ann", a word): adding one leaves the average, and so the
    // length table, as they were; the postings packed by the first search must still take it in.
    const c = new Bm25Corpus();
    for (let i = 1; i <= 4; i++) c.add(doc(`t${i}`, i), i % 2 ? "coffee" : "tea");
    const before = c.search(["coffe"], { limit: 10 });
    expect(before.map((h) => h.id)).toEqual(["t3", "t1"]);
    c.add(doc("t5", 5), "coffee");
    const after = c.search(["coffe"], { limit: 10 });
    expect(after.map((h) => h.id)).toEqual(["t5", "t3", "t1"]);
    const fresh = new Bm25Corpus();
    for (let i = 1; i <= 5; i++) fresh.add(doc(`t${i}`, i), i % 2 ? "coffee" : "tea");
    expect(after).toEqual(fresh.search(["coffe"], { limit: 10 }));
    expect(fresh.searchExpanded(["coffe"], { docs: 2, terms: 2, weight: 0.5, limit: 10 })).toEqual(c.searchExpanded(["coffe"], { docs: 2, terms: 2, weight: 0.5, limit: 10 }));
  });
});

describe("Bm25Corpus impacts kept across appends", () => {
  it("scores as a corpus built afresh after turns are appended round after round, the average length on the grid or off it", () => {
    const words = ["coffee", "greyhound", "piano", "jazz", "tea", "lisbon"];
    let seed = 11;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const texts: string[] = [];
    const sentence = () => Array.from({ length: 1 + Math.floor(random() * 6) }, () => words[Math.floor(random() * words.length)]).join(" ");
    const c = new Bm25Corpus();
    const add = () => {
      texts.push(sentence());
      c.add(doc(`t${texts.length}`, texts.length), texts.at(-1)!);
    };
    for (let i = 0; i < 400; i++) add();
    // 400 turns of 2–7 terms: one to three more move the average by up to half a percent, so
    // some rounds keep it on its point of the grid (the impacts held are extended) and others
    // move it (they are computed anew).
    const query = terms("coffee piano lisbon tea");
    for (let round = 0; round < 40; round++) {
      const got = c.search(query, { limit: 30 });
      const fresh = new Bm25Corpus();
      texts.forEach((t, i) => fresh.add(doc(`t${i + 1}`, i + 1), t));
      expect(got).toEqual(fresh.search(query, { limit: 30 }));
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) add();
    }
  });
});

describe("Bm25Corpus.search, pruned", () => {
  // Chat-like corpora: a small vocabulary drawn with a skew (a few words in most turns, as in
  // the benchmark's generator), turns of one word to long pastes, exact duplicates said at the
  // same moment (ties broken by slot), and removals between searches so that reused slots
  // leave postings out of slot order. The pruned search must give the exhaustive one's answer.
  for (const seed of [1, 2, 3, 4]) {
    it(`returns the exhaustive scan's best turns and scores, ties included (seed ${seed})`, () => {
      const r = mulberry32(seed);
      const vocabulary = Array.from({ length: 60 }, (_, i) => `w${i}x`);
      // Word i is drawn with weight 1 / (i + 1): w0x is in most turns, w59x in few.
      const word = () => vocabulary[Math.min(vocabulary.length - 1, Math.floor(Math.exp(r() * Math.log(vocabulary.length + 1)) - 1))]!;
      const sentence = () => Array.from({ length: 1 + Math.floor(r() < 0.1 ? r() * 80 : r() * 12) }, word).join(" ");
      const c = new Bm25Corpus();
      const live: string[] = [];
      let next = 0;
      const addTurn = () => {
        const id = `t${next++}`;
        const session = `s${Math.floor(r() * 8)}`;
        const text = sentence();
        const at = Math.floor(r() * 500);
        c.add({ id, sessionId: session, seq: next, name: r() < 0.5 ? "Ann" : "Bo", createdAt: at * 1000 }, text);
        live.push(id);
        // A duplicate said at the same moment: the same score, the same time.
        if (r() < 0.2) {
          const twin = `t${next++}`;
          c.add({ id: twin, sessionId: session, seq: next, name: "Ann", createdAt: at * 1000 }, text);
          live.push(twin);
        }
      };
      for (let i = 0; i < 6000; i++) addTurn();
      let compared = 0;
      let expandedCompared = 0;
      // More turns than a block of the pruned scan (1,024 slots): later blocks are pruned.
      for (let round = 0; round < 8; round++) {
        for (let k = 0; k < 150; k++) {
          const at = Math.floor(r() * live.length);
          c.remove(live[at]!);
          live.splice(at, 1);
        }
        for (let k = 0; k < 150; k++) addTurn();
        for (let q = 0; q < 8; q++) {
          const query = Array.from({ length: 1 + Math.floor(r() * 30) }, word);
          const weights = new Map(query.filter(() => r() < 0.3).map((t) => [t, r() < 0.1 ? 0 : r()] as [string, number]));
          const params = r() < 0.5 ? { k1: 1.2, b: 0.3 } : { k1: 0.9, b: 0.75 };
          for (const limit of [1, 3, 10, 50, 100]) {
            const options = [
              { limit, params },
              { limit, params, weights },
              { limit, params, sessionId: "s3" },
              { limit, params, filter: (d: CorpusDoc) => d.createdAt % 3000 !== 0 },
            ];
            for (const o of options) {
              const want = c.search(query, { ...o, exhaustive: true });
              expect(c.search(query, o)).toEqual(want);
              compared += want.length;
            }
            // expand() then search() in one, each posting read once: the same terms, weights, hits.
            for (const sessionId of [undefined, "s3"]) {
              const feedback = r() < 0.2 ? { docs: 0, terms: 10, weight: 0.5 } : { docs: 1 + Math.floor(r() * 5), terms: 1 + Math.floor(r() * 12), weight: r() };
              const { terms: expanded, weights: added } = c.expand(query, { ...feedback, sessionId, params });
              const hits = c.search(expanded, { limit, sessionId, params, weights: added, exhaustive: true });
              expect(c.searchExpanded(query, { ...feedback, limit, sessionId, params })).toEqual({ terms: expanded, weights: added, hits });
              expandedCompared += hits.length;
            }
          }
        }
      }
      expect(compared).toBeGreaterThan(10_000);
      expect(expandedCompared).toBeGreaterThan(2_000);
    });
  }
});

describe("Bm25Corpus.searchExpanded, few turns reached", () => {
  // Queries of rare words reach a few turns in a large corpus: the expanded search then tracks
  // the turns it reaches instead of reading every slot's score; the same answer either way.
  it("returns expand() then an exhaustive search()'s terms, weights and hits", () => {
    const r = mulberry32(9);
    const common = ["alpha", "bravo", "charlie", "delta", "echo"];
    const c = new Bm25Corpus();
    const live: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const words = Array.from({ length: 2 + Math.floor(r() * 8) }, () => common[Math.floor(r() * common.length)]!);
      words.push(`tag${Math.floor(r() * 300)}`, `mark${Math.floor(r() * 50)}`);
      c.add({ id: `t${i}`, sessionId: `s${i % 7}`, seq: i, name: "Ann", createdAt: Math.floor(r() * 900) * 1000 }, words.join(" "));
      live.push(`t${i}`);
      if (i % 5 === 4) c.remove(live.splice(Math.floor(r() * live.length), 1)[0]!);
    }
    let compared = 0;
    for (let q = 0; q < 60; q++) {
      const query = Array.from({ length: 1 + Math.floor(r() * 3) }, () => `tag${Math.floor(r() * 300)}`);
      const params = q % 2 ? { k1: 1.2, b: 0.3 } : { k1: 0.9, b: 0.75 };
      for (const sessionId of [undefined, "s3"]) {
        for (const limit of [1, 10, 50]) {
          const feedback = { docs: 1 + (q % 4), terms: 1 + (q % 10), weight: 0.5 };
          const { terms: expanded, weights: added } = c.expand(query, { ...feedback, sessionId, params });
          const hits = c.search(expanded, { limit, sessionId, params, weights: added, exhaustive: true });
          expect(c.searchExpanded(query, { ...feedback, limit, sessionId, params })).toEqual({ terms: expanded, weights: added, hits });
          compared += hits.length;
        }
      }
    }
    expect(compared).toBeGreaterThan(1_000);
  });

  // Queries of common words reach most turns, so every slot's score is read (the dense sums);
  // the feedback then adds the rare words of the first hits, whose postings reach few turns.
  // Ties (turns of the same words at the same time) included.
  it("returns the same when the base query reaches most turns and the added words few", () => {
    const r = mulberry32(10);
    const common = ["alpha", "bravo", "delta", "kilo", "lima"];
    const c = new Bm25Corpus();
    for (let i = 0; i < 5000; i++) {
      const words = Array.from({ length: 2 + Math.floor(r() * 8) }, () => common[Math.floor(r() * common.length)]!);
      words.push(`tag${Math.floor(r() * 400)}`, `mark${Math.floor(r() * 300)}`);
      const text = words.join(" ");
      const at = Math.floor(r() * 600) * 1000;
      c.add({ id: `t${i}`, sessionId: `s${i % 5}`, seq: i, name: "Ann", createdAt: at }, text);
      if (r() < 0.1) c.add({ id: `t${i}b`, sessionId: `s${i % 5}`, seq: i, name: "Ann", createdAt: at }, text);
    }
    let compared = 0;
    for (let q = 0; q < 24; q++) {
      const query = Array.from({ length: 1 + (q % 3) }, () => common[Math.floor(r() * common.length)]!);
      const params = q % 2 ? { k1: 1.2, b: 0.3 } : { k1: 0.9, b: 0.75 };
      for (const sessionId of [undefined, "s2"]) {
        for (const limit of [1, 5, 60, 300]) {
          const feedback = { docs: 1 + (q % 4), terms: 1 + (q % 3), weight: 0.3 + (q % 5) / 5 };
          const { terms: expanded, weights: added } = c.expand(query, { ...feedback, sessionId, params });
          expect(expanded.length).toBeGreaterThan(new Set(query).size);
          const hits = c.search(expanded, { limit, sessionId, params, weights: added, exhaustive: true });
          expect(c.searchExpanded(query, { ...feedback, limit, sessionId, params })).toEqual({ terms: expanded, weights: added, hits });
          compared += hits.length;
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });
});

describe("Bm25Corpus.packSome", () => {
  it("packs common words' postings a slice at a time, changing no answer, and goes on after new turns", () => {
    const r = mulberry32(11);
    const words = ["alpha", "bravo", "delta", "kilo", "lima", "mike", "oscar", "papa"];
    const c = new Bm25Corpus();
    const cold = new Bm25Corpus();
    const addBoth = (i: number) => {
      const text = Array.from({ length: 3 + Math.floor(r() * 6) }, () => words[Math.floor(r() * words.length)]!).join(" ") + ` rare${i % 500}`;
      const doc = { id: `t${i}`, sessionId: `s${i % 9}`, seq: i, name: "Ann", createdAt: i * 1000 };
      c.add(doc, text);
      cold.add(doc, text);
    };
    for (let i = 0; i < 3000; i++) addBoth(i);
    const queries = [["alpha"], ["bravo", "kilo"], ["papa", "rare7"], ["lima", "mike", "oscar"]];
    const answers = (corpus: Bm25Corpus) =>
      queries.map((q) => [corpus.search(q, { limit: 20 }), corpus.searchExpanded(q, { docs: 3, terms: 5, weight: 0.5, limit: 50 })]);
    // Eight common words of about 1,700 postings each: slices of 2,000 postings take several calls.
    let calls = 1;
    while (!c.packSome(2_000, 32)) calls++;
    expect(calls).toBeGreaterThan(3);
    expect(answers(c)).toEqual(answers(cold));
    // Turns added after a walk: the next walk finds what they made common, and answers stay the same.
    for (let i = 3000; i < 4000; i++) addBoth(i);
    expect(c.packSome(Number.MAX_SAFE_INTEGER, 32)).toBe(true);
    expect(answers(c)).toEqual(answers(cold));
  });
});

describe("Bm25Corpus.searchExpanded, ties", () => {
  // Thousands of turns with one score: the scan's floor cannot drop them, and its buffer grows
  // instead; the best are still the newest of them, as the exhaustive search orders ties.
  it("returns expand() then an exhaustive search()'s hits when most turns tie", () => {
    const c = new Bm25Corpus();
    for (let i = 0; i < 5000; i++) {
      const text = i % 50 === 0 ? `alpha bravo note${i % 7}` : i % 3 === 0 ? "alpha bravo" : "alpha charlie";
      c.add({ id: `t${i}`, sessionId: `s${i % 4}`, seq: i, name: "Ann", createdAt: Math.floor(i / 10) * 1000 }, text);
    }
    let compared = 0;
    for (const query of [["alpha"], ["bravo"], ["alpha", "bravo"], ["charlie", "note3"]]) {
      for (const sessionId of [undefined, "s1"]) {
        for (const limit of [1, 3, 100, 700]) {
          const feedback = { docs: 3, terms: 4, weight: 0.5 };
          const { terms: expanded, weights: added } = c.expand(query, { ...feedback, sessionId });
          const hits = c.search(expanded, { limit, sessionId, weights: added, exhaustive: true });
          expect(c.searchExpanded(query, { ...feedback, limit, sessionId })).toEqual({ terms: expanded, weights: added, hits });
          compared += hits.length;
        }
      }
    }
    expect(compared).toBeGreaterThan(5_000);
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
    // From a turn found by doc(): the same turns, and none once the turn is no longer held.
    const a3 = c.doc("a3")!;
    expect(c.neighbourTurns(a3, 1).map((n) => [n.turn, n.offset])).toEqual([[c.doc("a4"), 1], [c.doc("a2"), -1]]);
    c.remove("a3");
    expect(c.neighbourTurns(a3, 1)).toEqual([]);
  });

  it("finds a session's turns after the session was emptied and written anew, or a turn moved to another", () => {
    const c = new Bm25Corpus();
    for (const seq of [1, 2, 3]) c.add(doc(`a${seq}`, seq, "Ann", "s1"), `turn ${seq}`);
    c.removeSession("s1");
    expect(c.neighbours("a2", 1)).toEqual([]);
    // The session written again: its new turns, none of the old.
    for (const seq of [2, 1]) c.add(doc(`n${seq}`, seq, "Ann", "s1"), `new turn ${seq}`);
    expect(c.neighbours("n1", 2)).toEqual([{ id: "n2", offset: 1 }]);
    // A turn written again in another session leaves its first.
    c.add(doc("n3", 3, "Ann", "s1"), "third");
    c.add(doc("n2", 2, "Ann", "s2"), "moved");
    expect(c.neighbours("n1", 2)).toEqual([{ id: "n3", offset: 1 }]);
    expect(c.neighbours("n2", 2)).toEqual([]);
    // A session's id built anew (another string of the same text) finds the same session.
    c.add(doc("n4", 4, "Ann", ["s", "1"].join("")), "fourth");
    expect(c.doc("n4")!.sessionId).toBe("s1");
    expect(c.neighbours("n4", 1)).toEqual([{ id: "n3", offset: -1 }]);
  });

  it("knows which turns ask a question, say a time or a number", () => {
    const c = new Bm25Corpus();
    c.add(doc("q", 1), "What did you take away from the book?");
    c.add(doc("a", 2), "It taught me self-acceptance.");
    c.add(doc("n", 3), "We adopted 3 dogs last week.");
    expect(["q", "a", "n"].map((id) => c.doc(id)!.asks)).toEqual([true, false, false]);
    expect(["q", "a", "n"].map((id) => [c.doc(id)!.time, c.doc(id)!.quantity])).toEqual([[false, false], [false, false], [true, true]]);
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

  it("adds no word held by more than maxShare of the turns, and the next words in its place", () => {
    const c = new Bm25Corpus();
    // "today" is in 6 turns of 20 (30%), "agencies" in 3 (15%), "interview" in 1 (5%).
    c.add(doc("t1", 1), "adoption agencies today");
    c.add(doc("t2", 2), "adoption interview today agencies");
    c.add(doc("t3", 3), "agencies called today");
    for (let i = 4; i <= 6; i++) c.add(doc(`t${i}`, i), `bread today ${i}`);
    for (let i = 7; i <= 20; i++) c.add(doc(`t${i}`, i), `weather note ${i}`);
    const [today, agencies, interview] = terms("today agencies interview");
    expect(c.expand(terms("adoption"), { docs: 2, terms: 2, weight: 0.5 }).terms).toContain(today);
    for (const [maxShare, kept, gone] of [[0.2, [agencies], [today]], [0.1, [interview], [today, agencies]], [0.3, [today], []]] as const) {
      const { terms: expanded, weights } = c.expand(terms("adoption"), { docs: 2, terms: 2, weight: 0.5, maxShare });
      for (const t of kept) expect(expanded).toContain(t);
      for (const t of gone) expect(expanded).not.toContain(t);
      expect(expanded.length).toBeLessThanOrEqual(3);
      // searchExpanded picks the same words.
      expect(c.searchExpanded(terms("adoption"), { docs: 2, terms: 2, weight: 0.5, maxShare, limit: 5 }).terms).toEqual(expanded);
      expect(weights.size).toBe(expanded.length - 1);
    }
  });

  it("changes nothing when turned off or when nothing matches", () => {
    const c = chat();
    expect(c.expand(["coffe"], { docs: 0, terms: 5, weight: 0.5 })).toEqual({ terms: ["coffe"], weights: new Map() });
    expect(c.expand(["zebra"], { docs: 3, terms: 5, weight: 0.5 })).toEqual({ terms: ["zebra"], weights: new Map() });
  });
});
