// Local embedder benchmark: throughput, and turn-level retrieval on LoCoMo (read in
// place, never copied into the project) for the default and a few alternative settings.
//
//   node_modules/.bin/node bench/embedder.ts [dataDir]
//
// Recall@k: for each question, the fraction of its evidence turns ranked in the top k
// of that conversation's turns by cosine, averaged over questions (questions whose
// evidence ids match no turn are skipped).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalEmbedder, type LocalEmbedderOptions } from "../lib/adapters/local/embedder.ts";
import { positionalDir } from "./args.ts";
import { quantile } from "./stats.ts";

const dataDir = positionalDir(import.meta.url, "/work/shared/data/locomo-dev");

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}
interface Question {
  question: string;
  evidence: string[];
  category: number;
}
interface Conversation {
  turns: { id: string; text: string }[];
  questions: Question[];
}

const CATEGORIES: Record<number, string> = { 1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial" };

function load(dir: string): Conversation[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => {
      const conv = JSON.parse(readFileSync(join(dir, f), "utf8")) as Record<string, unknown>;
      const sessions = Object.keys(conv)
        .filter((k) => /^session_\d+$/.test(k) && Array.isArray(conv[k]))
        .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
      const turns = sessions.flatMap((k) =>
        (conv[k] as Turn[]).map((t) => ({
          id: t.dia_id,
          text: `${t.speaker}: ${t.text}` + (t.blip_caption ? ` [shares an image: ${t.blip_caption}]` : ""),
        })),
      );
      return { turns, questions: conv.qa as Question[] };
    });
}

async function throughput(options: LocalEmbedderOptions, texts: string[], runs = 7): Promise<number> {
  const embedder = createLocalEmbedder(options);
  await embedder.embed(texts.slice(0, 500)); // warm up the JIT and the stem cache
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    await embedder.embed(texts);
    rates.push(texts.length / ((performance.now() - start) / 1000));
  }
  return quantile(rates, 0.5);
}

interface Recall {
  n: number;
  r10: number;
  r50: number;
}

async function recall(options: LocalEmbedderOptions, convs: Conversation[]): Promise<Map<string, Recall>> {
  const embedder = createLocalEmbedder(options);
  const byCat = new Map<string, Recall>();
  const bump = (key: string, r10: number, r50: number) => {
    const acc = byCat.get(key) ?? { n: 0, r10: 0, r50: 0 };
    acc.n++;
    acc.r10 += r10;
    acc.r50 += r50;
    byCat.set(key, acc);
  };
  for (const conv of convs) {
    const turnVectors = await embedder.embed(conv.turns.map((t) => t.text));
    const index = new Map(conv.turns.map((t, i) => [t.id, i]));
    const questionVectors = await embedder.embed(conv.questions.map((q) => q.question));
    conv.questions.forEach((q, qi) => {
      const evidence = q.evidence.flatMap((e) => e.split(/[;\s]+/)).filter((e) => index.has(e));
      if (evidence.length === 0) return;
      const qv = questionVectors[qi]!;
      const scores = turnVectors.map((tv, i) => {
        let dot = 0;
        for (let d = 0; d < qv.length; d++) dot += qv[d]! * tv[d]!;
        return { i, dot };
      });
      scores.sort((a, b) => b.dot - a.dot || a.i - b.i);
      const rank = new Map(scores.map((s, r) => [s.i, r]));
      const hits = (k: number) => evidence.filter((e) => rank.get(index.get(e)!)! < k).length / evidence.length;
      const r10 = hits(10);
      const r50 = hits(50);
      bump("all", r10, r50);
      bump(CATEGORIES[q.category] ?? String(q.category), r10, r50);
    });
  }
  return byCat;
}

const VARIANTS: { label: string; options: LocalEmbedderOptions }[] = [
  { label: "default (512, bigram .25, char 3+4 x1)", options: {} },
  { label: "terms only, 65536 (~ exact bag of stems)", options: { dimensions: 65536, bigramWeight: 0, charWeight: 0 } },
  { label: "default features, 65536 (no collisions)", options: { dimensions: 65536 } },
  { label: "terms only, 512", options: { bigramWeight: 0, charWeight: 0 } },
  { label: "terms + bigrams .25, 512", options: { charWeight: 0 } },
  { label: "terms + char 3+4 x1, 512", options: { bigramWeight: 0 } },
  { label: "dims 256", options: { dimensions: 256 } },
  { label: "dims 384", options: { dimensions: 384 } },
  { label: "dims 768", options: { dimensions: 768 } },
  { label: "dims 1024", options: { dimensions: 1024 } },
  { label: "char 3 only", options: { charSizes: [3] } },
  { label: "char 3+4+5", options: { charSizes: [3, 4, 5] } },
  { label: "char weight .5", options: { charWeight: 0.5 } },
  { label: "char weight 1.5", options: { charWeight: 1.5 } },
  { label: "bigram weight .5", options: { bigramWeight: 0.5 } },
  { label: "bigram weight .5, char .5 (v1 draft)", options: { bigramWeight: 0.5, charWeight: 0.5 } },
  { label: "bigram .5, char .5, 384 (v1 draft)", options: { dimensions: 384, bigramWeight: 0.5, charWeight: 0.5 } },
];

const pct = (x: number) => (100 * x).toFixed(1).padStart(5);

async function main(): Promise<void> {
  const convs = load(dataDir);
  const texts = convs.flatMap((c) => c.turns.map((t) => t.text));
  const words = texts.reduce((n, t) => n + t.split(/\s+/).length, 0) / texts.length;
  console.log(`LoCoMo: ${convs.length} conversations, ${texts.length} turns (${words.toFixed(1)} words on average), ${convs.reduce((n, c) => n + c.questions.length, 0)} questions\n`);

  const defaultRate = await throughput({}, texts);
  console.log(`default embedder: ${Math.round(defaultRate)} texts/s (${(1000 / defaultRate).toFixed(4)} ms per text, median of 7 runs)\n`);

  const cats = ["all", ...Object.values(CATEGORIES)];
  console.log(["variant".padEnd(44), "model".padEnd(34), ...cats.map((c) => c.padStart(13)), "texts/s".padStart(9)].join(" "));
  console.log(["".padEnd(44), "".padEnd(34), ...cats.map(() => "R@10  R@50".padStart(13)), ""].join(" "));
  for (const { label, options } of VARIANTS) {
    const byCat = await recall(options, convs);
    const rate = await throughput(options, texts, 3);
    const cells = cats.map((c) => {
      const r = byCat.get(c);
      return r ? `${pct(r.r10 / r.n)} ${pct(r.r50 / r.n)}`.padStart(13) : "-".padStart(13);
    });
    console.log([label.padEnd(44), createLocalEmbedder(options).model.padEnd(34), ...cells, String(Math.round(rate)).padStart(9)].join(" "));
  }
  const n = (await recall({}, convs)).get("all")!.n;
  console.log(`\n(${n} questions with evidence found)`);
}

await main();
