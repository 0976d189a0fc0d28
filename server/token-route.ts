import { ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import {
  type CreateTokenRequest,
  type CreateTokenResponse,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import { type AuditRecord, allowedRecord, refusedRecord } from "./audit.js";
import { createAuthenticator } from "./auth/authenticate.js";
import { type Caller, describeCaller } from "./auth/caller.js";
import { parseTrustedProxies, resolveClientAddress } from "./client-address.js";
import type { ServiceConfig } from "./config.js";
import { createToken } from "./create-token.js";
import type { ServiceMetrics } from "./metrics.js";
import type { NodeRequest, NodeResponse } from "./node-handler.js";
import { RateLimitedError, type RateLimiter } from "./rate-limit.js";
import { createTokenResponseJson } from "./token-response-json.js";
import {
  codeName,
  createUnaryRoute,
  type UnaryOutcome,
} from "./unary/unary-route.js";

/** What one `CreateToken` call learned, for its log line. */
export interface TokenCall {
  caller?: Caller;
  audit?: AuditRecord;
}

/** `CreateToken`, served on the unary path, and its parts. */
export interface TokenRoute {
  /** Serves one HTTP request to `CreateToken`, in any protocol. */
  serve(
    req: NodeRequest,
    res: NodeResponse,
    call: TokenCall,
  ): Promise<UnaryOutcome>;
  /** Authenticates and rate-limits a caller from its headers alone. */
  admit(headers: AdmissionHeaders, call: TokenCall): Promise<Caller>;
  /** Mints for an admitted caller, recording the decision in `call`. */
  handle(
    request: CreateTokenRequest,
    call: TokenCall,
  ): Promise<CreateTokenResponse>;
}

/** What admission reads of a request. */
export interface AdmissionHeaders {
  authorization: string | undefined;
  forwardedFor: string | string[] | undefined;
  socketAddress: string | undefined;
}

/** The URL path of `CreateToken`. */
export const createTokenPath = `/${TokenService.typeName}/${TokenService.method.createToken.name}`;

/**
 * Creates the route that serves `CreateToken` over every protocol: the
 * caller is authenticated and rate-limited from the headers, before the
 * body is read, then the request is checked against the limits and the
 * caller's policy, and the token minted. Every decision is recorded in the
 * call's audit record.
 */
export function createTokenRoute(
  config: ServiceConfig,
  { metrics, limiter }: { metrics: ServiceMetrics; limiter: RateLimiter },
): TokenRoute {
  const authenticator = createAuthenticator(config.auth);
  const trustedProxies = parseTrustedProxies(config.trustedProxies);
  const limited =
    config.rateLimits.perAddress !== undefined ||
    config.rateLimits.perCaller !== undefined;

  const admit = async (headers: AdmissionHeaders, call: TokenCall) => {
    let caller: Caller;
    try {
      caller = await authenticator.authenticate(headers.authorization);
    } catch (error) {
      metrics.authFailures.inc({
        code: codeName(ConnectError.from(error).code),
      });
      call.audit = refusedRecord(undefined, error, "authentication");
      throw error;
    }
    call.caller = caller;
    if (!limited) return caller;
    try {
      await limiter.consume({
        caller:
          caller.kind === "anonymous" ? undefined : describeCaller(caller),
        address: resolveClientAddress(
          headers.socketAddress,
          headers.forwardedFor,
          trustedProxies,
        ),
      });
    } catch (error) {
      if (error instanceof RateLimitedError) {
        metrics.rateLimited.inc({ bucket: error.bucket });
      }
      call.audit = refusedRecord(caller, error, "rate_limit");
      throw error;
    }
    return caller;
  };

  const handle = async (request: CreateTokenRequest, call: TokenCall) => {
    const caller = call.caller;
    if (caller === undefined) throw new Error("call was not admitted");
    try {
      const { response, claims } = await createToken(config, request, caller);
      const agents = request.roomConfig?.agents.map((a) => a.agentName) ?? [];
      call.audit = allowedRecord(caller, claims, agents);
      metrics.tokensMinted.inc({ policy: caller.policy.name });
      return response;
    } catch (error) {
      call.audit = refusedRecord(caller, error);
      throw error;
    }
  };

  const serve = createUnaryRoute(
    TokenService.method.createToken,
    {
      readMaxBytes: config.limits.requestBytes,
      acceptCompression: [compressionGzip, compressionBrotli],
      encodeJson: createTokenResponseJson,
    },
    {
      async admit(req, _protocol, call: TokenCall) {
        await admit(
          {
            authorization: req.headers.authorization,
            forwardedFor: req.headers["x-forwarded-for"],
            socketAddress: req.socket?.remoteAddress,
          },
          call,
        );
      },
      handle,
    },
  );
  return { serve, admit, handle };
}
