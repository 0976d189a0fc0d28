import type { Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";

/** Headers, or a function that returns them for each call. */
export type HeadersSource =
  | HeadersInit
  | (() => HeadersInit | Promise<HeadersInit>);

/** How to reach the token service. */
export interface TokenServiceClientOptions {
  /**
   * The service's base URL, such as `https://tokens.example.com`. Required
   * unless `transport` is given.
   */
  baseUrl?: string;
  /**
   * The transport to call with. Default: connect-web's Connect transport
   * over `fetch` with JSON, which works in browsers and in Node.js. In Node,
   * pass connect-node's `createGrpcTransport` (or another) to call over
   * gRPC or HTTP/2.
   */
  transport?: Transport;
  /**
   * Headers sent with every call, such as `Authorization`. A function is
   * called before each call, so that an app can attach the current user's
   * credentials. Headers given to a single call take precedence.
   */
  headers?: HeadersSource;
}

/** The generated, typed client of `TokenService`. */
export type TokenServiceClient = Client<typeof TokenService>;

/**
 * Creates the typed `TokenService` client.
 *
 * @throws TypeError when neither `baseUrl` nor `transport` is given.
 */
export function createTokenServiceClient(
  options: TokenServiceClientOptions,
): TokenServiceClient {
  return createClient(TokenService, resolveTransport(options));
}

/**
 * The transport the options describe, with their headers attached.
 *
 * @throws TypeError when neither `baseUrl` nor `transport` is given.
 */
export function resolveTransport(
  options: TokenServiceClientOptions,
): Transport {
  let transport = options.transport;
  if (transport === undefined) {
    if (options.baseUrl === undefined) {
      throw new TypeError(
        "the token service client needs baseUrl or transport",
      );
    }
    transport = createConnectTransport({ baseUrl: options.baseUrl });
  }
  if (options.headers !== undefined) {
    transport = withHeaders(transport, options.headers);
  }
  return transport;
}

/** Wraps a transport so that every call carries `headers`. */
function withHeaders(transport: Transport, headers: HeadersSource): Transport {
  const merge = async (callHeaders: HeadersInit | undefined) => {
    const merged = new Headers(
      typeof headers === "function" ? await headers() : headers,
    );
    new Headers(callHeaders).forEach((value, key) => {
      merged.set(key, value);
    });
    return merged;
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const merged = await merge(header);
      return transport.unary(
        method,
        signal,
        timeoutMs,
        merged,
        input,
        contextValues,
      );
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const merged = await merge(header);
      return transport.stream(
        method,
        signal,
        timeoutMs,
        merged,
        input,
        contextValues,
      );
    },
  };
}
