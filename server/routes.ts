import type { ConnectRouter } from "@connectrpc/connect";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import type { ServiceConfig } from "./config.js";
import { createToken } from "./create-token.js";

/** Registers the service's RPCs on a Connect router. */
export function tokenServiceRoutes(config: ServiceConfig) {
  return (router: ConnectRouter): void => {
    router.service(TokenService, {
      createToken: (request) => createToken(config, request),
    });
  };
}
