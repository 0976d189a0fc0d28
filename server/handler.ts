import type { Caller } from "./auth/caller.js";
import { describeCaller } from "./auth/caller.js";
import type { ServiceConfig } from "./config.js";
import { createConnectHandler } from "./connect-handler.js";
import { CorsPolicy } from "./cors.js";
import type { HealthState } from "./health.js";
import type { Logger } from "./logger.js";
import type { ServiceMetrics } from "./metrics.js";
import type { NodeHandler, NodeRequest, NodeResponse } from "./node-handler.js";
import { serveOperations } from "./operations.js";
import type { RateLimiter } from "./rate-limit.js";
import { requestId } from "./request-id.js";
import { createTokenPath, createTokenRoute } from "./token-route.js";
import type { UnaryOutcome } from "./unary/unary-route.js";

/** What the request handler serves with. */
export interface HandlerDeps {
  logger: Logger;
  metrics: ServiceMetrics;
  limiter: RateLimiter;
  health: HealthState;
  /** Whether the service is ready for traffic (`/readyz`). */
  isReady(): boolean;
  /**
   * Serve `CreateToken` through connect-node's router instead of the
   * dedicated unary path. For differential tests only. Default false.
   */
  connectNodeCreateToken?: boolean;
}

/**
 * Creates the Node.js request handler for every path the service serves:
 * `CreateToken` on its dedicated unary path, gRPC reflection and health
 * through connect-node, CORS for allowed browser origins, and the
 * operational endpoints (`/healthz`, `/readyz`, `/metrics`).
 *
 * Each RPC call is measured and logged in one line when it ends.
 */
export function createRequestHandler(
  config: ServiceConfig,
  deps: HandlerDeps,
): NodeHandler {
  const { logger, metrics } = deps;
  const cors = new CorsPolicy(config.corsOrigins);
  const tokenRoute = createTokenRoute(config, deps);
  const connect = createConnectHandler(config, deps.health, tokenRoute);

  const observe = (
    req: NodeRequest,
    method: string,
    startedAt: bigint,
    outcome: UnaryOutcome<Caller>,
  ) => {
    const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    metrics.requests.inc({
      method,
      protocol: outcome.protocol,
      code: outcome.code,
    });
    metrics.latency.observe({ method, protocol: outcome.protocol }, seconds);
    logger.info(
      {
        reqId: requestId(req.headers.traceparent),
        method,
        protocol: outcome.protocol,
        code: outcome.code,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        caller: outcome.admitted && describeCaller(outcome.admitted),
      },
      "rpc",
    );
  };

  return (req: NodeRequest, res: NodeResponse) => {
    if (cors.handlePreflight(req, res)) return;
    cors.decorate(req, res);
    const path = req.url?.split("?", 1)[0] ?? "";

    if (path === createTokenPath && !deps.connectNodeCreateToken) {
      const startedAt = process.hrtime.bigint();
      tokenRoute.serve(req, res).then(
        (outcome) => observe(req, "CreateToken", startedAt, outcome),
        (error: unknown) => {
          logger.error({ err: error }, "CreateToken failed outside the route");
          res.destroy();
        },
      );
      return;
    }
    if (serveOperations(path, req, res, config, deps)) return;
    connect(req, res, path);
  };
}
