// Two V8 .cpuprofile files set side by side, function by function (issue 8): each function's
// self time a call in A and in B, and B less A, the largest differences first. The growth
// rounds of BENCHMARKS.md read where a 100k-turn user's context call spends its extra time
// this way, from bench/server-profile.ts's profiles of the same calls on a 1k and a 100k data
// directory (A and B).
//
//   node_modules/.bin/node bench/cpuprofile-diff.ts A.cpuprofile B.cpuprofile [--calls-a 3000] [--calls-b 3000] [--top 30] [--filter lib/] [--inclusive]
//
// --calls-a and --calls-b divide each profile's times by the calls it holds (1 by default: the
// times in all, in µs). --inclusive compares inclusive times instead of self times. --filter
// keeps the functions whose label holds the text. The first lines are the totals sampled, a
// call's (idle time included: a server's profile holds its waits).

import { benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { profileTimes, readProfile } from "./cpuprofile.ts";

const { values, positionals } = parseBenchArgs(import.meta.url, {
  allowPositionals: true,
  options: {
    "calls-a": { type: "string", default: "1" },
    "calls-b": { type: "string", default: "1" },
    top: { type: "string", default: "30" },
    filter: { type: "string" },
    inclusive: { type: "boolean", default: false },
  },
});

function usage(message: string): never {
  return benchUsageError(import.meta.url, message);
}

if (positionals.length !== 2) usage(`two profiles are needed, A and B, got ${positionals.length}`);
const callsA = wholeNumber(import.meta.url, "--calls-a", values["calls-a"], 1);
const callsB = wholeNumber(import.meta.url, "--calls-b", values["calls-b"], 1);
const top = wholeNumber(import.meta.url, "--top", values.top, 1);

const read = (file: string) => {
  try {
    return profileTimes(readProfile(file));
  } catch (e) {
    return usage(`${file}: ${(e as Error).message}`);
  }
};
const [fileA, fileB] = positionals as [string, string];
const a = read(fileA);
const b = read(fileB);
const kind = values.inclusive ? "inclusive" : "self";
const timesA = values.inclusive ? a.inclusive : a.self;
const timesB = values.inclusive ? b.inclusive : b.self;

const rows = [...new Set([...timesA.keys(), ...timesB.keys()])]
  .filter((label) => !values.filter || label.includes(values.filter))
  .map((label) => ({ label, a: (timesA.get(label) ?? 0) / callsA, b: (timesB.get(label) ?? 0) / callsB }))
  .sort((x, y) => y.b - y.a - (x.b - x.a) || (x.label < y.label ? -1 : 1));

const us = (x: number) => x.toFixed(1).padStart(9);
process.stdout.write(`A ${fileA}: ${(a.totalUs / callsA).toFixed(1)} µs sampled a call (${callsA} calls)\n`);
process.stdout.write(`B ${fileB}: ${(b.totalUs / callsB).toFixed(1)} µs sampled a call (${callsB} calls)\n`);
process.stdout.write(`\n${kind} time a call, µs: A, B, B less A (largest first)\n`);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`.padStart(9);
for (const r of rows.slice(0, top)) process.stdout.write(`${us(r.a)} ${us(r.b)} ${signed(r.b - r.a)}  ${r.label}\n`);
