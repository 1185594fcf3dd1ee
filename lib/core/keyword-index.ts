// The in-process keyword tier: each user's turns as a BM25 corpus (lib/core/bm25.ts), derived
// from the archive like the vector index is, and kept in step by the archive's own writes.
// StrataDeps has an optional `keywords`: the search service uses it when present and falls
// back to the archive's full-text search when absent. The runtime always provides it; in the
// managed wiring, where many processes share one archive, the index checks the archive's
// per-user version before each search (migration 4) and loads what other processes wrote.

import type { Bm25Corpus } from "./bm25.ts";
import type { Message, UserVersion } from "./types.ts";

export interface KeywordIndex {
  /** Name of the adapter, as GET /v1/health shows it. */
  readonly adapter: string;
  /**
   * The user's corpus, loaded from the archive on first use and kept current after.
   * `asOf`: the user's version as read from the archive after the caller's request began
   * (Archive.readContext; null: no such user). An index that checks the archive's version
   * before answering (shared mode) then uses it instead of reading it again.
   */
  corpus(tenantId: string, userId: string, asOf?: UserVersion | null): Promise<Bm25Corpus>;
  /**
   * Whether corpus() reads the archive's version itself when not given one (shared mode): a
   * caller that can read it along with other things (Archive.readVersions) passes it instead.
   */
  readonly checksVersion?: boolean;
  /**
   * The stored messages among `ids` that the user's loaded corpus holds, by id (none when the
   * user is not loaded). As current as the corpus: call it after corpus() for the same user,
   * and read what it lacks from the archive.
   */
  messages(tenantId: string, userId: string, ids: readonly string[]): Map<string, Message>;
  /**
   * Stored messages to add (after their archive transaction committed). `version`: the user's
   * version that commit left (IngestResult.userVersion); an index that checks the archive's
   * version and held the one just before it then holds this one, without a read.
   */
  add(messages: Message[], version?: UserVersion): void;
  /** Forgets messages, whole sessions of a user, or a whole user (after the archive did). */
  remove(input: { tenantId: string; userId?: string | null; messageIds?: string[]; sessionIds?: string[]; wholeUser?: boolean }): void;
  /** Drops every loaded corpus. */
  close(): Promise<void>;
}
