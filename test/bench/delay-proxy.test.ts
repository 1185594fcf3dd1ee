import { spawnSync } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLabel, delayMsOf, HoldTimes, proxyGroups, startDelayProxies, startDelayProxy, targetOf, throughProxy } from "../../bench/peers/delay-proxy.ts";
import { quantile } from "../../bench/stats.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A server that answers each connection: "echo:" + everything it read, once the client has ended. */
async function startEchoServer(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const got: Buffer[] = [];
    socket.on("data", (d: Buffer) => {
      got.push(d);
      // Each line is echoed as it comes, so a round trip can be timed.
      if (d.includes(10)) socket.write(Buffer.concat([Buffer.from("echo:"), d]));
    });
    socket.on("end", () => socket.end(`bye:${Buffer.concat(got).length}`));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, server };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Writes `line` and resolves with the answer's first chunk and how long it took. */
function roundTrip(socket: net.Socket, line: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    socket.once("data", (d: Buffer) => resolve({ answer: d.toString("utf8"), ms: performance.now() - t0 }));
    socket.write(line);
  });
}

describe("bench/peers/delay-proxy.ts", () => {
  let echo: { port: number; server: net.Server };
  beforeAll(async () => {
    echo = await startEchoServer();
  });
  afterAll(async () => {
    await new Promise((r) => echo.server.close(r));
  });

  it("delays each direction by at least the delay, and forwards the bytes unchanged", async () => {
    const proxy = await startDelayProxy({ host: "127.0.0.1", port: echo.port }, 40);
    try {
      const s = await connect(proxy.port);
      const first = await roundTrip(s, "ping\n");
      expect(first.answer).toBe("echo:ping\n");
      // 40 ms on the way there and 40 on the way back.
      expect(first.ms).toBeGreaterThanOrEqual(79);
      const direct = await connect(echo.port);
      const plain = await roundTrip(direct, "ping\n");
      expect(plain.answer).toBe("echo:ping\n");
      direct.destroy();
      s.destroy();
    } finally {
      await proxy.close();
    }
  });

  it("keeps the order of many chunks, and ends each direction after its last chunk (half-open)", async () => {
    const proxy = await startDelayProxy({ host: "127.0.0.1", port: echo.port }, 5);
    try {
      const s = await connect(proxy.port);
      const received: Buffer[] = [];
      s.on("data", (d: Buffer) => received.push(d));
      const ended = new Promise<void>((r) => s.once("end", () => r()));
      // 200 chunks written one after another without newlines: echoed only at the end, by their count.
      let sent = 0;
      for (let i = 0; i < 200; i++) {
        const chunk = `${i},`;
        sent += chunk.length;
        s.write(chunk);
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      s.end();
      await ended;
      expect(Buffer.concat(received).toString("utf8")).toBe(`bye:${sent}`);
      s.destroy();
    } finally {
      await proxy.close();
    }
  });

  it("delivers a large payload whole and in order", async () => {
    const proxy = await startDelayProxy({ host: "127.0.0.1", port: echo.port }, 1);
    try {
      const s = await connect(proxy.port);
      const payload = Buffer.alloc(3 << 20);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0x7f;
      payload[payload.length - 1] = 10;
      const got: Buffer[] = [];
      const done = new Promise<void>((r) => s.once("end", () => r()));
      s.on("data", (d: Buffer) => got.push(d));
      s.end(payload);
      await done;
      const all = Buffer.concat(got);
      const tail = Buffer.from(`bye:${payload.length}`);
      expect(all.subarray(all.length - tail.length).equals(tail)).toBe(true);
      // The echo's answers (each chunk that held the newline, prefixed) come before the bye.
      expect(all.subarray(0, 5).toString()).toBe("echo:");
      s.destroy();
    } finally {
      await proxy.close();
    }
  });

  it("closes the client's connection when the target refuses", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const proxy = await startDelayProxy({ host: "127.0.0.1", port }, 1);
    try {
      const s = net.connect({ host: "127.0.0.1", port: proxy.port });
      // The proxy destroys the connection; a reset may reach this end as an error first.
      s.on("error", () => {});
      await new Promise<void>((r) => s.once("close", () => r()));
      expect(s.destroyed).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("rewrites a URL's host and port to its proxy's, keeping the rest", () => {
    const ports = { "127.0.0.1:5432": 40001, "127.0.0.1:6379": 40002, "127.0.0.1:9000": 40003 };
    expect(throughProxy("postgres://postgres@127.0.0.1:5432/bench_x", ports)).toBe("postgres://postgres@127.0.0.1:40001/bench_x");
    expect(throughProxy("redis://127.0.0.1:6379", ports)).toBe("redis://127.0.0.1:40002");
    expect(throughProxy("http://localhost:9000/v1/x?y=1", ports)).toBe("http://127.0.0.1:40003/v1/x?y=1");
    expect(throughProxy("ws://127.0.0.1:9000/v2", ports)).toBe("ws://127.0.0.1:40003/v2");
    expect(throughProxy("127.0.0.1:9000/v2", ports)).toBe("127.0.0.1:40003/v2");
    // A port without a proxy, or no port at all, is left as it is.
    expect(throughProxy("http://127.0.0.1:9001/x", ports)).toBe("http://127.0.0.1:9001/x");
    expect(throughProxy("https://api.example.com/x", ports)).toBe("https://api.example.com/x");
    expect(targetOf("postgres://postgres@127.0.0.1:5432/db")).toBe("127.0.0.1:5432");
    expect(targetOf("http://localhost:8080/")).toBe("127.0.0.1:8080");
    expect(targetOf("127.0.0.1:77/v2")).toBe("127.0.0.1:77");
    expect(targetOf("https://api.example.com/x")).toBeNull();
  });

  it("counts hold times into quantiles within a bin (10 µs) of bench/stats.ts's, then starts again", () => {
    const held = new HoldTimes();
    expect(held.take()).toBeNull();
    // A spread with a long tail: 1,000 values from 1 to about 60 ms, not in order.
    const values: number[] = [];
    for (let i = 0; i < 1000; i++) values.push(1 + ((i * 7919) % 1000) ** 2 / 17_000);
    for (const v of values) held.record(v);
    const got = held.take()!;
    expect(got.chunks).toBe(1000);
    // A bin's upper edge, rounded to hundredths: at most 10 µs above the value, and 5 below.
    for (const [q, v] of [[0.5, got.p50], [0.9, got.p90], [0.99, got.p99]] as const) {
      expect(v).toBeGreaterThanOrEqual(quantile(values, q) - 0.005);
      expect(v).toBeLessThanOrEqual(quantile(values, q) + 0.015);
    }
    expect(got.max).toBe(Math.round(Math.max(...values) * 100) / 100);
    // Counting starts again; a hold past the last bin (a second) still counts, and is the max.
    expect(held.take()).toBeNull();
    held.record(0.5);
    held.record(0.5);
    held.record(2500);
    // A quantile is its bin's upper edge: 0.5 counts in [0.50, 0.51).
    expect(held.take()).toEqual({ chunks: 3, p50: 0.51, p90: 2500, p99: 2500, max: 2500 });
  });

  it("reads a --delay-ms as finite milliseconds of at least 0, and nothing else", () => {
    expect(delayMsOf("0")).toBe(0);
    expect(delayMsOf("1.5")).toBe(1.5);
    for (const bad of [undefined, "abc", "-1", "Infinity", "NaN"]) expect(delayMsOf(bad)).toBeNull();
  });

  it("labels a target with every variable that names it, each once", () => {
    const labels: Record<string, string> = {};
    addLabel(labels, "127.0.0.1:4444", "STRATA_NEON_WS_PROXY");
    addLabel(labels, "127.0.0.1:4444", "STRATA_NEON_FETCH_ENDPOINT");
    addLabel(labels, "127.0.0.1:4444", "STRATA_NEON_WS_PROXY");
    addLabel(labels, "127.0.0.1:5555", "PINECONE_HOST (Mastra's)");
    expect(labels).toEqual({ "127.0.0.1:4444": "STRATA_NEON_WS_PROXY / STRATA_NEON_FETCH_ENDPOINT", "127.0.0.1:5555": "PINECONE_HOST (Mastra's)" });
  });

  it("records each chunk it forwards, held at least the delay", async () => {
    const proxy = await startDelayProxy({ host: "127.0.0.1", port: echo.port }, 3);
    try {
      const s = await connect(proxy.port);
      for (let i = 0; i < 5; i++) expect((await roundTrip(s, `n${i}\n`)).answer).toBe(`echo:n${i}\n`);
      s.destroy();
      const held = proxy.held.take()!;
      // Five lines there and five answers back.
      expect(held.chunks).toBe(10);
      // Node's timer counts from the event loop's time, which can be a little before the chunk's arrival was read.
      expect(held.p50).toBeGreaterThanOrEqual(2.5);
      expect(held.max).toBeGreaterThanOrEqual(held.p99);
      expect(proxy.held.take()).toBeNull();
    } finally {
      await proxy.close();
    }
  });

  it("runs in a process of its own, one proxy per target, and stops on SIGTERM", async () => {
    const proxies = await startDelayProxies([`127.0.0.1:${echo.port}`, `localhost:${echo.port}`], 2);
    try {
      expect(Object.keys(proxies.ports)).toEqual([`127.0.0.1:${echo.port}`]);
      // Its own measure of the delay: 2 ms each way at least.
      expect(proxies.roundTripMs).toBeGreaterThanOrEqual(3.9);
      const s = await connect(proxies.ports[`127.0.0.1:${echo.port}`]!);
      const r = await roundTrip(s, "hi\n");
      expect(r.answer).toBe("echo:hi\n");
      expect(r.ms).toBeGreaterThanOrEqual(3.9);
      s.destroy();
      // Asked with SIGUSR2, it says each target's hold times since the last asking: the line and its echo.
      const held = await proxies.takeHeld();
      expect(Object.keys(held)).toEqual([`127.0.0.1:${echo.port}`]);
      expect(held[`127.0.0.1:${echo.port}`]!.chunks).toBe(2);
      expect(held[`127.0.0.1:${echo.port}`]!.p50).toBeGreaterThanOrEqual(1.5);
      // Two askings at once get an answer each, in turn; nothing passed since.
      expect(await Promise.all([proxies.takeHeld(), proxies.takeHeld()])).toEqual([{ [`127.0.0.1:${echo.port}`]: null }, { [`127.0.0.1:${echo.port}`]: null }]);
    } finally {
      await proxies.stop();
    }
    expect(() => process.kill(proxies.pid, 0)).toThrow();
    await expect(proxies.takeHeld()).rejects.toThrow("the delay proxy has exited");
  });

  it("refuses a delay or a target it cannot use, with exit code 2", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, ["bench/peers/delay-proxy.ts", ...args], { cwd: root, encoding: "utf8" });
    const noDelay = run("--to", "127.0.0.1:5432");
    expect(noDelay.status).toBe(2);
    expect(noDelay.stderr).toContain("--delay-ms must be a number of milliseconds ≥ 0, got undefined");
    const negative = run("--delay-ms=-1", "--to", "127.0.0.1:5432");
    expect(negative.status).toBe(2);
    expect(negative.stderr).toContain("got -1");
    const noTarget = run("--delay-ms", "1");
    expect(noTarget.status).toBe(2);
    expect(noTarget.stderr).toContain("name at least one --to HOST:PORT");
    const badTarget = run("--delay-ms", "1", "--to", "127.0.0.1");
    expect(badTarget.status).toBe(2);
    expect(badTarget.stderr).toContain('a target is HOST:PORT with a port from 1 to 65535, got "127.0.0.1"');
  });

  it("groups the targets into proxy processes: all in one, or each distinct target in its own", () => {
    const targets = ["127.0.0.1:4444", "127.0.0.1:5555", "127.0.0.1:4444", "127.0.0.1:6666"];
    expect(proxyGroups(targets, "one")).toEqual([targets]);
    expect(proxyGroups(targets, "each")).toEqual([["127.0.0.1:4444"], ["127.0.0.1:5555"], ["127.0.0.1:6666"]]);
    expect(proxyGroups([], "one")).toEqual([]);
    expect(proxyGroups([], "each")).toEqual([]);
  });

  it("bench/peers.ts refuses a --delay-procs it cannot use, with exit code 2, before it starts anything", () => {
    const r = spawnSync(process.execPath, ["bench/peers.ts", "--delay-procs=several"], { cwd: root, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--delay-procs is one or each, got several");
  });

  it("bench/peers.ts refuses a --delay-ms it cannot use, with exit code 2, before it starts anything", () => {
    for (const bad of ["abc", "-1", "Infinity"]) {
      const r = spawnSync(process.execPath, ["bench/peers.ts", `--delay-ms=${bad}`], { cwd: root, encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--delay-ms must be a number of milliseconds ≥ 0, got ${bad}`);
    }
  });
});
