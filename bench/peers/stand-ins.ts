// The managed services' local counterparts for bench/peers.ts, in processes of their own so
// their CPU and memory are not counted against the runner or the server under test: prints
// one line "READY <json env>" and serves until SIGTERM.
//
//   node bench/peers/stand-ins.ts --only pinecone [--pinecone-index NAME --pinecone-dimension N]
//   node bench/peers/stand-ins.ts --only neon --database NAME
//   node bench/peers/stand-ins.ts --database NAME [--only upstash,neon,sqs] [--pinecone-host URL --pinecone-key KEY]
//
// The runner starts each counterpart in a process of its own, as the deployed services are
// apart: the Pinecone counterpart scores every vector of a namespace per query on one thread
// (real Pinecone does that on its own machines), and the Neon proxy and the Upstash bridge
// serve the context call's first reads, sent together. Counterparts sharing one process
// answered those reads one after another on its one thread.

import { benchUsageError, parseBenchArgs } from "../args.ts";
import { STAND_IN_PARTS, startCloudStandIns, type StandInPart } from "../../test/stand-ins/dev-cloud.ts";

const { values } = parseBenchArgs(import.meta.url, {
  options: {
    database: { type: "string" },
    only: { type: "string" },
    "pinecone-host": { type: "string" },
    "pinecone-key": { type: "string" },
    "pinecone-index": { type: "string" },
    "pinecone-dimension": { type: "string" },
  },
});
const parts = (values.only ?? STAND_IN_PARTS.join(",")).split(",") as StandInPart[];
for (const part of parts) {
  if (!STAND_IN_PARTS.includes(part)) benchUsageError(import.meta.url, `--only takes a list of ${STAND_IN_PARTS.join(", ")}, not ${part}`);
}
if (parts.includes("neon") && !values.database) benchUsageError(import.meta.url, "the neon counterpart needs --database");
if (Boolean(values["pinecone-host"]) !== Boolean(values["pinecone-key"])) benchUsageError(import.meta.url, "pass --pinecone-host and --pinecone-key together");
if (Boolean(values["pinecone-index"]) !== Boolean(values["pinecone-dimension"])) benchUsageError(import.meta.url, "pass --pinecone-index and --pinecone-dimension together");
// The index is the stand-in's own: it means nothing where no Pinecone stand-in starts here.
if (values["pinecone-index"] && !parts.includes("pinecone")) benchUsageError(import.meta.url, "--pinecone-index names the index of the Pinecone stand-in started here: add pinecone to --only");
if (values["pinecone-index"] && values["pinecone-host"]) benchUsageError(import.meta.url, "--pinecone-index names the index of the Pinecone stand-in started here, not of one at --pinecone-host");
// The Pinecone stand-in checks the dimension (a whole number from 1 to 20,000) as it starts.
const pineconeIndex = values["pinecone-index"] ? { name: values["pinecone-index"], dimension: Number(values["pinecone-dimension"]) } : undefined;
const pinecone = values["pinecone-host"] ? { host: values["pinecone-host"], apiKey: values["pinecone-key"]! } : undefined;
const cloud = await startCloudStandIns({ database: values.database ?? "", fresh: true, parts, ...(pinecone ? { pinecone } : {}), ...(pineconeIndex ? { pineconeIndex } : {}) });
process.stdout.write(`READY ${JSON.stringify(cloud.env)}\n`);
const stop = () => {
  cloud.close().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
