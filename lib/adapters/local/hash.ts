// Small non-cryptographic hashes shared by the embedded embedder and vector index.

/** FNV-1a over the UTF-16 code units of s[start, end), from a seed. */
export function fnv1a(s: string, start: number, end: number, seed: number): number {
  let h = seed;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** murmur3 finaliser: spreads FNV's weak low bits before they pick a dimension. */
export function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
