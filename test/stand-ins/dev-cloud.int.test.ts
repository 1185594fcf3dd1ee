// startCloudStandIns with `parts`: each counterpart started alone answers with only its own
// environment, and the environments of counterparts started apart (as bench/peers starts them,
// one process each) merge into one that reaches every service.

import { randomBytes } from "node:crypto";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { Redis } from "@upstash/redis";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createNeonHttpSqlClient } from "../../lib/adapters/neon/http-client.ts";
import { startCloudStandIns, type CloudStandIns } from "./dev-cloud.ts";

const database = `strata_devcloud_${randomBytes(4).toString("hex")}`;
const started: CloudStandIns[] = [];

afterAll(async () => {
  await Promise.all(started.map((c) => c.close()));
  const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await admin.connect();
  await admin.query(`drop database if exists "${database}" with (force)`);
  await admin.end();
});

describe("startCloudStandIns parts", () => {
  it("starts each counterpart alone with its own environment, and the merged environments reach every service", async () => {
    const [upstash, neonPart, sqs, pinecone] = await Promise.all(
      (["upstash", "neon", "sqs", "pinecone"] as const).map(async (part) => {
        const c = await startCloudStandIns({ database, fresh: true, parts: [part] });
        started.push(c);
        return c;
      }),
    );
    const keys = (c: CloudStandIns) => Object.keys(c.env).filter((k) => k !== "STRATA_STAGE").sort();
    expect(keys(upstash!)).toEqual(["UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_REST_URL"]);
    expect(keys(neonPart!)).toEqual(["DATABASE_URL", "STRATA_NEON_FETCH_ENDPOINT", "STRATA_NEON_WS_PROXY"]);
    expect(keys(sqs!)).toEqual(["AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_SQS", "AWS_REGION", "AWS_SECRET_ACCESS_KEY", "STRATA_QUEUE_URL", "STRATA_QUEUE_WAIT_SECONDS"]);
    expect(keys(pinecone!)).toEqual(["PINECONE_API_KEY", "PINECONE_HOST"]);

    const env = Object.assign({}, ...started.map((c) => c.env)) as Record<string, string>;
    const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL!, token: env.UPSTASH_REDIS_REST_TOKEN!, enableTelemetry: false });
    expect(await redis.ping()).toBe("PONG");
    const sql = createNeonHttpSqlClient({ connectionString: env.DATABASE_URL!, fetchEndpoint: env.STRATA_NEON_FETCH_ENDPOINT! });
    expect(await sql.query("select current_database() as db")).toEqual([{ db: database }]);
    const client = new SQSClient({ region: env.AWS_REGION!, endpoint: env.AWS_ENDPOINT_URL_SQS!, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: env.STRATA_QUEUE_URL!, AttributeNames: ["ApproximateNumberOfMessages"] }));
    expect(attrs.Attributes?.ApproximateNumberOfMessages).toBe("0");
    client.destroy();
    const describeIndex = await fetch(`${env.PINECONE_HOST!.replace(/\/$/, "")}/describe_index_stats`, { method: "POST", headers: { "Api-Key": env.PINECONE_API_KEY!, "content-type": "application/json" }, body: "{}" });
    expect(describeIndex.status).toBe(200);
  });
});
