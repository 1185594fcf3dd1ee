// What client.ts and its PGlite thread (thread.ts) send each other. Apart from thread.ts,
// whose module body is the thread's: importing it anywhere else would run it there.

/** What the client asks of the thread. */
export type ThreadOp = { op: "query"; text: string; params: unknown[] } | { op: "exec"; text: string } | { op: "close" };
export type ThreadRequest = ThreadOp & { id: number };
/** An answer: the rows (query), nothing (exec, close), or the error as its own fields (PGlite's carry code, detail, ...). */
export type ThreadReply = { id: number; rows?: unknown[]; error?: { message: string; fields: Record<string, unknown> } };
/** Sent once, first: the database is open (id 0), or could not be opened. */
export const READY_ID = 0;
