import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Duration, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RoomConfigurationSchema } from "../gen/livekit/room_configuration_pb.js";
import {
  type CreateTokenRequest,
  type CreateTokenResponse,
  CreateTokenResponseSchema,
} from "../gen/tokenservice/v1/token_service_pb.js";
import { minTtlSeconds, type ServiceConfig } from "./config.js";
import { mintParticipantToken } from "./mint.js";
import { checkRequestLimits, resolveRoomName } from "./validate.js";

/** The grant every token carries until a caller policy narrows it. */
const defaultGrant = {
  canPublish: true,
  canSubscribe: true,
  canPublishData: true,
};

/**
 * Handles `CreateToken`: validates the request, resolves the room, identity
 * and TTL, and mints the token.
 *
 * @throws ConnectError `invalid_argument` naming the field at fault; no
 * token is minted then.
 */
export async function createToken(
  config: ServiceConfig,
  request: CreateTokenRequest,
): Promise<CreateTokenResponse> {
  checkRequestLimits(request, config.limits);
  const room = resolveRoomName(request) ?? randomName("room");
  const identity = request.participantIdentity || randomName("user");
  const ttlSeconds = resolveTtlSeconds(request.ttl, config);
  const roomConfig = request.roomConfig
    ? toBinary(RoomConfigurationSchema, request.roomConfig)
    : new Uint8Array(0);

  const minted = await mintParticipantToken(config.livekit, {
    identity,
    name: request.participantName || undefined,
    metadata: request.participantMetadata || undefined,
    attributes: nonEmpty(request.participantAttributes),
    room,
    grant: defaultGrant,
    roomConfig,
    ttlSeconds,
  });
  if (minted.jwt.length > config.limits.tokenBytes) {
    throw new ConnectError(
      `the token would be ${minted.jwt.length} bytes, over the limit of ` +
        `${config.limits.tokenBytes}; send less metadata, attributes or room_config`,
      Code.InvalidArgument,
    );
  }

  return create(CreateTokenResponseSchema, {
    serverUrl: config.livekit.url,
    participantToken: minted.jwt,
    participantIdentity: identity,
    participantName: request.participantName ?? "",
    roomName: room,
    expiresAt: timestampFromDate(minted.expiresAt),
  });
}

/**
 * The TTL to mint with: the requested one clamped to the maximum, or the
 * default.
 *
 * @throws ConnectError `invalid_argument` when the request asks for less
 * than the minimum.
 */
function resolveTtlSeconds(
  ttl: Duration | undefined,
  config: ServiceConfig,
): number {
  if (ttl === undefined) return config.ttl.defaultSeconds;
  const seconds = Number(ttl.seconds) + ttl.nanos / 1e9;
  if (!(seconds >= minTtlSeconds)) {
    throw new ConnectError(
      `ttl must be at least ${minTtlSeconds}s: livekit-client refreshes ` +
        "tokens 60s before they expire",
      Code.InvalidArgument,
    );
  }
  return Math.min(Math.floor(seconds), config.ttl.maxSeconds);
}

function nonEmpty(
  attributes: Record<string, string>,
): Record<string, string> | undefined {
  for (const _ in attributes) return attributes;
  return undefined;
}

/** A name that cannot be guessed: the prefix and 96 random bits. */
function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString("base64url")}`;
}
