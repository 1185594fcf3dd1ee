// A dedicated redis-server for outage tests: its own process on its own port, which a test
// can kill (a crash), restart on the same port, or freeze (a server that stops answering).
// No persistence: a restarted server starts empty, as a cache that lost its data would.

import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** Kills the server (SIGKILL, like a crash) and waits for it to exit. Safe to call when stopped. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing is answered. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** True once the server answers PING on the port. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let seen = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      seen += d.toString();
      if (seen.includes("\r\n")) done(seen.startsWith("+PONG"));
    });
  });
}

export async function startRedisServer(): Promise<RedisServer> {
  let port = 0;
  let child: ChildProcess | null = null;

  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  async function launch(): Promise<void> {
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmpdir()],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = proc;
    let output = "";
    proc.stdout?.on("data", (d) => (output = (output + d).slice(-2000)));
    proc.stderr?.on("data", (d) => (output = (output + d).slice(-2000)));
    const exited = new Promise<string>((resolve) => proc.once("exit", (code, signal) => resolve(`exited (${signal ?? code})`)));
    const spawnFailed = new Promise<string>((resolve) => proc.once("error", (e) => resolve(e.message)));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const failure = await Promise.race([exited, spawnFailed, new Promise<null>((r) => setTimeout(() => r(null), 20))]);
      if (failure !== null) throw new Error(`redis-server on port ${port} ${failure}: ${output.trim()}`);
      if (await answersPing(port)) return;
    }
    proc.kill("SIGKILL");
    throw new Error(`redis-server on port ${port} did not answer PING within 5 s: ${output.trim()}`);
  }

  // The free port is probed, then released for redis-server to bind: another process may
  // take it in between, so a failed first start tries another port.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 3) {
        process.removeListener("exit", killOnExit);
        throw e;
      }
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const proc = child;
      child = null;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGKILL");
      await exited;
    },
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await launch();
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
  };
}
