// Summarises V8 .cpuprofile files (node --cpu-prof): the functions with the most self time,
// and the most inclusive time, so a load run says where the server spent its CPU.
//
//   node_modules/.bin/node bench/cpuprofile-top.ts FILE.cpuprofile [--top 30] [--filter lib/]

import { readFileSync } from "node:fs";
import { parseBenchArgs } from "./args.ts";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseBenchArgs(import.meta.url, { allowPositionals: true, options: { top: { type: "string", default: "30" }, filter: { type: "string" } } });
const top = Number(values.top);

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const label = (n: Node) => {
    const f = n.callFrame;
    const url = f.url.replace(/^file:\/\/.*?\/(lib|bench|node_modules|test)\//, "$1/");
    return `${f.functionName || "(anonymous)"} ${url ? `${url}:${f.lineNumber + 1}` : ""}`.trim();
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    self.set(label(n), (self.get(label(n)) ?? 0) + us);
    // Inclusive: each distinct frame on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + us);
    }
  }
  const show = (title: string, m: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    const list = [...m].filter(([l]) => !values.filter || l.includes(values.filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [l, us] of list) process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${l}\n`);
  };
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
  // Self time by where the code lives: a package, a lib/ folder, WebAssembly, the runtime.
  const area = new Map<string, number>();
  for (const [l, us] of self) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(l) ?? /\b(lib\/[^/]+(?:\/[^/:]+)?)/.exec(l) ?? /(wasm)/.exec(l) ?? /(node:[a-z_/]+)/.exec(l);
    const k = m ? m[1]! : l.startsWith("(") ? l.split(" ")[0]! : "other";
    area.set(k, (area.get(k) ?? 0) + us);
  }
  show("self time by area", area);
  show("self time", self);
  show("inclusive time", incl);
}
