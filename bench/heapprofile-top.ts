// Summarises V8 .heapprofile files (bench/search.ts --alloc-prof): the functions that
// allocated the most bytes themselves, and with what they called, so a run says where the
// garbage collector's work comes from.
//
//   node_modules/.bin/node bench/heapprofile-top.ts FILE.heapprofile [--top 30] [--calls N]
//
// --calls divides the bytes by the number of calls profiled, as bytes per call.

import { readFileSync } from "node:fs";
import { parseBenchArgs } from "./args.ts";

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const { values, positionals } = parseBenchArgs(import.meta.url, { allowPositionals: true, options: { top: { type: "string", default: "30" }, calls: { type: "string" } } });
const top = Number(values.top);
const calls = values.calls ? Number(values.calls) : undefined;

const label = (n: Node) => {
  const f = n.callFrame;
  const url = f.url.replace(/^file:\/\/.*?\/(lib|bench|node_modules|test)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${url ? `${url}:${f.lineNumber + 1}` : ""}`.trim();
};
const size = (bytes: number) => {
  const b = calls ? bytes / calls : bytes;
  return b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MB` : `${(b / 1024).toFixed(1)} KB`;
};

for (const file of positionals) {
  const { head } = JSON.parse(readFileSync(file, "utf8")) as { head: Node };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  // Each node's inclusive bytes count once per distinct frame on its stack.
  const walk = (n: Node, stack: string[]): number => {
    const l = label(n);
    self.set(l, (self.get(l) ?? 0) + n.selfSize);
    total += n.selfSize;
    let sum = n.selfSize;
    for (const c of n.children) sum += walk(c, [...stack, l]);
    if (!stack.includes(l)) incl.set(l, (incl.get(l) ?? 0) + sum);
    return sum;
  };
  walk(head, []);
  const print = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [l, b] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${size(b).padStart(10)}  ${((100 * b) / total).toFixed(1).padStart(5)}%  ${l}`);
  };
  console.log(`${file}: ${size(total)} allocated${calls ? " per call" : ""} (sampled)`);
  print("self", self);
  print("inclusive", incl);
}
