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
import {
  createTokenPath,
  createTokenRoute,
  type TokenCall,
} from "./token-route.js";
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
 * Each `CreateToken` call is measured and logged in one line when it ends:
 * request id, method, protocol, code, duration, and the audit record of
 * its token decision (caller, identity, room, grant, agents, TTL, or the
 * rule that refused).
 */
export function createRequestHandler(
  config: ServiceConfig,
  deps: HandlerDeps,
): NodeHandler {
  const { logger, metrics } = deps;
  const cors = new CorsPolicy(config.corsOrigins);
  const tokenRoute = createTokenRoute(config, deps);
  const connect = createConnectHandler(config, deps, tokenRoute);

  const observe = (
    req: NodeRequest,
    method: string,
    startedAt: number,
    outcome: UnaryOutcome,
    call: TokenCall,
  ) => {
    const ms = performance.now() - startedAt;
    metrics.observeCall(method, outcome.protocol, outcome.code, ms / 1000);
    // The call's audit record becomes its log line, extended in place:
    // cheaper than copying it into a new object for every call.
    const line: Record<string, unknown> = call.audit ?? {
      caller: call.caller && describeCaller(call.caller),
    };
    line.reqId = requestId(req.headers.traceparent);
    line.method = method;
    line.protocol = outcome.protocol;
    line.code = outcome.code;
    line.durationMs = Math.round(ms * 1000) / 1000;
    logger.info(line, "rpc");
    if (outcome.code === "internal") {
      // A bug: its cause is for the operator, never sent to the caller.
      logger.error(
        { reqId: line.reqId, err: outcome.error?.cause ?? outcome.error },
        "CreateToken failed with an internal error",
      );
    }
  };

  return (req: NodeRequest, res: NodeResponse) => {
    if (cors.handlePreflight(req, res)) return;
    cors.decorate(req, res);
    const path = req.url?.split("?", 1)[0] ?? "";

    if (path === createTokenPath && !deps.connectNodeCreateToken) {
      const startedAt = performance.now();
      const call: TokenCall = {};
      tokenRoute.serve(req, res, call).then(
        (outcome) => observe(req, "CreateToken", startedAt, outcome, call),
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
