// A user's rows read a column at a time. PGlite hands a result over row by row and field by
// field, each parsed in JavaScript: for a 100k-message user's 549k mentions that took 3.4–3.9 s.
// The same rows as one JSON array per column (json_agg) took 0.7–0.8 s, and 0.1–0.3 s to parse
// (BENCHMARKS.md, twenty-eighth growth round). The aggregates of one group take its rows in one
// pass, so the columns' elements line up row by row.
//
// Each array is one field in PGlite's memory: the rows go in chunks of `chunkRows`, so a field
// stays a few megabytes for short columns (ids, names). Not for long text: a 100k user's
// vectors as base64 in one array (about 270 MB) ran PGlite out of memory.

/** Runs a select and returns its rows (a caller's query function, with its own error mapping). */
export type RunQuery = (text: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

/** Rows a chunk of readColumns aggregates: about 3 MB a column of ids of 30 characters. */
export const CHUNK_ROWS = 100_000;

/**
 * The rows of `from` where `where` (over `params`), as one array per expression of `columns`,
 * each element as JSON gives it (a number as a number, an array as an array, a timestamp as
 * its ISO text). The rows come in no particular order, the same for every column.
 */
export async function readColumns(
  run: RunQuery,
  from: string,
  where: string,
  columns: readonly string[],
  params: unknown[],
  chunkRows: number = CHUNK_ROWS,
): Promise<unknown[][]> {
  const inner = columns.map((c, i) => `${c} as c${i}`).join(", ");
  const outer = columns.map((_, i) => `json_agg(c${i})::text as c${i}`).join(", ");
  const rows = await run(
    `select ${outer} from (select ${inner}, (row_number() over ()) / ${Math.max(1, Math.floor(chunkRows))} as chunk from ${from} where ${where}) rows group by chunk`,
    params,
  );
  const out: unknown[][] = columns.map(() => []);
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) {
      const text = row[`c${i}`];
      if (typeof text !== "string") continue;
      const values = JSON.parse(text) as unknown[];
      const into = out[i]!;
      for (let k = 0; k < values.length; k++) into.push(values[k]);
    }
  }
  return out;
}
