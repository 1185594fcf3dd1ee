// Summarises V8 .cpuprofile files (node --cpu-prof): the functions with the most self time,
// and the most inclusive time, so a load run says where the server spent its CPU.
//
//   node_modules/.bin/node bench/cpuprofile-top.ts FILE.cpuprofile [--top 30] [--filter lib/]

import { parseBenchArgs } from "./args.ts";
import { areaTimes, profileTimes, readProfile } from "./cpuprofile.ts";

const { values, positionals } = parseBenchArgs(import.meta.url, { allowPositionals: true, options: { top: { type: "string", default: "30" }, filter: { type: "string" } } });
const top = Number(values.top);

for (const file of positionals) {
  const { self, inclusive, totalUs: total } = profileTimes(readProfile(file));
  const show = (title: string, m: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    const list = [...m].filter(([l]) => !values.filter || l.includes(values.filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [l, us] of list) process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${l}\n`);
  };
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
  show("self time by area", areaTimes(self));
  show("self time", self);
  show("inclusive time", inclusive);
}
