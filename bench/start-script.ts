// What `npm start` runs (package.json's start script), for the benchmarks that start or time the
// server as it is started: bench/peers.ts gives every server it starts the script's Node options,
// bench/search.ts prints them beside its own.

import { readFileSync } from "node:fs";

/** package.json's start script. */
export function npmStartScript(): string {
  return JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).scripts.start;
}

/** The Node options the start script passes before the entry point (e.g. the young generation's size). */
export function startNodeFlags(startScript: string = npmStartScript()): string[] {
  const words = startScript.trim().split(/\s+/);
  if (words[0] !== "node") throw new Error(`package.json's start script does not start with node: ${startScript}`);
  const flags: string[] = [];
  for (const w of words.slice(1)) {
    if (!w.startsWith("--")) break;
    flags.push(w);
  }
  return flags;
}
