import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["lib/**/*.test.ts", "test/**/*.test.ts"],
    // PGlite takes seconds to open; files share one instance each, tests within a file run in order.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
