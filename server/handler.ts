import { createConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { ServiceConfig } from "./config.js";
import { reportDecodeErrorsAsInvalidArgument } from "./decode-errors.js";
import type { Logger } from "./logger.js";
import type { NodeHandler } from "./node-handler.js";
import { tokenServiceRoutes } from "./routes.js";

/**
 * Creates the Node.js request handler that serves every RPC over Connect,
 * gRPC and gRPC-Web, for HTTP/1.1 and HTTP/2 alike.
 *
 * Requests to other paths get a 404; bodies over
 * `config.limits.requestBytes` (after decompression) get
 * `resource_exhausted`.
 */
export function createRequestHandler(
  config: ServiceConfig,
  logger: Logger,
): NodeHandler {
  const router = createConnectRouter({
    readMaxBytes: config.limits.requestBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  tokenServiceRoutes(config)(router);

  const handlers = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) {
    handlers.set(
      handler.requestPath,
      reportDecodeErrorsAsInvalidArgument(handler),
    );
  }

  return (req, res) => {
    const path = req.url?.split("?", 1)[0] ?? "";
    const handler = handlers.get(path);
    if (handler === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const universalRequest = universalRequestFromNodeRequest(
      req,
      res,
      undefined,
      undefined,
    );
    handler(universalRequest)
      .then((universalResponse) =>
        universalResponseToNodeResponse(universalResponse, res),
      )
      .catch((error: unknown) => {
        logger.error({ err: error, path }, "request failed in transport");
      });
  };
}
