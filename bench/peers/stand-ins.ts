// The managed services' local counterparts for bench/peers.ts, in their own process so
// their CPU and memory are not counted against the runner or the server under test:
// prints one line "READY <json env>" and serves until SIGTERM.
//
//   node bench/peers/stand-ins.ts --database NAME

import { parseArgs } from "node:util";
import { startCloudStandIns } from "../../test/stand-ins/dev-cloud.ts";

const { values } = parseArgs({ options: { database: { type: "string" } } });
if (!values.database) throw new Error("stand-ins: pass --database");
const cloud = await startCloudStandIns({ database: values.database, fresh: true });
process.stdout.write(`READY ${JSON.stringify(cloud.env)}\n`);
const stop = () => {
  cloud.close().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
