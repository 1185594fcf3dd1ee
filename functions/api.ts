// The API function: HTTP API v1 behind a Lambda Function URL or API Gateway v2, through
// Hono's Lambda adapter (which maps both event shapes to a Request and back). No endpoint
// streams its body, so the buffered `handle` is the right adapter, not `streamHandle`.

import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type { LambdaContext, LambdaEvent } from "hono/aws-lambda";
import { handle } from "hono/aws-lambda";
import { lambdaStrata } from "./strata.ts";

const ready = lambdaStrata();
let handler: ReturnType<typeof handle> | null = null;

/** Takes the events as @types/aws-lambda describes them (hono's own types differ in optional fields). */
export async function api(event: APIGatewayProxyEventV2 | LambdaEvent, context?: LambdaContext) {
  const strata = await ready.catch(() => lambdaStrata());
  handler ??= handle(strata.app);
  return handler(event as LambdaEvent, context);
}

export { api as handler };
