// Local embedder: signed feature hashing, no network and no weights. A text becomes a
// sparse bag of features — stemmed terms, adjacent-term bigrams and character n-grams of
// each word — folded into a fixed number of dimensions with a deterministic hash, then
// L2-normalised. Terms carry exact vocabulary, bigrams some word order, and the character
// n-grams let related forms and typos ("painting"/"painter", "recieve"/"receive") share
// weight. Cosine between two such vectors is a soft keyword overlap, which the hybrid
// recall fuses with full-text search.

import type { Embedder } from "../../core/ports.ts";
import { STOPWORDS, stem, words } from "../../core/text.ts";
import { fnv1a, mix } from "./hash.ts";

export interface LocalEmbedderOptions {
  /** Vector size; default 512 (see bench/embedder.ts). */
  dimensions?: number;
  /** Weight of an adjacent-term bigram relative to a term; default 0.25. */
  bigramWeight?: number;
  /** Total (L2) weight of one word's character n-grams relative to its term; default 1. */
  charWeight?: number;
  /** Character n-gram sizes; default [3, 4]. */
  charSizes?: number[];
}

// Chosen on LoCoMo turn retrieval (bench/embedder.ts): 512 dimensions sit within ~2 points
// of R@10 of a collision-free 65536, where 256/384 lose 4-5; more n-gram weight than
// bigram weight helped at every size tried.
const DEFAULTS = { dimensions: 512, bigramWeight: 0.25, charWeight: 1, charSizes: [3, 4] };
const SCHEME = "strata-hash-v1";

// Feature namespaces keep a term, a bigram and an n-gram with the same letters apart.
const SEED_TERM = 0x811c9dc5;
const SEED_BIGRAM = 0x5bd1e995;
const SEED_CHAR = 0x27d4eb2f;

/**
 * Builds the embedder. Vectors are unit length; a text with no content word (empty,
 * punctuation, stopwords only) embeds to the zero vector, whose cosine with anything the
 * vector indexes take as 0.
 */
export function createLocalEmbedder(options: LocalEmbedderOptions = {}): Embedder {
  const dimensions = options.dimensions ?? DEFAULTS.dimensions;
  const bigramWeight = options.bigramWeight ?? DEFAULTS.bigramWeight;
  const charWeight = options.charWeight ?? DEFAULTS.charWeight;
  const charSizes = options.charSizes ?? DEFAULTS.charSizes;
  if (!Number.isInteger(dimensions) || dimensions < 8) throw new RangeError(`dimensions must be an integer >= 8, got ${dimensions}`);

  // The model name pins everything that changes vectors, so vectors of another scheme
  // are never compared with new ones.
  const custom =
    bigramWeight !== DEFAULTS.bigramWeight || charWeight !== DEFAULTS.charWeight || charSizes.join() !== DEFAULTS.charSizes.join();
  const model = `${SCHEME}-${dimensions}` + (custom ? `-b${bigramWeight}-c${charWeight}-n${charSizes.join("")}` : "");

  function add(vector: Float32Array, h: number, weight: number): void {
    const m = mix(h);
    const i = m % dimensions;
    // Sign from a bit the modulo barely uses, so colliding features cancel on average.
    vector[i] = vector[i]! + (m & 0x80000000 ? -weight : weight);
  }

  function embedOne(text: string): Float32Array {
    const vector = new Float32Array(dimensions);
    const content = words(text).filter((w) => !STOPWORDS.has(w));
    if (content.length === 0) return vector;

    // Sublinear tf: a term said five times counts 1 + ln 5, not 5.
    const stems = content.map(stem);
    const tf = new Map<string, number>();
    for (const s of stems) tf.set(s, (tf.get(s) ?? 0) + 1);
    for (const [s, n] of tf) add(vector, fnv1a(s, 0, s.length, SEED_TERM), 1 + Math.log(n));

    if (bigramWeight > 0) {
      for (let i = 1; i < stems.length; i++) {
        const pair = `${stems[i - 1]} ${stems[i]}`;
        add(vector, fnv1a(pair, 0, pair.length, SEED_BIGRAM), bigramWeight);
      }
    }

    // Character n-grams of each distinct surface word with boundary markers ("^paint$");
    // one word's grams share charWeight of L2 mass, so long words do not outweigh short ones.
    if (charWeight > 0) {
      for (const w of new Set(content)) {
        const marked = `^${w}$`;
        let grams = 0;
        for (const n of charSizes) grams += Math.max(0, marked.length - n + 1);
        if (grams === 0) continue;
        const weight = charWeight / Math.sqrt(grams);
        for (const n of charSizes) {
          for (let i = 0; i + n <= marked.length; i++) add(vector, fnv1a(marked, i, i + n, SEED_CHAR ^ n), weight);
        }
      }
    }

    let norm = 0;
    for (let i = 0; i < dimensions; i++) norm += vector[i]! * vector[i]!;
    if (norm === 0) return vector;
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < dimensions; i++) vector[i] = vector[i]! * inv;
    return vector;
  }

  return {
    model,
    dimensions,
    async embed(texts: string[]): Promise<Float32Array[]> {
      return texts.map(embedOne);
    },
  };
}
