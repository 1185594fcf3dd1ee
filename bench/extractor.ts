// Local extractor benchmark: messages/s over the LoCoMo dialog turns (read in place),
// entity and relation counts, and a few sample extractions to eyeball.
//
//   node_modules/.bin/node bench/extractor.ts [dataDir]

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalExtractor } from "../lib/adapters/local/extractor-host.ts";
import { positionalDir } from "./args.ts";

const dataDir = positionalDir(import.meta.url, "/work/shared/data/locomo-dev");

interface Turn {
  speaker: string;
  text: string;
}

// LoCoMo session dates look like "1:56 pm on 8 May, 2023".
function sessionTime(raw: unknown): string {
  const m = /(\d+):(\d+) (am|pm) on (\d+) (\w+),? (\d{4})/.exec(String(raw));
  if (!m) return new Date(0).toISOString();
  const hour = (Number(m[1]) % 12) + (m[3] === "pm" ? 12 : 0);
  return new Date(`${m[5]} ${m[4]}, ${m[6]} ${hour}:${m[2]} UTC`).toISOString();
}

const messages = readdirSync(dataDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .flatMap((f) => {
    const conv = JSON.parse(readFileSync(join(dataDir, f), "utf8")) as Record<string, unknown>;
    return Object.keys(conv)
      .filter((k) => /^session_\d+$/.test(k))
      .flatMap((k) => (conv[k] as Turn[]).map((t) => ({ content: t.text, name: t.speaker, createdAt: sessionTime(conv[`${k}_date_time`]) })));
  });

const extractor = createLocalExtractor();
await extractor.extract(messages.slice(0, 200)); // warm up
const rates: number[] = [];
let results = await extractor.extract(messages);
for (let r = 0; r < 3; r++) {
  const start = performance.now();
  results = await extractor.extract(messages);
  rates.push(messages.length / ((performance.now() - start) / 1000));
}
rates.sort((a, b) => a - b);
const rate = rates[1]!;
console.log(`${messages.length} messages: ${Math.round(rate)} messages/s (${(1000 / rate).toFixed(2)} ms each, median of 3 runs), extractor ${extractor.version}`);

const byType = new Map<string, number>();
let relations = 0;
let typed = 0;
for (const e of results) {
  for (const x of e.entities) byType.set(x.type, (byType.get(x.type) ?? 0) + 1);
  relations += e.relations.length;
  typed += e.relations.filter((r) => r.type !== "mentioned" && r.type !== "co_mentioned").length;
}
const per = (n: number) => (n / messages.length).toFixed(2);
console.log(`per message: ${[...byType].map(([t, n]) => `${t} ${per(n)}`).join(", ")}; relations ${per(relations)} (verb-typed ${per(typed)})`);

for (const i of [1, 3, 11, 40, 120, 400, 1000]) {
  const m = messages[i];
  const e = results[i];
  if (!m || !e) continue;
  console.log(`\n${m.name} @ ${m.createdAt.slice(0, 10)}: ${m.content}`);
  console.log(`  entities: ${e.entities.map((x) => `${x.type}:${x.name}`).join(" | ")}`);
  console.log(`  relations: ${e.relations.filter((r) => r.type !== "mentioned").map((r) => `${r.from} -${r.type}-> ${r.to}`).join(" | ")}`);
}
