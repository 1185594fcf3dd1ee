// A network delay between a system under test and the services it reaches (issue 8): a TCP
// proxy that forwards each chunk, in both directions, `delayMs` after it arrived, in order.
//
// On loopback a round trip to the Neon proxy, the Upstash bridge or PostgreSQL costs tens of
// microseconds, where a deployment's costs a millisecond or more; a design that spends fewer
// round trips, or overlaps its own work with them, is not seen here for what it saves. This
// kernel has no netem (`tc qdisc add dev lo root netem` answers "Specified qdisc kind is
// unknown", BENCHMARKS.md, fifty-sixth round), so the delay is added in user space.
// bench/peers.ts's `--delay-ms` puts one in front of every service a system reaches over
// the network (PostgreSQL, Redis and each managed counterpart), the same for every system.
//
// A chunk leaves `delayMs` after it arrived, as Node's timers count it (whole milliseconds of the
// event loop's clock), later by the timer's lateness and by this process's turn on a core. So
// the delay is what a round trip through the proxy measures, not the setting: startDelayProxies
// times one (roundTripMs) and the runner prints it beside the results.
//
//   node bench/peers/delay-proxy.ts --delay-ms 1 --to 127.0.0.1:5432 [--to HOST:PORT ...]
//
// prints one line "READY {"ports": {"HOST:PORT": PROXY_PORT, ...}, "roundTripMs": MS}" and serves
// until SIGTERM (roundTripMs: measureRoundTrip's, taken before it answers). On SIGUSR2 it prints
// "HELD {"HOST:PORT": {"chunks", "p50", "p90", "p99", "max"} | null, ...}": how long each
// target's chunks were held since the last such line, which under load is more than the
// delay. Run in a process of its own (startDelayProxies), so that its CPU is not the runner's
// nor a server's.

import net from "node:net";
import { fileURLToPath } from "node:url";
import { benchUsageError, parseBenchArgs } from "../args.ts";
import { spawnReady, stopChild } from "./stand-in-procs.ts";
import { quantile } from "../stats.ts";

export interface DelayProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  /** How long its chunks were held, arrival to write, since it started or the last take. */
  held: HoldTimes;
  close(): Promise<void>;
}

/** What a proxy's chunks were held, arrival to write (ms): the delay as the traffic got it. */
export interface HeldSummary {
  chunks: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

// Hold times are counted in bins of 10 µs up to a second; a longer one counts in the last bin
// (its own value is still the max). A run of the peers' workloads forwards millions of chunks.
const BIN_MS = 0.01;
const BINS = 100_000;

/**
 * The hold times of one proxy's chunks, as a histogram. Under load a chunk's timer fires late
 * by the event loop's turn on a core shared with the servers and counterparts: the idle round
 * trip measured as the process starts does not show that, these do.
 */
export class HoldTimes {
  private bins = new Uint32Array(BINS);
  private count = 0;
  private max = 0;

  record(ms: number): void {
    this.bins[Math.min(BINS - 1, Math.max(0, Math.floor(ms / BIN_MS)))]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Quantiles (each its bin's upper edge, or the max when that is lower or the bin is the last), then counting starts again; null when nothing passed. */
  take(): HeldSummary | null {
    if (this.count === 0) return null;
    const round = (ms: number) => Math.round(ms * 100) / 100;
    const at = (q: number) => {
      // The rank bench/stats.ts's quantile takes (floor(q × count) + 1, 1-based), found in the bins.
      const rank = Math.min(this.count, Math.floor(q * this.count) + 1);
      let seen = 0;
      for (let i = 0; i < BINS; i++) {
        seen += this.bins[i]!;
        if (seen >= rank) return round(i === BINS - 1 ? this.max : Math.min(this.max, (i + 1) * BIN_MS));
      }
      return round(this.max);
    };
    const out = { chunks: this.count, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(this.max) };
    this.bins.fill(0);
    this.count = 0;
    this.max = 0;
    return out;
  }
}

/**
 * Forwards what `from` sends to `to`, each chunk `delayMs` after it arrived, and ends `to` after
 * the last. Each chunk has a timer of its own: Node keeps the timers of one duration in one list,
 * fired in the order they were set, so the chunks leave in the order they came, and chunks that
 * came together (a reply's segments, microseconds apart) leave together. A single timer re-armed
 * for the next chunk's due time held such a second segment a whole timer tick (≥ 1 ms) longer.
 */
function forwardLater(from: net.Socket, to: net.Socket, delayMs: number, held: HoldTimes): void {
  const send = (chunk: Buffer, arrived: number) => {
    held.record(performance.now() - arrived);
    if (!to.destroyed) to.write(chunk);
  };
  const end = () => {
    if (!to.destroyed) to.end();
  };
  if (delayMs === 0) {
    from.on("data", (chunk: Buffer) => send(chunk, performance.now()));
    from.on("end", end);
    return;
  }
  from.on("data", (chunk: Buffer) => setTimeout(send, delayMs, chunk, performance.now()));
  from.on("end", () => setTimeout(end, delayMs));
}

/** Listens on 127.0.0.1 (a free port) and forwards each connection to `target` with `delayMs` each way. */
export function startDelayProxy(target: { host: string; port: number }, delayMs: number): Promise<DelayProxy> {
  if (!(delayMs >= 0) || !Number.isFinite(delayMs)) throw new Error(`delayMs must be a number of milliseconds ≥ 0, got ${delayMs}`);
  const sockets = new Set<net.Socket>();
  const held = new HoldTimes();
  // Half-open allowed: each direction ends on its own, after its last delayed chunk.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    forwardLater(client, upstream, delayMs, held);
    forwardLater(upstream, client, delayMs, held);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        held,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * The median of `n` one-byte round trips through a proxy of `delayMs` to an echo server, both
 * in this process: what the delay comes to on this machine, timers' lateness included.
 */
export async function measureRoundTrip(delayMs: number, n = 100): Promise<number> {
  const echo = net.createServer((s) => s.on("data", (d) => s.write(d)));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const proxy = await startDelayProxy({ host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port }, delayMs);
  const socket = net.connect({ host: "127.0.0.1", port: proxy.port, noDelay: true });
  try {
    await new Promise<void>((r, reject) => socket.once("connect", r).once("error", reject));
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((r) => {
        socket.once("data", () => r());
        socket.write("x");
      });
      ms.push(performance.now() - t0);
    }
    return Math.round(quantile(ms, 0.5) * 1000) / 1000;
  } finally {
    socket.destroy();
    await proxy.close();
    await new Promise((r) => echo.close(r));
  }
}

/** A command line's `--delay-ms` as milliseconds (finite, ≥ 0), or null when it is missing or not one. */
export function delayMsOf(text: string | undefined): number | null {
  const ms = Number(text);
  return text !== undefined && ms >= 0 && Number.isFinite(ms) ? ms : null;
}

/**
 * The targets each proxy process serves: all in one ("one"), or each distinct target in a
 * process of its own ("each"), so that traffic to one service never waits on another's turn.
 */
export function proxyGroups(targets: readonly string[], procs: "one" | "each"): string[][] {
  if (targets.length === 0) return [];
  return procs === "each" ? [...new Set(targets)].map((t) => [t]) : [[...targets]];
}

/** "HOST:PORT" as a target, or an error naming what is wrong. */
export function parseTarget(text: string): { host: string; port: number } {
  const m = /^([^:\s]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65_535)) throw new Error(`a target is HOST:PORT with a port from 1 to 65535, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/** The proxies of one process: each target's proxy port, and a stop. */
export interface DelayProxies {
  /** The proxy's port for each target, by "HOST:PORT". */
  ports: Record<string, number>;
  /** The median of 100 round trips through a proxy of the same delay in that process, idle, to an echo beside it (ms). */
  roundTripMs: number;
  pid: number;
  /**
   * Each target's hold times since the process started or the last take (null: no chunk
   * passed), asked of the process with SIGUSR2; counting then starts again.
   */
  takeHeld(): Promise<Record<string, HeldSummary | null>>;
  stop(): Promise<void>;
}

/** Starts bench/peers/delay-proxy.ts in a process of its own, one proxy per target. */
export async function startDelayProxies(targets: readonly string[], delayMs: number, nodeFlags: readonly string[] = []): Promise<DelayProxies> {
  const argv = [...nodeFlags, fileURLToPath(import.meta.url), "--delay-ms", String(delayMs), ...targets.flatMap((t) => ["--to", t])];
  const { child, ready } = spawnReady<{ ports: Record<string, number>; roundTripMs: number }>("the delay proxy", argv, undefined);
  const { ports, roundTripMs } = await ready;
  // The askings of takeHeld not yet answered, in order; each answer is one line.
  const waiting: { resolve: (held: Record<string, HeldSummary | null>) => void; reject: (e: Error) => void }[] = [];
  let partial = "";
  child.stdout!.on("data", (d: Buffer) => {
    partial += d.toString("utf8");
    let nl: number;
    while ((nl = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!line.startsWith("HELD ")) continue;
      waiting.shift()?.resolve(JSON.parse(line.slice(5)) as Record<string, HeldSummary | null>);
      if (waiting.length) child.kill("SIGUSR2");
    }
  });
  child.once("exit", (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the delay proxy exited (${code ?? signal}) before it said its hold times`));
  });
  const takeHeld = () =>
    new Promise<Record<string, HeldSummary | null>>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error("the delay proxy has exited"));
      // One signal at a time: two sent before the process handles the first arrive as one.
      waiting.push({ resolve, reject });
      if (waiting.length === 1) child.kill("SIGUSR2");
    });
  return { ports, roundTripMs, pid: child.pid!, takeHeld, stop: () => stopChild(child) };
}

/**
 * `url` with its host:port replaced by the proxy's (127.0.0.1:port) where `ports` has one for
 * it; the URL's scheme, credentials, path and query are kept. Accepts "host:port" without a
 * scheme (a WebSocket proxy's setting) too.
 */
export function throughProxy(url: string, ports: Record<string, number>): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?)?([^:/?#@\s]+):(\d+)/i, (whole, prefix: string | undefined, host: string, port: string) => {
    const to = ports[targetKey(host, port)];
    return to === undefined ? whole : `${prefix ?? ""}127.0.0.1:${to}`;
  });
}

/**
 * `labels` with `label` added for `target` ("HOST:PORT"): a target two variables name (the Neon
 * proxy's WebSocket and HTTP endpoint) keeps both names, joined by " / ", each once.
 */
export function addLabel(labels: Record<string, string>, target: string, label: string): void {
  const known = labels[target];
  labels[target] = !known ? label : known.split(" / ").includes(label) ? known : `${known} / ${label}`;
}

/** A target's key in a proxy process's ports: "HOST:PORT", localhost written as 127.0.0.1. */
function targetKey(host: string, port: string | number): string {
  return `${host === "localhost" ? "127.0.0.1" : host}:${port}`;
}

/** The "HOST:PORT" a URL (or a bare host:port) names, or null when it names no port. */
export function targetOf(url: string): string | null {
  const m = /^(?:[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?)?([^:/?#@\s]+):(\d+)/i.exec(url);
  return m ? targetKey(m[1]!, m[2]!) : null;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      "delay-ms": { type: "string" },
      to: { type: "string", multiple: true, default: [] },
    },
  });
  const delayMs = delayMsOf(values["delay-ms"]) ?? benchUsageError(import.meta.url, `--delay-ms must be a number of milliseconds ≥ 0, got ${values["delay-ms"]}`);
  if (values.to!.length === 0) benchUsageError(import.meta.url, "name at least one --to HOST:PORT");
  const ports: Record<string, number> = {};
  const proxies: DelayProxy[] = [];
  const byTarget: Record<string, DelayProxy> = {};
  for (const text of values.to!) {
    let target: { host: string; port: number };
    try {
      target = parseTarget(text);
    } catch (e) {
      benchUsageError(import.meta.url, (e as Error).message);
    }
    const key = targetKey(target.host, target.port);
    if (ports[key] !== undefined) continue;
    const proxy = await startDelayProxy(target, delayMs);
    proxies.push(proxy);
    byTarget[key] = proxy;
    ports[key] = proxy.port;
  }
  const roundTripMs = await measureRoundTrip(delayMs);
  // SIGUSR2 (SIGUSR1 starts Node's inspector): one line of each target's hold times, which start again.
  process.on("SIGUSR2", () => {
    const held = Object.fromEntries(Object.entries(byTarget).map(([key, proxy]) => [key, proxy.held.take()]));
    process.stdout.write(`HELD ${JSON.stringify(held)}\n`);
  });
  process.stdout.write(`READY ${JSON.stringify({ ports, roundTripMs })}\n`);
  const stop = () => {
    Promise.all(proxies.map((p) => p.close())).finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
