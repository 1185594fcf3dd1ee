import { createSqlArchive } from "../../lib/adapters/sql/archive.ts";
import { closeSharedPglite, sharedPglite } from "../fixtures/pglite.ts";
import { archiveContract } from "./archive.contract.ts";

archiveContract("pglite", async () => ({ archive: createSqlArchive({ sql: await sharedPglite() }), cleanup: closeSharedPglite }));
