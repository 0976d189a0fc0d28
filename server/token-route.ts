import { ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import {
  type CreateTokenRequest,
  type CreateTokenResponse,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import { auditAdmission, auditDecision } from "./audit.js";
import { createAuthenticator } from "./auth/authenticate.js";
import { type Caller, describeCaller } from "./auth/caller.js";
import { parseTrustedProxies, resolveClientAddress } from "./client-address.js";
import type { ServiceConfig } from "./config.js";
import { createToken } from "./create-token.js";
import type { Logger } from "./logger.js";
import type { ServiceMetrics } from "./metrics.js";
import type { NodeRequest, NodeResponse } from "./node-handler.js";
import { RateLimitedError, type RateLimiter } from "./rate-limit.js";
import {
  codeName,
  createUnaryRoute,
  type UnaryOutcome,
} from "./unary/unary-route.js";

/** What the `CreateToken` route needs besides its configuration. */
export interface TokenRouteDeps {
  logger: Logger;
  metrics: ServiceMetrics;
  limiter: RateLimiter;
}

/** `CreateToken`, served on the unary path, and its parts. */
export interface TokenRoute {
  /** Serves one HTTP request to `CreateToken`, in any protocol. */
  serve(req: NodeRequest, res: NodeResponse): Promise<UnaryOutcome<Caller>>;
  /** Authenticates and rate-limits a caller from its headers alone. */
  admitCaller(
    authorization: string | undefined,
    forwardedFor: string | string[] | undefined,
    socketAddress: string | undefined,
  ): Promise<Caller>;
  /** Mints for an admitted caller, with audit and metrics. */
  handle(
    request: CreateTokenRequest,
    caller: Caller,
  ): Promise<CreateTokenResponse>;
}

/** The URL path of `CreateToken`. */
export const createTokenPath = `/${TokenService.typeName}/${TokenService.method.createToken.name}`;

/**
 * Creates the route that serves `CreateToken` over every protocol: the
 * caller is authenticated and rate-limited from the headers, before the
 * body is read, then the request is checked against the limits and the
 * caller's policy, and the token minted. Every decision is audited.
 */
export function createTokenRoute(
  config: ServiceConfig,
  { logger, metrics, limiter }: TokenRouteDeps,
): TokenRoute {
  const authenticator = createAuthenticator(config.auth);
  const trustedProxies = parseTrustedProxies(config.trustedProxies);

  const admit = async (req: NodeRequest): Promise<Caller> =>
    admitCaller(
      req.headers.authorization,
      req.headers["x-forwarded-for"],
      req.socket?.remoteAddress,
    );

  /** Authenticates and rate-limits a caller from its headers alone. */
  const admitCaller = async (
    authorization: string | undefined,
    forwardedFor: string | string[] | undefined,
    socketAddress: string | undefined,
  ): Promise<Caller> => {
    let caller: Caller;
    try {
      caller = await authenticator.authenticate(authorization);
    } catch (error) {
      metrics.authFailures.inc({
        code: codeName(ConnectError.from(error).code),
      });
      auditAdmission(logger, "authentication", error);
      throw error;
    }
    const address = resolveClientAddress(
      socketAddress,
      forwardedFor,
      trustedProxies,
    );
    try {
      await limiter.consume({
        caller:
          caller.kind === "anonymous" ? undefined : describeCaller(caller),
        address,
      });
    } catch (error) {
      if (error instanceof RateLimitedError) {
        metrics.rateLimited.inc({ bucket: error.bucket });
      }
      auditAdmission(logger, "rate_limit", error, caller);
      throw error;
    }
    return caller;
  };

  const handle = async (request: CreateTokenRequest, caller: Caller) => {
    try {
      const { response, claims } = await createToken(config, request, caller);
      auditDecision(logger, caller, { claims });
      metrics.tokensMinted.inc({ policy: caller.policy.name });
      return response;
    } catch (error) {
      auditDecision(logger, caller, { error });
      throw error;
    }
  };

  return {
    serve: createUnaryRoute(
      TokenService.method.createToken,
      {
        readMaxBytes: config.limits.requestBytes,
        acceptCompression: [compressionGzip, compressionBrotli],
      },
      { admit, handle },
    ),
    admitCaller,
    handle,
  };
}
