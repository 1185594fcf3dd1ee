// One statement's round trip through the Neon client (lib/adapters/neon/client.ts) on a pooled
// WebSocket session, against the Neon stand-in (test/stand-ins/neon-proxy.ts) and this machine's
// Postgres, for this checkout and another one (--base) side by side in one process: their
// clients alternate round by round on one stand-in and one database. Per build: the statement's
// p50 and p95, and the socket writes per statement in this process (the client's and the
// stand-in's together, as both run here).
//
//   node_modules/.bin/node bench/neon-statement.ts --base ../base [--rounds 6] [--statements 300]
//
// --base is another checkout with its own node_modules (for a git worktree, a link to this
// checkout's will do); "this" is the checkout this file is in, wherever it is run from.
//
// Needs PostgreSQL on 127.0.0.1:5432 (STRATA_TEST_POSTGRES_URL to change it), as the tests do.

import net from "node:net";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { quantile } from "./stats.ts";
import { benchUsageError, parseBenchArgs, wholeNumber } from "./args.ts";
import { neonDatabase } from "../test/fixtures/neon.ts";
import type { NeonClientOptions } from "../lib/adapters/neon/client.ts";
import type { SqlClient } from "../lib/adapters/sql/client.ts";

const { values: opts } = parseBenchArgs(import.meta.url, {
  options: {
    base: { type: "string" },
    rounds: { type: "string", default: "6" },
    statements: { type: "string", default: "300" },
  },
});
if (!opts.base) benchUsageError(import.meta.url, "--base is required (see the header of bench/neon-statement.ts)");
const rounds = wholeNumber(import.meta.url, "--rounds", opts.rounds, 1);
const statements = wholeNumber(import.meta.url, "--statements", opts.statements, 1);
const here = fileURLToPath(new URL("..", import.meta.url));
const roots = { base: resolve(opts.base), this: resolve(here) };
const clientOf = (root: string) => join(root, "lib/adapters/neon/client.ts");
if (!existsSync(clientOf(roots.base))) benchUsageError(import.meta.url, `--base ${opts.base} holds no lib/adapters/neon/client.ts`);

type Create = (options: NeonClientOptions) => SqlClient;
const builds: { name: "base" | "this"; create: Create }[] = [
  { name: "base", create: (await import(pathToFileURL(clientOf(roots.base)).href)).createNeonSqlClient },
  { name: "this", create: (await import(pathToFileURL(clientOf(roots.this)).href)).createNeonSqlClient },
];

// Socket writes in this process: net.Socket's write paths, counted while a build runs.
let writes = 0;
const proto = net.Socket.prototype as unknown as Record<"_write" | "_writev", (...args: unknown[]) => unknown>;
for (const method of ["_write", "_writev"] as const) {
  const real = proto[method]!;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    writes++;
    return real.apply(this, args);
  };
}

const db = neonDatabase();
const { config } = await db.get();
const ms = new Map<string, number[]>(builds.map((b) => [b.name, []]));
const writesOf = new Map<string, number>(builds.map((b) => [b.name, 0]));
try {
  const clients = builds.map((b) => ({ ...b, sql: b.create(config({ queryTransport: "websocket" })) }));
  for (const c of clients) for (let i = 0; i < 20; i++) await c.sql.query("select $1::int + 1 as n", [i]);
  for (let round = 0; round < rounds; round++) {
    // A B, then B A: each build first in half the rounds.
    const order = round % 2 === 0 ? clients : [...clients].reverse();
    for (const c of order) {
      const w0 = writes;
      for (let i = 0; i < statements; i++) {
        const t0 = performance.now();
        await c.sql.query("select $1::int + 1 as n", [i]);
        ms.get(c.name)!.push(performance.now() - t0);
      }
      writesOf.set(c.name, writesOf.get(c.name)! + writes - w0);
    }
    process.stdout.write(`round ${round + 1} / ${rounds}\n`);
  }
  for (const c of clients) await c.sql.close();
} finally {
  await db.close();
}
for (const b of builds) {
  const s = ms.get(b.name)!;
  process.stdout.write(
    `${b.name} (${roots[b.name]}): ${s.length} statements, p50 ${quantile(s, 0.5).toFixed(3)} ms, p95 ${quantile(s, 0.95).toFixed(3)} ms, ${(writesOf.get(b.name)! / s.length).toFixed(2)} socket writes a statement\n`,
  );
}
