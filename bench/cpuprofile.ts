// Reading V8 .cpuprofile files (node --cpu-prof, bench/server-profile.ts, bench/search.ts
// --cpu-prof) for bench/cpuprofile-top.ts and bench/cpuprofile-diff.ts: each function's self
// and inclusive time, keyed by a label that names the function and where it lives.

import { readFileSync } from "node:fs";

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Per function label, its self and inclusive time in µs, and the time sampled in all. */
export interface ProfileTimes {
  self: Map<string, number>;
  inclusive: Map<string, number>;
  totalUs: number;
}

/** A frame's label: its function's name, and its file (below lib/, bench/, node_modules/ or test/) and line, 1-based. */
export function frameLabel(n: ProfileNode): string {
  const f = n.callFrame;
  const url = f.url.replace(/^file:\/\/.*?\/(lib|bench|node_modules|test)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${url ? `${url}:${f.lineNumber + 1}` : ""}`.trim();
}

export function readProfile(file: string): Profile {
  return JSON.parse(readFileSync(file, "utf8")) as Profile;
}

/**
 * Self and inclusive time per function label. A sample counts the time since the sample before
 * it (its time delta) for the frame it caught, and for every distinct label on that frame's
 * stack once (a recursive function's inclusive time is not counted twice).
 */
export function profileTimes(p: Profile): ProfileTimes {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  let totalUs = 0;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    totalUs += us;
    const label = frameLabel(byId.get(id)!);
    self.set(label, (self.get(label) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = frameLabel(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + us);
    }
  }
  return { self, inclusive, totalUs };
}

/** Self time by where the code lives: a package, a lib/ folder, WebAssembly, the runtime. */
export function areaTimes(self: ReadonlyMap<string, number>): Map<string, number> {
  const area = new Map<string, number>();
  for (const [l, us] of self) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(l) ?? /\b(lib\/[^/]+(?:\/[^/:]+)?)/.exec(l) ?? /(wasm)/.exec(l) ?? /(node:[a-z_/]+)/.exec(l);
    const k = m ? m[1]! : l.startsWith("(") ? l.split(" ")[0]! : "other";
    area.set(k, (area.get(k) ?? 0) + us);
  }
  return area;
}
