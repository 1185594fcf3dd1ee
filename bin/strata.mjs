#!/usr/bin/env node
// Entry point for `npx strata` and the npm scripts. Node 22 runs the TypeScript sources
// directly (type stripping), so there is no build step between a clone and a running server.
const [major] = process.versions.node.split(".").map(Number);
if (major < 22) {
  process.stderr.write(
    `strata needs Node 22 or newer; this is ${process.version}. Run it through npm (npm start / npx strata), which uses the Node 22 that npm install put in node_modules/.bin.\n`,
  );
  process.exit(1);
}
// V8's pretenuring off before any data is loaded (lib/heap.ts says why).
(await import("../lib/heap.ts")).tuneHeap();
await import("../lib/cli.ts");
