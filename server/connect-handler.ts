import {
  type ConnectRouter,
  createConnectRouter,
  createContextKey,
  createContextValues,
} from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import {
  file_tokenservice_v1_token_service,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import type { ServiceConfig } from "./config.js";
import { type HealthState, registerHealth } from "./health.js";
import type { Logger } from "./logger.js";
import type { NodeRequest, NodeResponse } from "./node-handler.js";
import { registerReflection } from "./reflection.js";
import type { TokenCall, TokenRoute } from "./token-route.js";

const socketAddressKey = createContextKey<string | undefined>(undefined, {
  description: "the peer address of the request's socket",
});

/**
 * Serves the services that go through connect-node's router: gRPC
 * reflection (`v1` and `v1alpha`), gRPC health, and `TokenService` itself,
 * so that reflection lists it and so that tests can compare connect-node's
 * answers with the dedicated unary path's. Unknown paths get a 404.
 */
export function createConnectHandler(
  config: ServiceConfig,
  { health, logger }: { health: HealthState; logger: Logger },
  tokenRoute: TokenRoute,
): (req: NodeRequest, res: NodeResponse, path: string) => void {
  const router = createConnectRouter({
    readMaxBytes: config.limits.requestBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  registerTokenService(router, tokenRoute, logger);
  registerHealth(router, health);
  registerReflection(router, [
    file_tokenservice_v1_token_service,
    file_grpc_health_v1_health,
  ]);

  const handlers = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) {
    handlers.set(handler.requestPath, handler);
  }

  return (req, res, path) => {
    const handler = handlers.get(path);
    if (handler === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const contextValues = createContextValues().set(
      socketAddressKey,
      req.socket?.remoteAddress,
    );
    handler(universalRequestFromNodeRequest(req, res, undefined, contextValues))
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch(() => res.destroy());
  };
}

/**
 * `TokenService` on the router authenticates after the body is parsed,
 * unlike the unary path; both mint the same way.
 */
function registerTokenService(
  router: ConnectRouter,
  route: TokenRoute,
  logger: Logger,
): void {
  router.service(TokenService, {
    async createToken(request, context) {
      const call: TokenCall = {};
      try {
        await route.admit(
          {
            authorization:
              context.requestHeader.get("authorization") ?? undefined,
            forwardedFor:
              context.requestHeader.get("x-forwarded-for") ?? undefined,
            socketAddress: context.values.get(socketAddressKey),
          },
          call,
        );
        return await route.handle(request, call);
      } finally {
        logger.info(
          { method: "CreateToken", path: "connect-node", ...call.audit },
          "rpc",
        );
      }
    },
  });
}
