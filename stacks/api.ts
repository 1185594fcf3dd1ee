// The API function behind a Lambda Function URL (HTTP API v1; auth is the API's own bearer
// keys, so the URL itself is public). No endpoint streams, so the function answers buffered.

import { NODE_FUNCTION } from "./defaults.ts";

export function createApi(links: unknown[]) {
  return new sst.aws.Function("Api", {
    handler: "functions/api.handler",
    ...NODE_FUNCTION,
    timeout: "30 seconds",
    memory: "1024 MB",
    url: { cors: { allowOrigins: ["*"], allowHeaders: ["authorization", "content-type"], allowMethods: ["*"] } },
    link: links,
  });
}
