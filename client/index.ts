export {
  type CreateTokenRequest,
  CreateTokenRequestSchema,
  type CreateTokenResponse,
  CreateTokenResponseSchema,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
export {
  createTokenServiceClient,
  type HeadersSource,
  type TokenServiceClient,
  type TokenServiceClientOptions,
} from "./client.js";
export {
  type CreateTokenRequestInit,
  toCreateTokenRequest,
} from "./request.js";
export { createTokenSource, type TokenSourceOptions } from "./token-source.js";
