import { TokenSource } from "livekit-client";
import {
  createTokenServiceClient,
  type TokenServiceClient,
  type TokenServiceClientOptions,
} from "./client.js";
import { toCreateTokenRequest } from "./request.js";

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
  const client = options.client ?? createTokenServiceClient(options);
  return TokenSource.custom(async (fetchOptions) => {
    const response = await client.createToken(
      toCreateTokenRequest(fetchOptions),
    );
    return {
      serverUrl: response.serverUrl,
      participantToken: response.participantToken,
    };
  });
}
