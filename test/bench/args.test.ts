import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { headerOf, usageOf } from "../../bench/args.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const run = (tool: string, ...args: string[]) => spawnSync(process.execPath, [`bench/${tool}`, ...args], { cwd: root, encoding: "utf8" });

describe("bench tools' command lines", () => {
  it("reads a header and its command lines, continuations included", () => {
    const header = headerOf(
      ["// What it does.", "//", "//   node bench/x.ts --a A [--b B]", "//     [--c C]", "//", "// More.", "", "import x from 'y';", "// not the header"].join("\n"),
    );
    expect(header).toEqual(["What it does.", "", "  node bench/x.ts --a A [--b B]", "    [--c C]", "", "More."]);
    expect(usageOf(header)).toEqual(["  node bench/x.ts --a A [--b B]", "    [--c C]"]);
    expect(usageOf(["No command here."])).toEqual([]);
  });

  it("reports a failed run with the tool's name and exit code 1", () => {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", `import { benchFailure } from "./bench/args.ts"; benchFailure("file:///x/some-tool.ts", "its server exited (SIGTERM) before the run ended");`], {
      cwd: root,
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("some-tool: its server exited (SIGTERM) before the run ended\n");
    expect(r.stdout).toBe("");
  });

  it("answers an unknown flag with its name, the tool's usage and exit code 2", () => {
    const r = run("cpuprofile-top.ts", "--bogus");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("cpuprofile-top.ts: Unknown option '--bogus'");
    expect(r.stderr).toContain("node_modules/.bin/node bench/cpuprofile-top.ts FILE.cpuprofile [--top 30] [--filter lib/]");
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe("");
  });

  it("answers a flag missing its value the same way", () => {
    const r = run("server-profile.ts", "--calls");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("server-profile.ts: Option '--calls <value>' argument missing");
    expect(r.stderr).toContain("bench/server-profile.ts --data DIR");
  });

  it("prints the whole header on --help and exits 0", () => {
    const r = run("ab-http.ts", "--help");
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith("Two builds of Strata side by side over HTTP")).toBe(true);
    expect(r.stdout).toContain("--env-a and\n--env-b (NAME=VALUE, repeatable)");
    expect(r.stderr).toBe("");
  });

  it("answers a positional value a tool cannot use with the value, its usage and exit code 2, before running anything", () => {
    for (const [tool, args, message] of [
      ["vector-build.ts", ["abc"], "rows must be whole numbers ≥ 1, got abc"],
      ["bundle.ts", ["0"], "runs must be one whole number ≥ 1, got 0"],
      ["embedder.ts", ["/no/such/dir"], "no such data directory: /no/such/dir"],
      ["retrieval.ts", ["--mode", "all"], "--mode must be search, context or both, got all"],
      ["ab-http.ts", ["--a", ".", "--data", "/no/such/dir"], "--data /no/such/dir is not a data directory bench/search.ts built"],
      ["ab-http.ts", ["--a", ".", "--data", "/tmp", "--warm=-1"], "--warm must be a whole number of query pairs ≥ 0, got -1"],
      ["ab-http.ts", ["--a", ".", "--data", "/no/such/dir", "--queries", "/no/such/file.json"], "--queries /no/such/file.json: ENOENT"],
      ["ab-http.ts", ["--a", ".", "--data", "/no/such/dir", "--queries", "package-lock.json"], "--queries package-lock.json must hold a JSON array of one or more non-empty strings"],
      ["server-profile.ts", ["--data", "/tmp", "--settle", "1"], "--settle must be at least 2 seconds, got 1"],
      ["server-profile.ts", ["--data", "/tmp", "--warm=-1"], "--warm must be a whole number of calls ≥ 0, got -1"],
      ["server-profile.ts", ["--data", "/tmp", "--interval", "5"], "--interval must be a whole number of microseconds ≥ 10, got 5"],
      ["ab-http.ts", ["--a", ".", "--data", "/tmp", "--calls="], "--calls must be a whole number of context calls ≥ 1, got \n"],
      ["ab-http.ts", ["--a", ".", "--data", "/tmp", "--calls", "2.5"], "--calls must be a whole number of context calls ≥ 1, got 2.5"],
      ["chat-loop.ts", ["--a", ".", "--data", "/tmp", "--port", "70000"], "--port must be a whole number from 1 to 65535, got 70000"],
      ["neon-statement.ts", [], "--base is required"],
      ["neon-statement.ts", ["--base", "/no/such/dir"], "--base /no/such/dir holds no lib/adapters/neon/client.ts"],
      ["neon-statement.ts", ["--base", ".", "--rounds", "0"], "--rounds must be a whole number ≥ 1, got 0"],
      ["pglite-thread.ts", ["--busy", "17"], "--busy must be a whole number of threads from 0 to 16, got 17"],
      ["cpuprofile-diff.ts", ["a.cpuprofile"], "two profiles are needed, A and B, got 1"],
      ["cpuprofile-diff.ts", ["a.cpuprofile", "b.cpuprofile", "--calls-b", "0"], "--calls-b must be a whole number ≥ 1, got 0"],
      ["cpuprofile-diff.ts", ["/no/such/a.cpuprofile", "/no/such/b.cpuprofile"], "/no/such/a.cpuprofile: ENOENT"],
      ["pinecone-stand-in.ts", ["--sizes", "1000,ten"], "--sizes must be whole numbers of at least 1, got 1000,ten"],
      ["pinecone-stand-in.ts", ["--queries", "0"], "--queries must be a whole number ≥ 1, got 0"],
      ["steady.ts", ["--data", "/tmp", "--seconds", "0"], "--seconds must be a number of seconds > 0, got 0"],
      ["steady.ts", ["--data", "/no/such/dir"], "--data /no/such/dir is not a data directory bench/search.ts built"],
      ["backfill.ts", ["--batch", "0"], "--batch must be a whole number from 1 to 500, got 0"],
      ["backfill.ts", ["--b", "/no/such/dir"], "--b /no/such/dir"],
      ["index-heap.ts", ["--data", "/no/such/dir"], "--data /no/such/dir holds no PGlite archive"],
      ["index-heap.ts", ["--data", "/tmp", "--indexes", "vector"], "--indexes takes graph and keyword, got vector"],
      ["ab-grown.ts", [], "--a is required"],
      ["ab-grown.ts", ["--a", ".", "--size", "150"], "--size must be a whole number of 100-turn sessions (100, 200, ...), got 150"],
      ["ab-grown.ts", ["--a", "/no/such/dir"], "--a /no/such/dir is not a Strata checkout"],
      ["strata-load.ts", ["--chat-turns", "0"], "--chat-turns must be a whole number ≥ 1, got 0"],
      ["strata-load.ts", ["--wiring", "cloud"], "--wiring must be embedded or managed, got cloud"],
      ["summary-stall.ts", [], "--a is required"],
      ["summary-stall.ts", ["--a", ".", "--every", "80"], "--seconds must be past the timer's first run (--every 80), got 75"],
      ["summary-stall.ts", ["--a", ".", "--sessions", "0"], "--sessions must be a whole number of sessions ≥ 1, got 0"],
      ["summary-stall.ts", ["--a", "/no/such/dir"], "--a /no/such/dir is not a Strata checkout"],
      ["summarizer.ts", ["--rounds", "0"], "--rounds must be a whole number ≥ 1, got 0"],
      ["summarizer.ts", ["--turns", "many"], "--turns must be a whole number of turns ≥ 1, got many"],
      ["strata-load.ts", ["--stand-ins", "together"], "--stand-ins must be apart, shared or dev-cloud, got together"],
      ["strata-load.ts", ["--chat-user", "many"], "--chat-user must be a whole number ≥ 0, got many"],
      ["strata-load.ts", ["--chat-pause=-5"], "--chat-pause must be a whole number ≥ 0, got -5"],
    ] as const) {
      const r = run(tool, ...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`${tool}: ${message}`);
      expect(r.stderr).toContain(`bench/${tool}`);
      expect(r.stdout).toBe("");
    }
    // The peers' stand-ins: an index option that would mean nothing is refused, not ignored.
    for (const [args, message] of [
      [["--only", "upstash", "--pinecone-index", "x", "--pinecone-dimension", "4"], "--pinecone-index names the index of the Pinecone stand-in started here: add pinecone to --only"],
      [["--only", "pinecone", "--pinecone-host", "h", "--pinecone-key", "k", "--pinecone-index", "x", "--pinecone-dimension", "4"], "--pinecone-index names the index of the Pinecone stand-in started here, not of one at --pinecone-host"],
      [["--only", "pinecone", "--pinecone-index", "x"], "pass --pinecone-index and --pinecone-dimension together"],
      [["--only", "kafka"], "--only takes a list of upstash, neon, sqs, pinecone, not kafka"],
    ] as const) {
      const r = run("peers/stand-ins.ts", ...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`stand-ins.ts: ${message}`);
      expect(r.stderr).toContain("bench/peers/stand-ins.ts --only pinecone");
      expect(r.stdout).toBe("");
    }
    // --help on a tool of positional arguments prints its header rather than running it with defaults.
    const help = run("vector-grow.ts", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout.startsWith("What a write costs the embedded vector index")).toBe(true);
  });
});
