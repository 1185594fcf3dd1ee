import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { BurstWebSocket } from "./burst-websocket.ts";

// A WebSocket server that records what each connection receives, in order: binary messages as
// their bytes, text as "text:<it>", and the close.
let server: WebSocketServer;
const received: (string | Buffer)[][] = [];

beforeAll(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (socket) => {
    const log: (string | Buffer)[] = [];
    received.push(log);
    socket.on("message", (data, isBinary) => log.push(isBinary ? Buffer.from(data as Buffer) : `text:${data.toString()}`));
    socket.on("close", () => log.push("close"));
  });
  await once(server, "listening");
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function open(): Promise<{ socket: BurstWebSocket; log: (string | Buffer)[] }> {
  const socket = new BurstWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await once(socket, "open");
  await until(() => received.length > 0 && received.at(-1)!.length === 0);
  return { socket, log: received.at(-1)! };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!done()) throw new Error("timed out waiting for the server");
}

/** A frontend protocol message: its type letter, its length (4 + payload) and a payload of `fill`. */
const msg = (type: string, payload = 0, fill = 0) => {
  const b = Buffer.alloc(5 + payload, fill);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + payload, 1);
  return new Uint8Array(b);
};
const join = (...parts: Uint8Array[]) => Buffer.concat(parts);

describe("BurstWebSocket", () => {
  it("sends a statement's messages, Parse to Sync, as one message, their bytes in order", async () => {
    const { socket, log } = await open();
    const statement = [msg("P", 12, 1), msg("B", 9, 2), msg("D", 2, 3), msg("E", 5, 4), msg("H"), msg("S")];
    for (const m of statement) socket.send(m);
    const again = [msg("B", 3, 5), msg("E", 5, 6), msg("H"), msg("S")];
    for (const m of again) socket.send(m);
    await until(() => log.length >= 2);
    socket.close();
    await until(() => log.includes("close"));
    expect(log).toEqual([join(...statement), join(...again), "close"]);
  });

  it("sends messages that open no statement at once, each as its own", async () => {
    const { socket, log } = await open();
    socket.send(msg("Q", 9, 7));
    socket.send(msg("S"));
    socket.send(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]));
    await until(() => log.length >= 3);
    socket.close();
    await until(() => log.includes("close"));
    expect(log).toEqual([Buffer.from(msg("Q", 9, 7)), Buffer.from(msg("S")), Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]), "close"]);
  });

  it("sends what no Sync follows at the next microtask (a portal read in parts: Execute, Flush)", async () => {
    const { socket, log } = await open();
    socket.send(msg("P", 4));
    socket.send(msg("B", 4));
    await Promise.resolve();
    socket.send(msg("E", 4));
    socket.send(msg("H"));
    await new Promise((r) => setTimeout(r, 0));
    socket.send(msg("S"));
    await until(() => log.length >= 3);
    socket.close();
    await until(() => log.includes("close"));
    expect(log).toEqual([join(msg("P", 4), msg("B", 4)), join(msg("E", 4), msg("H")), Buffer.from(msg("S")), "close"]);
  });

  it("sends what it holds before closing (a session's Terminate after an unfinished statement)", async () => {
    const { socket, log } = await open();
    socket.send(msg("P", 4));
    socket.send(msg("X"));
    socket.send(msg("C", 2));
    socket.close(1000);
    await until(() => log.includes("close"));
    expect(log).toEqual([join(msg("P", 4), msg("X")), Buffer.from(msg("C", 2)), "close"]);
  });

  it("sends text, and messages given options or a callback, at once, after what it holds", async () => {
    const { socket, log } = await open();
    const sent: (Error | null | undefined)[] = [];
    socket.send(msg("P"));
    socket.send("hello");
    socket.send(msg("B"));
    socket.send(msg("E"), (e) => sent.push(e));
    socket.send(msg("S"), { binary: true });
    await until(() => log.length >= 5);
    socket.close();
    await until(() => log.includes("close"));
    expect(log).toEqual([Buffer.from(msg("P")), "text:hello", Buffer.from(msg("B")), Buffer.from(msg("E")), Buffer.from(msg("S")), "close"]);
    // Its callback ran once, without an error (ws passes null).
    expect(sent.map((e) => e ?? null)).toEqual([null]);
  });

  it("throws as ws does for a send before the socket is open", async () => {
    const socket = new BurstWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    expect(socket.readyState).toBe(WebSocket.CONNECTING);
    expect(() => socket.send(msg("P"))).toThrow(/not open/);
    await once(socket, "open");
    socket.close();
    await once(socket, "close");
  });
});
