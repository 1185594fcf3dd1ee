// Loaded into a server by bench/backfill.ts (node --import): how long its event loop was held.
// A timer asks for a turn every 20 ms; when the turn comes more than 50 ms late, the lateness
// is appended to the file named by STRATA_BENCH_LAG_FILE, one number (ms) a line.

import { appendFileSync } from "node:fs";

const file = process.env.STRATA_BENCH_LAG_FILE;
if (file) {
  const every = 20;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - every;
    if (late > 50) appendFileSync(file, `${late.toFixed(1)}\n`);
    last = now;
  }, every).unref();
}
