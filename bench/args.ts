// The bench tools' command lines: node:util's parseArgs, with the tool's header comment as its
// help. `--help` (or `-h`) prints the header and exits 0. A flag the tool does not know, or one
// missing its value, prints the error and the header's command lines, and exits 2, instead of
// ending in a stack trace.

import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** The comment lines at the top of a source file, without their `//` (the tool's description and usage). */
export function headerOf(source: string): string[] {
  const lines: string[] = [];
  for (const line of source.split("\n")) {
    if (!line.startsWith("//")) break;
    lines.push(line.replace(/^\/\/ ?/, ""));
  }
  return lines;
}

/** The header's command lines: from the first line that runs node, with the lines that continue it. */
export function usageOf(header: readonly string[]): string[] {
  const start = header.findIndex((l) => /^\s+(node\b|node_modules\/\.bin\/node\b|npm run\b)/.test(l));
  if (start < 0) return [];
  const out: string[] = [];
  for (let i = start; i < header.length && header[i]!.startsWith(" "); i++) out.push(header[i]!);
  return out;
}

/** parseArgs(config) for the tool at `toolUrl` (its import.meta.url), with --help and a usage on a bad command line. */
export function parseBenchArgs<T extends ParseArgsConfig>(toolUrl: string, config: T): ReturnType<typeof parseArgs<T>> {
  const file = fileURLToPath(toolUrl);
  const argv = config.args ?? process.argv.slice(2);
  const header = () => headerOf(readFileSync(file, "utf8"));
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${header().join("\n")}\n`);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) throw e;
    benchUsageError(toolUrl, (e as Error).message);
  }
}

/** For a command line parseArgs accepts but the tool cannot use (a count that is not one, a missing directory): the message and the header's command lines, exit 2. */
export function benchUsageError(toolUrl: string, message: string): never {
  const file = fileURLToPath(toolUrl);
  const usage = usageOf(headerOf(readFileSync(file, "utf8")));
  process.stderr.write(`${basename(file)}: ${message}\n${usage.length ? `usage:\n${usage.join("\n")}\n` : ""}(--help prints the whole description)\n`);
  process.exit(2);
}

/** For a run that went wrong after its command line was accepted: the tool's name and the message, exit 1. */
export function benchFailure(toolUrl: string, message: string): never {
  process.stderr.write(`${basename(fileURLToPath(toolUrl), ".ts")}: ${message}\n`);
  process.exit(1);
}

/**
 * A tool's positional arguments as whole numbers ≥ 1 (`what` names them in the error), at most
 * `most` of them; none given: `fallback`.
 */
export function positionalCounts(toolUrl: string, what: string, fallback: number[], most = Infinity): number[] {
  const { positionals } = parseBenchArgs(toolUrl, { allowPositionals: true, options: {} });
  const counts = positionals.map(Number);
  if (counts.length > most || counts.some((n) => !Number.isInteger(n) || n < 1)) {
    benchUsageError(toolUrl, `${what} must be ${most === 1 ? "one whole number" : "whole numbers"} ≥ 1, got ${positionals.join(" ")}`);
  }
  return counts.length ? counts : fallback;
}

/** A tool's one positional argument, a directory that exists; none given: `fallback`. */
export function positionalDir(toolUrl: string, fallback: string): string {
  const { positionals } = parseBenchArgs(toolUrl, { allowPositionals: true, options: {} });
  if (positionals.length > 1) benchUsageError(toolUrl, `one data directory at most, got ${positionals.join(" ")}`);
  const dir = positionals[0] ?? fallback;
  if (!existsSync(dir)) benchUsageError(toolUrl, `no such data directory: ${dir}`);
  return dir;
}

/**
 * The value of the tool's `flag` as a whole number of at least `least` (and at most `most`):
 * otherwise the usage error names the flag, what it counts (`of`: "calls", "threads", ...), the
 * range and the value given, and exits 2. An empty value is not taken for 0.
 */
export function wholeNumber(toolUrl: string, flag: string, value: string | undefined, least: number, options: { most?: number; of?: string } = {}): number {
  const most = options.most ?? Infinity;
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isInteger(n) || n < least || n > most) {
    const range = most === Infinity ? `≥ ${least}` : `from ${least} to ${most}`;
    benchUsageError(toolUrl, `${flag} must be a whole number${options.of ? ` of ${options.of}` : ""} ${range}, got ${value}`);
  }
  return n;
}
