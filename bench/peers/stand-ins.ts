// The managed services' local counterparts for bench/peers.ts, in processes of their own so
// their CPU and memory are not counted against the runner or the server under test: prints
// one line "READY <json env>" and serves until SIGTERM.
//
//   node bench/peers/stand-ins.ts --only pinecone
//   node bench/peers/stand-ins.ts --database NAME [--pinecone-host URL --pinecone-key KEY]
//
// The Pinecone counterpart scores every vector of a namespace per query on one thread (real
// Pinecone does that on its own machines), so it runs in a process of its own: sharing one
// with the Neon proxy and the Upstash bridge, its scan held up their answers to the same
// context call, which sends its vector query beside its first reads.

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { startCloudStandIns } from "../../test/stand-ins/dev-cloud.ts";
import { startPineconeServer } from "../../test/stand-ins/pinecone-server.ts";

const { values } = parseArgs({ options: { database: { type: "string" }, only: { type: "string" }, "pinecone-host": { type: "string" }, "pinecone-key": { type: "string" } } });
let close: () => Promise<void>;
if (values.only === "pinecone") {
  const apiKey = randomBytes(16).toString("hex");
  const server = await startPineconeServer({ apiKey });
  process.stdout.write(`READY ${JSON.stringify({ PINECONE_HOST: server.host, PINECONE_API_KEY: apiKey })}\n`);
  close = () => server.close();
} else {
  if (values.only !== undefined) throw new Error(`stand-ins: --only takes "pinecone", not ${values.only}`);
  if (!values.database) throw new Error("stand-ins: pass --database");
  if (Boolean(values["pinecone-host"]) !== Boolean(values["pinecone-key"])) throw new Error("stand-ins: pass --pinecone-host and --pinecone-key together");
  const pinecone = values["pinecone-host"] ? { host: values["pinecone-host"], apiKey: values["pinecone-key"]! } : undefined;
  const cloud = await startCloudStandIns({ database: values.database, fresh: true, ...(pinecone ? { pinecone } : {}) });
  process.stdout.write(`READY ${JSON.stringify(cloud.env)}\n`);
  close = () => cloud.close();
}
const stop = () => {
  close().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
