// Lambda events shaped as AWS delivers them (field for field from the service documentation),
// so the handlers are tested against what they will really receive.

import type { APIGatewayProxyEventV2, SQSRecord, ScheduledEvent } from "aws-lambda";

const ACCOUNT = "123456789012";
const REGION = "us-east-1";

export interface HttpRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  /** Function URLs deliver bodies base64-encoded unless the content type is text. */
  base64?: boolean;
}

/**
 * An HTTP request as API Gateway v2 (payload format 2.0) delivers it, or, with `via:
 * "function-url"`, as a Lambda Function URL does (the same format, another domain, no stage).
 */
export function httpEvent(req: HttpRequest, via: "api-gateway" | "function-url" = "api-gateway"): APIGatewayProxyEventV2 {
  const apiId = via === "function-url" ? "x3fmq7ylqtq4vzs7ynb2qbhhva0jgdcg" : "r3pmxmplak";
  const domainName = via === "function-url" ? `${apiId}.lambda-url.${REGION}.on.aws` : `${apiId}.execute-api.${REGION}.amazonaws.com`;
  const rawQueryString = new URLSearchParams(req.query ?? {}).toString();
  const text = req.body === undefined ? undefined : typeof req.body === "string" ? req.body : JSON.stringify(req.body);
  const now = new Date();
  const headers: Record<string, string> = {
    accept: "*/*",
    host: domainName,
    "user-agent": "curl/8.5.0",
    "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
    ...(text !== undefined ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) } : {}),
    ...req.headers,
  };
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: req.path,
    rawQueryString,
    headers,
    ...(req.query ? { queryStringParameters: req.query } : {}),
    requestContext: {
      accountId: via === "function-url" ? "anonymous" : ACCOUNT,
      apiId,
      domainName,
      domainPrefix: apiId,
      http: { method: req.method, path: req.path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "curl/8.5.0" },
      requestId: crypto.randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(text !== undefined ? { body: req.base64 ? Buffer.from(text).toString("base64") : text, isBase64Encoded: Boolean(req.base64) } : { isBase64Encoded: false }),
  };
}

/** An SQS record as the event source mapping delivers it. */
export function sqsRecord(message: { MessageId: string; ReceiptHandle: string; Body: string; receiveCount?: number }, queueName: string): SQSRecord {
  const sent = Date.now();
  return {
    messageId: message.MessageId,
    receiptHandle: message.ReceiptHandle,
    body: message.Body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount ?? 1),
      SentTimestamp: String(sent),
      SenderId: "AIDAIENQZJOLO23YVJ4VO",
      ApproximateFirstReceiveTimestamp: String(sent + 5),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:${queueName}`,
    awsRegion: REGION,
  };
}

/** An EventBridge scheduled event (the classic rule form), with a task in its detail. */
export function scheduledEvent(detail: Record<string, unknown>): ScheduledEvent {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: ACCOUNT,
    time: new Date().toISOString(),
    region: REGION,
    resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/strata-relay`],
    detail,
  };
}
