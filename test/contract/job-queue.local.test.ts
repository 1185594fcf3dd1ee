import { createLocalJobQueue } from "../../lib/adapters/local/job-queue.ts";
import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import { closeSharedPglite, sharedPglite } from "../fixtures/pglite.ts";
import { jobQueueContract } from "./job-queue.contract.ts";

jobQueueContract("local (outbox runner)", async () => {
  const archive = createSqlArchive({ sql: await sharedPglite() });
  return {
    archive,
    makeQueue: ({ maxAttempts }) => createLocalJobQueue({ archive, maxAttempts, backoffMs: () => 50, pollMs: 50 }),
    cleanup: closeSharedPglite,
  };
});
