// One peer of bench/peers.ts as an HTTP server, so the runner drives every system with the
// same client over loopback and reads each one's peak RSS from its own process.
//
//   node bench/peers/serve-peer.ts <peer> --port N [--dir DIR]
//
// Every peer answers the subset of Strata's HTTP API v1 the benchmark uses, on Hono and
// @hono/node-server like Strata itself, so the transport costs the same everywhere:
//   POST /v1/sessions/:sessionId/messages  { userId, messages }   append (acknowledged write)
//   GET  /v1/sessions/:sessionId/context?userId=&query=&budget=   the peer's counterpart of the context call
//   POST /v1/search { userId, query, limit }                      501 where the peer has no search
//   GET  /v1/status                                               { queue: { pending } } (0: nothing deferred)
// Peers and their settings come from the environment the runner sets (see each create*()).

import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { parseArgs } from "node:util";
import type { BenchMessage } from "./data.ts";

export interface Peer {
  append(sessionId: string, userId: string, messages: BenchMessage[]): Promise<number>;
  context(sessionId: string, userId: string, query: string, budget: number): Promise<unknown>;
  search?(userId: string, query: string, limit: number): Promise<unknown>;
  pending?(): Promise<number>;
  close(): Promise<void>;
}

async function createPeer(name: string, dir: string): Promise<Peer> {
  switch (name) {
    case "naive-json":
      return (await import("./naive-json.ts")).createNaiveJsonPeer(dir);
    case "floor-local":
    case "floor-managed":
      return (await import("./floor.ts")).createFloorPeer(name === "floor-local" ? "local" : "managed");
    case "langchain-upstash":
    case "langchain-pg":
      return (await import("./langchain.ts")).createLangchainPeer(name === "langchain-pg" ? "pg" : "upstash");
    case "mastra-libsql":
      return (await import("./mastra.ts")).createMastraPeer(dir);
    case "mastra-managed":
      return (await import("./mastra.ts")).createMastraManagedPeer();
    default:
      throw new Error(`unknown peer ${name}`);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { port: { type: "string" }, dir: { type: "string", default: "" } } });
  const name = positionals[0]!;
  const peer = await createPeer(name, values.dir!);
  const app = new Hono();
  app.onError((e, c) => {
    process.stderr.write(`${name}: ${(e as Error).stack ?? e}\n`);
    return c.json({ error: { code: "PEER_ERROR", message: (e as Error).message } }, 500);
  });
  app.post("/v1/sessions/:sessionId/messages", async (c) => {
    const body = await c.req.json<{ userId: string; messages: BenchMessage[] }>();
    const n = await peer.append(c.req.param("sessionId"), body.userId, body.messages);
    return c.json({ messages: n }, 201);
  });
  app.get("/v1/sessions/:sessionId/context", async (c) => {
    const q = c.req.query();
    return c.json(await peer.context(c.req.param("sessionId"), q.userId!, q.query ?? "", Number(q.budget ?? 4000)));
  });
  app.post("/v1/search", async (c) => {
    if (!peer.search) return c.json({ error: { code: "NOT_SUPPORTED", message: `${name} has no search` } }, 501);
    const body = await c.req.json<{ userId: string; query: string; limit?: number }>();
    return c.json({ results: await peer.search(body.userId, body.query, body.limit ?? 10) });
  });
  app.get("/v1/status", async (c) => c.json({ queue: { pending: peer.pending ? await peer.pending() : 0 } }));
  const server = serve({ fetch: app.fetch, port: Number(values.port), hostname: "127.0.0.1" }, () => {
    process.stdout.write(`${name} listening on 127.0.0.1:${values.port}\n`);
  });
  // Longer than the client could leave a socket idle, so a peer whose event loop is blocked
  // for seconds (libsql answers synchronously) does not drop keep-alive sockets under it.
  (server as unknown as { keepAliveTimeout: number }).keepAliveTimeout = 120_000;
  const stop = () => {
    server.close();
    peer.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((e) => {
  process.stderr.write(`serve-peer: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
