import { cors as connectCors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./node-handler.js";

/** How long browsers may cache a preflight answer, in seconds. */
export const preflightMaxAgeSeconds = 7200;

const allowMethods = connectCors.allowedMethods.join(", ");
const allowHeaders = [
  ...connectCors.allowedHeaders,
  "Authorization",
  "Traceparent",
].join(", ");
const exposeHeaders = [...connectCors.exposedHeaders, "Retry-After"].join(", ");

/**
 * CORS for browser clients, built on Connect's own lists of the headers
 * that Connect and gRPC-Web requests send and responses expose, plus
 * `Authorization` (sent) and `Retry-After` (exposed).
 *
 * `*` in `allowedOrigins` allows any origin; the service only lists it in
 * development mode. A disallowed origin gets no CORS headers at all, so the
 * browser refuses the response.
 */
export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.anyOrigin = allowedOrigins.includes("*");
    this.origins = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  }

  /** Whether browsers on `origin` may call the service. */
  allows(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase());
  }

  /**
   * Answers a preflight request (`OPTIONS` with
   * `Access-Control-Request-Method`) and returns true, or returns false for
   * any other request.
   */
  handlePreflight(req: NodeRequest, res: NodeResponse): boolean {
    if (
      req.method !== "OPTIONS" ||
      req.headers["access-control-request-method"] === undefined
    ) {
      return false;
    }
    const origin = req.headers.origin;
    const headers: Record<string, string> = { vary: "Origin" };
    if (origin !== undefined && this.allows(origin)) {
      headers["access-control-allow-origin"] = origin;
      headers["access-control-allow-methods"] = allowMethods;
      headers["access-control-allow-headers"] = allowHeaders;
      headers["access-control-max-age"] = String(preflightMaxAgeSeconds);
    }
    res.writeHead(204, headers);
    res.end();
    return true;
  }

  /** Adds CORS headers to the response of an allowed cross-origin call. */
  decorate(req: NodeRequest, res: NodeResponse): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    res.setHeader("vary", "Origin");
    if (!this.allows(origin)) return;
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("access-control-expose-headers", exposeHeaders);
  }
}
