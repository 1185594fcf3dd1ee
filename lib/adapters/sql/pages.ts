// A user's rows read a page at a time by keyset, for the in-process indexes' loads
// (keyword-index.ts, vector-index.ts): one select of a 100k-message user's messages or vectors
// held PGlite, and with it the server's thread, for 2.5–4 s (BENCHMARKS.md, sixty-second round).

/**
 * Rows a load reads a select. In the server's thread a page of the bench's 100k-message user
 * held PGlite about 55 ms for 2,000 chat turns and 95 ms for 2,000 vectors of 512 dimensions
 * (5.5 MB of base64), against 135 and 250 ms at 5,000, while other users' statements waited
 * behind it (bench/cold-start.ts; BENCHMARKS.md, sixty-fourth round).
 */
export const LOAD_PAGE_ROWS = 2_000;

/**
 * Reads rows a page at a time: `read(after, limit)` selects at most `limit` rows in its key's
 * order, after the row `after` (null: from the first); `each` takes each page before the next
 * is read. Stops after the first page shorter than `limit` (`pageRows`, at least 1).
 */
export async function readPages<R>(
  read: (after: R | null, limit: number) => Promise<R[]>,
  each: (page: R[]) => Promise<void>,
  pageRows: number = LOAD_PAGE_ROWS,
): Promise<void> {
  const limit = Math.max(1, Math.floor(pageRows));
  for (let after: R | null = null; ; ) {
    const page = await read(after, limit);
    await each(page);
    if (page.length < limit) return;
    after = page[page.length - 1]!;
  }
}
