// SQS for tests and `npm run dev:cloud`: fauxqs in-process, with a helper that makes a work
// queue and its dead-letter queue wired by a redrive policy, as the SST stack does.

import { SQSClient } from "@aws-sdk/client-sqs";
import { startFauxqs } from "fauxqs";

export interface SqsStandIn {
  endpoint: string;
  region: string;
  client: SQSClient;
  /** A queue whose messages move to `${name}-dlq` after `maxReceiveCount` receives. */
  createQueue(name: string, options: { maxReceiveCount: number; visibilityTimeoutSeconds?: number }): { queueUrl: string; dlqUrl: string; dlqName: string };
  /** How many messages sit in a queue (ready, delayed and in flight). */
  depth(name: string): number;
  close(): Promise<void>;
}

export async function startSqsStandIn(options: { port?: number } = {}): Promise<SqsStandIn> {
  const server = await startFauxqs({ port: options.port ?? 0, logger: false, host: "127.0.0.1" });
  const region = "us-east-1";
  const client = new SQSClient({
    region,
    endpoint: server.address,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  return {
    endpoint: server.address,
    region,
    client,
    createQueue(name, { maxReceiveCount, visibilityTimeoutSeconds = 30 }) {
      const dlq = server.createQueue(`${name}-dlq`);
      const q = server.createQueue(name, {
        attributes: {
          VisibilityTimeout: String(visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: String(maxReceiveCount) }),
        },
      });
      return { queueUrl: q.queueUrl, dlqUrl: dlq.queueUrl, dlqName: dlq.queueName };
    },
    depth(name) {
      const q = server.inspectQueue(name);
      if (!q) throw new Error(`no queue ${name}`);
      return q.messages.ready.length + q.messages.delayed.length + q.messages.inflight.length;
    },
    async close() {
      client.destroy();
      await server.stop();
    },
  };
}
