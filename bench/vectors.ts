// Seeded random unit vectors for the vector benchmarks (bench/vector-index.ts, bench/vector-grow.ts,
// bench/vector-build.ts), and the figures' formatting they share.

/** A xorshift32 generator in [0, 1) from a non-zero seed. */
export function xorshift(seed: number): () => number {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** A random direction in `dims` dimensions, unit length. */
export function unitVector(dims: number, random: () => number): Float32Array {
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    // Sum of uniforms: near-Gaussian, so directions are spread evenly enough.
    const x = random() + random() + random() - 1.5;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i] = v[i]! / norm;
  return v;
}

/** Milliseconds as the vector benchmarks print them: two decimals below 10, one above. */
export function fmtMs(ms: number): string {
  return ms.toFixed(ms < 10 ? 2 : 1);
}

/** This process' resident set size in MiB, rounded. */
export function rssMb(): string {
  return (process.memoryUsage().rss / 2 ** 20).toFixed(0);
}
