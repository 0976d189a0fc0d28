import type { Transport } from "@connectrpc/connect";
import { TokenSource } from "livekit-client";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import {
  resolveTransport,
  type TokenServiceClient,
  type TokenServiceClientOptions,
} from "./client.js";
import {
  type CreateTokenRequestInit,
  toCreateTokenRequest,
} from "./request.js";

/**
 * `CreateToken` on a transport, without the generated client around it:
 * the client's code for streaming methods would otherwise be in every
 * browser bundle that uses the token source.
 */
function unaryCall(transport: Transport) {
  return async (request: CreateTokenRequestInit) => {
    const response = await transport.unary(
      TokenService.method.createToken,
      undefined,
      undefined,
      undefined,
      request,
    );
    return response.message;
  };
}

/** How the token source reaches the service. */
export interface TokenSourceOptions extends TokenServiceClientOptions {
  /** A client to call with; default: one made from the other options. */
  client?: TokenServiceClient;
}

/**
 * Creates a livekit-client token source that fetches tokens from the token
 * service through the typed client.
 *
 * It is livekit-client's `TokenSource.custom`, so livekit-client caches the
 * last token and fetches again only when it is about to expire or the fetch
 * options change. A failed call rejects with the `ConnectError` the server
 * returned, carrying its code and message.
 */
export function createTokenSource(options: TokenSourceOptions) {
  const createToken = options.client
    ? options.client.createToken
    : unaryCall(resolveTransport(options));
  return TokenSource.custom(async (fetchOptions) => {
    const response = await createToken(toCreateTokenRequest(fetchOptions));
    return {
      serverUrl: response.serverUrl,
      participantToken: response.participantToken,
    };
  });
}
