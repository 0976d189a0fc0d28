import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type CreateTokenRequest,
  type CreateTokenResponse,
  CreateTokenResponseSchema,
} from "../gen/tokenservice/v1/token_service_pb.js";
import type { Caller } from "./auth/caller.js";
import type { ServiceConfig } from "./config.js";
import { minterFor, type TokenClaims } from "./mint.js";
import { applyPolicy } from "./policy/apply-policy.js";
import { checkRequestLimits } from "./validate.js";

/** A minted token: the response, and the claims decided for the audit log. */
export interface CreateTokenResult {
  response: CreateTokenResponse;
  claims: TokenClaims;
}

/**
 * Handles `CreateToken` for an authenticated caller: checks the request
 * against the server's limits and the caller's policy, then mints.
 *
 * @throws ConnectError `invalid_argument` naming the field at fault, or
 * `permission_denied` naming the policy rule; no token is minted then.
 */
export async function createToken(
  config: ServiceConfig,
  request: CreateTokenRequest,
  caller: Caller,
): Promise<CreateTokenResult> {
  checkRequestLimits(request, config.limits);
  const claims = applyPolicy(request, caller, config);

  const minted = minterFor(config.livekit).mint(claims);
  if (minted.jwt.length > config.limits.tokenBytes) {
    throw new ConnectError(
      `the token would be ${minted.jwt.length} bytes, over the limit of ` +
        `${config.limits.tokenBytes}; send less metadata, attributes or room_config`,
      Code.InvalidArgument,
    );
  }

  const response = create(CreateTokenResponseSchema, {
    serverUrl: config.livekit.url,
    participantToken: minted.jwt,
    participantIdentity: claims.identity,
    participantName: claims.name ?? "",
    roomName: claims.room,
    expiresAt: timestampFromDate(minted.expiresAt),
  });
  return { response, claims };
}
