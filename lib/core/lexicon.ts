// Word meaning for keyword recall without a model: a lexicon says which other words may
// stand for a query word (its synonyms, and the more general words it is a kind of), so a
// question about a "puppy" can reach a turn about a "dog". The search service adds them to
// the BM25 query at a reduced weight when the deps hold one (bench/retrieval.ts measures it).

export interface Lexicon {
  /** Name of the source, for benchmarks and health. */
  readonly name: string;
  /**
   * Words related to `word` (lower case, as written): the members of its first `senses`
   * meanings, and with `hypernyms` the members of the meanings one level more general.
   * Single words only, lower case, `word` itself excluded.
   */
  related(word: string, options: { senses: number; hypernyms: boolean }): string[];
}
