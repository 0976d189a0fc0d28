import { randomBytes } from "node:crypto";

const traceparent = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const processPrefix = randomBytes(4).toString("hex");
let counter = 0;

/**
 * The id of a request for its log line: the trace id of a valid W3C
 * `traceparent` header, so that logs join the caller's trace, else an id
 * unique to this process.
 */
export function requestId(header: string | string[] | undefined): string {
  if (typeof header === "string") {
    const traceId = traceparent.exec(header)?.[1];
    if (traceId !== undefined && !/^0+$/.test(traceId)) return traceId;
  }
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${processPrefix}-${counter.toString(36)}`;
}
