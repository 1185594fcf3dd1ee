// The context call's last step counts its prompt exactly (Tokenizer.countJoined). This times
// that count for prompts like a context call's on a user of --size generated turns: 60 turns
// recalled at random from the whole history (each call recalls turns its tokenizer's cache
// has mostly not seen on a large user) and the session's last 30, with their headers. Two ways,
// side by side in one process, in alternating rounds:
//   strings  every line a string: the tokenizer counts each line it has not cached;
//   known    each turn's line as a KnownPiece (speaker, content and its count from ingest,
//            separator): only the content's first and last words are counted.
// Both must give the same count for every prompt (checked first).
//
//   node bench/tokenizer.ts [--size 100000] [--prompts 200] [--rounds 9]

import type { KnownPiece } from "../lib/core/ports.ts";
import { createLocalTokenizer } from "../lib/adapters/local/tokenizer.ts";
import { quantile } from "./stats.ts";
import { generateMessages, mulberry32 } from "./peers/data.ts";
import { parseBenchArgs } from "./args.ts";

const { values: opts } = parseBenchArgs(import.meta.url, { options: { size: { type: "string", default: "100000" }, prompts: { type: "string", default: "200" }, rounds: { type: "string", default: "9" } } });
const size = Number(opts.size);
const perRound = Number(opts.prompts);
const rounds = Number(opts.rounds);
for (const [name, v] of [["size", size], ["prompts", perRound], ["rounds", rounds]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`tokenizer bench: --${name} must be a positive integer\n`);
    process.exit(2);
  }
}

const counter = createLocalTokenizer();
const turns: { speaker: string; content: string; tokens: number }[] = [];
for (let s = 0; s * 100 < size; s++) {
  for (const m of generateMessages({ seed: 1000 + s, count: Math.min(100, size - s * 100), profile: "chat", prefix: "g", start: s * 100 })) {
    turns.push({ speaker: `${m.name ?? m.role}: `, content: m.content, tokens: counter.count(m.content) });
  }
}
process.stdout.write(`${turns.length.toLocaleString()} turns generated and counted\n`);

type Line = { header: string } | (typeof turns)[number];
const r = mulberry32(3);
// Every round's prompts are new ones: a prompt counted twice would be counted from the cache.
const prompts: Line[][] = Array.from({ length: 50 + 2 * 500 + 2 * perRound * rounds }, () => [
  { header: "## Relevant earlier messages" },
  ...Array.from({ length: 60 }, () => turns[Math.floor(r() * turns.length)]!),
  { header: "## Recent messages" },
  ...turns.slice(-30),
]);
const asStrings = (p: Line[]): string[] => p.map((l, i) => ("header" in l ? `${l.header}\n` : `${l.speaker}${l.content}${i === p.length - 1 ? "" : "\n"}`));
const asKnown = (p: Line[]): (string | KnownPiece)[] =>
  p.map((l, i) => ("header" in l ? `${l.header}\n` : { before: l.speaker, text: l.content, tokens: l.tokens, after: i === p.length - 1 ? "" : "\n" }));

const ways = { strings: createLocalTokenizer(), known: createLocalTokenizer() };
for (const p of prompts.slice(0, 50)) {
  const want = counter.count(asStrings(p).join(""));
  const got = { strings: ways.strings.countJoined!(asStrings(p)), known: ways.known.countJoined!(asKnown(p)) };
  if (got.strings !== want || got.known !== want) throw new Error(`counts differ: whole ${want}, strings ${got.strings}, known ${got.known}`);
}
process.stdout.write("both ways give the whole prompt's count (50 prompts checked)\n");

// 500 prompts each, untimed: the first calls run before V8 has compiled the loops.
const WARM = 500;
let at = 50;
for (const way of ["strings", "known"] as const) {
  for (const p of prompts.slice(at, at + WARM)) {
    if (way === "strings") ways.strings.countJoined!(asStrings(p));
    else ways.known.countJoined!(asKnown(p));
  }
  at += WARM;
}
const times = { strings: [] as number[], known: [] as number[] };
for (let round = 0; round < rounds; round++) {
  for (const way of round % 2 ? (["known", "strings"] as const) : (["strings", "known"] as const)) {
    const batch = prompts.slice(at, at + perRound);
    at += perRound;
    const t = performance.now();
    for (const p of batch) {
      if (way === "strings") ways.strings.countJoined!(asStrings(p));
      else ways.known.countJoined!(asKnown(p));
    }
    times[way].push((performance.now() - t) / perRound);
  }
}
const median = (xs: readonly number[]) => quantile(xs, 0.5);
process.stdout.write(`ms per prompt (median of ${rounds} rounds of ${perRound}): strings ${median(times.strings).toFixed(3)}, known ${median(times.known).toFixed(3)}; ratio ${(median(times.strings) / median(times.known)).toFixed(2)}\n`);
