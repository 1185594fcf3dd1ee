import { afterAll, describe, expect, it } from "vitest";
import { Bm25Corpus } from "./bm25.ts";
import { DEFAULT_LIMITS, denseSums, setDenseSums } from "./bm25-sums.ts";
import { compileWat, embeddedBinary, WASM_SOURCES } from "../../test/wasm/build.ts";
import { mulberry32 } from "../../test/fixtures/random.ts";

afterAll(() => {
  setDenseSums("wasm");
});

describe("BM25's dense sums in WebAssembly", () => {
  it("embeds the binary bm25-sums.wat compiles to (npm run build:wasm)", async () => {
    for (const source of WASM_SOURCES) expect(embeddedBinary(source)).toEqual(await compileWat(source.wat));
  });

  it("runs here: Node compiles the kernel", () => {
    expect(setDenseSums("wasm")).not.toBeNull();
    expect(denseSums()).not.toBeNull();
  });

  /**
   * Two users of common words and rarer tags, searched in turn while turns are added, replaced
   * and removed: every searchExpanded answer must be expand() then an exhaustive search()'s (the
   * JavaScript reference), with postings kept in a small arena that fills and starts over, copied
   * for one sum, or copied again after a write changed their impacts.
   */
  it("gives the JavaScript reference's answers to the bit, through arena refills, writes and two users", () => {
    const sums = setDenseSums("wasm", { minPostings: 0, residentMin: 300, arenaBytes: 128 << 10, arenaFirstBytes: 4 << 10 })!;
    const r = mulberry32(21);
    const common = ["alpha", "bravo", "delta", "kilo", "lima", "mike", "oscar"];
    const turn = () => {
      const words = Array.from({ length: 2 + Math.floor(r() * 8) }, () => common[Math.floor(r() * common.length)]!);
      words.push(`tag${Math.floor(r() * 300)}`, `mark${Math.floor(r() * 200)}`);
      return words.join(" ");
    };
    const users = [new Bm25Corpus(), new Bm25Corpus()];
    const next = [0, 0];
    const add = (u: number) => {
      const i = next[u]!++;
      users[u]!.add({ id: `t${i}`, sessionId: `s${i % 4}`, seq: i, name: "Ann", createdAt: Math.floor(r() * 500) * 1000 }, turn());
    };
    for (let i = 0; i < 3000; i++) add(0);
    for (let i = 0; i < 1500; i++) add(1);
    let compared = 0;
    let copiesBefore = 0;
    // Searches by how many passes found the blocks' bests: one where the kernel kept them while
    // it added the feedback's rarer words, two where a common word was added.
    const passes: number[] = [];
    for (let q = 0; q < 60; q++) {
      const u = q % 2;
      const c = users[u]!;
      const query = Array.from({ length: 1 + (q % 3) }, () => common[Math.floor(r() * common.length)]!);
      // Other parameters now and then: every impact is computed anew, and copied again.
      const params = q % 10 === 9 ? { k1: 0.9, b: 0.75 } : { k1: 1.2, b: 0.3 };
      const feedback = { docs: 1 + (q % 4), terms: 1 + (q % 3), weight: 0.3 + (q % 5) / 5 };
      for (const sessionId of [undefined, "s2"]) {
        const limit = [1, 10, 120][q % 3]!;
        const { terms: expanded, weights: added } = c.expand(query, { ...feedback, sessionId, params });
        const hits = c.search(expanded, { limit, sessionId, params, weights: added, exhaustive: true });
        const passesBefore = sums.passes;
        expect(c.searchExpanded(query, { ...feedback, limit, sessionId, params })).toEqual({ terms: expanded, weights: added, hits });
        passes[sums.passes - passesBefore] = (passes[sums.passes - passesBefore] ?? 0) + 1;
        compared += hits.length;
      }
      // The same search again, with nothing written: its common words are resident, not copied again.
      if (q === 10) {
        copiesBefore = sums.copies;
        c.searchExpanded(query, { ...feedback, limit: 10, params });
        expect(sums.copies).toBe(copiesBefore);
      }
      // Writes between searches: appended turns (new impacts), a replaced turn, removals (reused slots).
      if (q % 5 === 4) {
        for (let k = 0; k < 20; k++) add(u);
        c.add({ id: "t5", sessionId: "s1", seq: 5, name: "Ann", createdAt: 7000 }, turn());
        c.remove(`t${Math.floor(r() * next[u]!)}`);
      }
    }
    expect(compared).toBeGreaterThan(3_000);
    expect(passes[1]).toBeGreaterThan(50);
    expect(passes[2]).toBeGreaterThan(5);
    expect(passes[1]! + passes[2]!).toBe(120);
    expect(sums.maxesKept).toBeGreaterThan(0);
    // Postings were kept (copies fewer than sums of common words) and copied again after the
    // arena filled: it holds 128 KiB, a common word about 22 KiB of the first user, 11 of the
    // second, and their fourteen words do not fit.
    expect(sums.copies).toBeGreaterThan(30);
    expect(sums.resets).toBeGreaterThan(3);
  });

  it("lays its memory out once with the arena's whole room: copies and refills do not grow it", () => {
    // V8 counts the memory as external: growth after a load started full collections.
    const sums = setDenseSums("wasm", { minPostings: 0, residentMin: 50, arenaBytes: 256 << 10, arenaFirstBytes: 4 << 10 })!;
    const r = mulberry32(5);
    const c = new Bm25Corpus();
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`);
    const add = (i: number) => c.add({ id: `t${i}`, sessionId: "s", seq: i, name: null, createdAt: i }, Array.from({ length: 6 }, () => words[Math.floor(r() * words.length)]!).join(" "));
    for (let i = 0; i < 4000; i++) add(i);
    c.searchExpanded([words[0]!], { docs: 1, terms: 1, weight: 0.3, limit: 10 });
    const laidOut = sums.scores.buffer.byteLength;
    // Past the arena's 256 KiB: about 7 KiB a word, each copied again after every write.
    for (let q = 0; q < 200; q++) {
      c.searchExpanded([words[q % words.length]!, words[(q * 7) % words.length]!], { docs: 1, terms: 1, weight: 0.3, limit: 10 });
      if (q % 10 === 9) add(4000 + q);
    }
    expect(sums.resets).toBeGreaterThan(2);
    expect(sums.scores.buffer.byteLength).toBe(laidOut);
  });

  it("leaves a query whose words reach fewer than minPostings postings to the JavaScript loop", () => {
    const c = new Bm25Corpus();
    for (let i = 0; i < 600; i++) c.add({ id: `m${i}`, sessionId: "s", seq: i, name: "Bo", createdAt: i }, `red green ${i % 2 ? "blue" : "plum"} w${i % 40}`);
    const search = () => c.searchExpanded(["red", "blue"], { docs: 3, terms: 4, weight: 0.5, limit: 20 });
    // red: 600 postings, blue: 300.
    const few = setDenseSums("wasm", { minPostings: 901, residentMin: 100, arenaBytes: 1 << 20, arenaFirstBytes: 1 << 16 })!;
    const js = search();
    expect(few.adds).toBe(0);
    const enough = setDenseSums("wasm", { minPostings: 900, residentMin: 100, arenaBytes: 1 << 20, arenaFirstBytes: 1 << 16 })!;
    expect(search()).toEqual(js);
    expect(enough.adds).toBeGreaterThanOrEqual(2);
  });

  it("answers as the JavaScript loop does where WebAssembly is off", () => {
    const r = mulberry32(5);
    const words = ["red", "green", "blue", "cyan", "plum"];
    const c = new Bm25Corpus();
    for (let i = 0; i < 4000; i++) {
      const text = [...Array.from({ length: 3 + Math.floor(r() * 6) }, () => words[Math.floor(r() * words.length)]!), `w${Math.floor(r() * 500)}`].join(" ");
      c.add({ id: `m${i}`, sessionId: `s${i % 7}`, seq: i, name: "Bo", createdAt: i * 1000 }, text);
    }
    const queries = Array.from({ length: 30 }, (_, q) => [words[q % 5]!, words[(q * 3 + 1) % 5]!]);
    const run = () => queries.map((q) => c.searchExpanded(q, { docs: 3, terms: 4, weight: 0.5, limit: 40, params: { k1: 1.2, b: 0.3 } }));
    setDenseSums("wasm", { minPostings: 0, residentMin: 500, arenaBytes: 1 << 20, arenaFirstBytes: 64 << 10 });
    const wasm = run();
    expect(setDenseSums("js")).toBeNull();
    expect(denseSums()).toBeNull();
    const js = run();
    expect(js).toEqual(wasm);
    expect(js.flatMap((x) => x.hits).length).toBe(30 * 40);
  });

  /**
   * A common word's first copy goes into pages the memory's layout already wrote: 140k postings
   * (1.7 MB, about 410 pages of 4 KB) into new pages fault each page in; after the layout's
   * pass they fault none. The count is the process's: other threads (V8's collector and
   * helpers, a busy CI machine's) fault meanwhile, now and then by hundreds. So the copy is
   * tried five times on fresh memories, and the fewest faults of the five are read: noise only
   * adds to a try, while new pages fault in every try.
   */
  it("maps the arena's first room when it lays the memory out, not in a word's first copy", () => {
    const n = 140_000;
    const slots = Int32Array.from({ length: n }, (_, i) => (i * 7) % 100_000);
    const impacts = Float64Array.from({ length: n }, (_, i) => 1 + (i % 13) / 8);
    const tries = Array.from({ length: 5 }, () => {
      const sums = setDenseSums("wasm", DEFAULT_LIMITS)!;
      sums.reserve(100_000);
      const before = process.resourceUsage().minorPageFault;
      sums.add({ slots, resident: null }, impacts, 0.5);
      const faults = process.resourceUsage().minorPageFault - before;
      expect(sums.copies).toBe(1);
      expect(sums.scores[7]).toBe(0.5 * impacts[1]! + 0.5 * impacts[100_001]!);
      return faults;
    });
    expect(Math.min(...tries)).toBeLessThan(100);
  });
});
