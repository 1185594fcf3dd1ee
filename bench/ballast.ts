// Memory a server holds and never uses, loaded before it starts (Node's --import): the same
// server, the same user and the same work, in a larger process. A 100k-turn user's server is
// larger than a 1k-turn user's (RSS about 2 GB against 0.5–0.75, a V8 heap of about 600 MB
// against 80) as well as busier, and on a virtual machine the size alone may cost time: this
// tells how much of the growth ratio's 100k call is the size of the process rather than its work.
//
//   node bench/ab-http.ts --a . --b . --data DIR_1K --env-b NODE_OPTIONS=--import=./bench/ballast.ts --env-b BALLAST_OFF_HEAP_MB=1500
//   node bench/ab-http.ts --a . --b . --data DIR_1K --env-b NODE_OPTIONS=--import=./bench/ballast.ts --env-b BALLAST_HEAP_OBJECTS=4000000
//
// BALLAST_OFF_HEAP_MB: that many MB outside V8's heap, every page written once (resident, as the
// vector matrix and PGlite's memory are; the collector never reads it). BALLAST_HEAP_OBJECTS:
// that many small objects in V8's heap (each an object, a string and an array of one number,
// about 100 bytes in all, as the indexes' records are), which the collector promotes to the old
// generation and then carries. The path in --import is the server's working directory's (the
// checkout's root, where bench/ab-http.ts starts it).

/** A whole number ≥ 0 from the environment variable, 0 when it is unset; exits 2 naming it otherwise. */
function count(name: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`bench/ballast.ts: ${name} must be a whole number ≥ 0, got ${raw}\n`);
    process.exit(2);
  }
  return n;
}

const offHeapMb = count("BALLAST_OFF_HEAP_MB");
const heapObjects = count("BALLAST_HEAP_OBJECTS");
const held: unknown[] = [];
if (offHeapMb > 0) {
  const bytes = new Uint8Array(offHeapMb * 2 ** 20);
  // A zeroed allocation of this size is mapped on first write: write one byte a page.
  for (let at = 0; at < bytes.length; at += 4096) bytes[at] = 1;
  held.push(bytes);
}
if (heapObjects > 0) {
  const objects: { i: number; s: string; t: number[] }[] = new Array(heapObjects);
  for (let i = 0; i < heapObjects; i++) objects[i] = { i, s: `ballast ${i}`, t: [i] };
  held.push(objects);
}
(globalThis as { strataBenchBallast?: unknown[] }).strataBenchBallast = held;
