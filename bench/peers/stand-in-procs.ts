// Starts the managed services' counterparts for a benchmark (bench/peers.ts, bench/strata-load.ts,
// bench/pinecone-stand-in.ts), each group in a process of its own running bench/peers/stand-ins.ts,
// so that their CPU is neither the runner's nor the server's under test, and returns the
// environment that points Strata at them. "apart" (the default) runs Pinecone, the Upstash
// bridge, the Neon proxy and SQS each in its own process, as the deployed services are apart;
// "shared" runs the last three in one (the layout before 2026-12-05); "pinecone" starts Pinecone
// alone.

import { spawn, type ChildProcess } from "node:child_process";

export type StandInLayout = "apart" | "shared" | "pinecone";

export interface StandInProcs {
  /** The environment for `strata serve` (every counterpart's variables merged). */
  env: Record<string, string>;
  /** The counterparts' processes. */
  pids: number[];
  /** Stops them all (SIGTERM, then SIGKILL after 20 s). */
  stop(): Promise<void>;
}

export interface StandInOptions {
  layout: StandInLayout;
  /** The database the Neon proxy serves (created fresh); needed unless the layout is "pinecone". */
  database?: string;
  /** Node flags before the script (a benchmark runs the counterparts as it runs the servers). */
  nodeFlags?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** The Pinecone counterpart's index: its name and fixed dimension (a peer that resolves its index by name). */
  pineconeIndex?: { name: string; dimension: number };
  /** Told when a counterpart exits other than by stop(), with the end of its output. */
  onExit?: (name: string, code: number | string | null, tail: string) => void;
}

/** Starts the counterparts of `options.layout`; if one fails to start, stops the others and throws. */
export async function startStandInProcs(options: StandInOptions): Promise<StandInProcs> {
  const started: ChildProcess[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await Promise.all(started.map(stopChild));
  };
  const start = (name: string, args: string[]): Promise<Record<string, string>> => {
    const { child, ready } = spawnReady<Record<string, string>>(name, [...(options.nodeFlags ?? []), "bench/peers/stand-ins.ts", ...args], options.env, (code, tail) => {
      if (!stopping) options.onExit?.(name, code, tail);
    });
    started.push(child);
    return ready;
  };
  try {
    const index = options.pineconeIndex ? ["--pinecone-index", options.pineconeIndex.name, "--pinecone-dimension", String(options.pineconeIndex.dimension)] : [];
    const pinecone = await start("pinecone stand-in", ["--only", "pinecone", ...index]);
    if (options.layout === "pinecone") return { env: pinecone, pids: started.map((c) => c.pid!), stop };
    if (!options.database) throw new Error("the Neon proxy needs a database");
    const withPinecone = ["--pinecone-host", pinecone.PINECONE_HOST!, "--pinecone-key", pinecone.PINECONE_API_KEY!];
    const groups = options.layout === "apart" ? ["upstash", "neon", "sqs"] : ["upstash,neon,sqs"];
    const envs = await Promise.all(groups.map((only) => start(`stand-in ${only}`, ["--only", only, "--database", options.database!, ...withPinecone])));
    return { env: Object.assign({}, pinecone, ...envs) as Record<string, string>, pids: started.map((c) => c.pid!), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Starts `node ARGV` and resolves `ready` with the JSON of the line "READY {...}\n" it prints (a
 * stand-in's environment, a delay proxy's ports), or rejects, with the end of its output, if it
 * exits first. `onLateExit` is told when it exits after that.
 */
export function spawnReady<T>(
  name: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv | undefined,
  onLateExit?: (code: number | string | null, tail: string) => void,
): { child: ChildProcess; ready: Promise<T> } {
  const child = spawn(process.execPath, argv, { env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const ready = new Promise<T>((resolve, reject) => {
    let answered = false;
    const keep = (d: Buffer) => {
      tail = (tail + d.toString("utf8")).slice(-4000);
      // The whole line: a chunk may end inside it, after an inner "}".
      const m = answered ? null : /READY (\{.*\})\r?\n/.exec(tail);
      if (m) {
        answered = true;
        resolve(JSON.parse(m[1]!) as T);
      }
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.once("exit", (code, signal) => {
      if (!answered) reject(new Error(`${name} exited before it was ready (${code ?? signal}): ${tail.slice(-800)}`));
      else onLateExit?.(code ?? signal, tail.slice(-800));
    });
  });
  return { child, ready };
}

/** Stops a child process: SIGTERM, then SIGKILL after 20 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
