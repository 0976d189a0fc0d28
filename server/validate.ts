import { Code, ConnectError } from "@connectrpc/connect";
import type { CreateTokenRequest } from "../gen/tokenservice/v1/token_service_pb.js";
import type { RequestLimits } from "./config.js";

/**
 * Checks a request against the configured size limits.
 *
 * @throws ConnectError `invalid_argument` naming the first field over its
 * limit.
 */
export function checkRequestLimits(
  request: CreateTokenRequest,
  limits: RequestLimits,
): void {
  const names: [string, string | undefined][] = [
    ["room_name", request.roomName],
    ["room_config.name", request.roomConfig?.name],
    ["participant_identity", request.participantIdentity],
    ["participant_name", request.participantName],
  ];
  for (const [field, value] of names) {
    checkBytes(field, utf8Bytes(value), limits.nameBytes);
  }
  checkBytes(
    "participant_metadata",
    utf8Bytes(request.participantMetadata),
    limits.metadataBytes,
  );
  checkBytes(
    "participant_attributes",
    attributesBytes(request.participantAttributes),
    limits.attributesBytes,
  );
}

/**
 * Resolves the room a token is for: `room_name`, else `room_config.name`,
 * else undefined.
 *
 * @throws ConnectError `invalid_argument` when both are set and differ.
 */
export function resolveRoomName(
  request: CreateTokenRequest,
): string | undefined {
  const named = request.roomName || undefined;
  const configured = request.roomConfig?.name || undefined;
  if (named && configured && named !== configured) {
    throw new ConnectError(
      "room_name and room_config.name differ; set one, or both the same",
      Code.InvalidArgument,
    );
  }
  return named ?? configured;
}

/** The size of attributes as LiveKit counts it: keys plus values. */
export function attributesBytes(attributes: Record<string, string>): number {
  let total = 0;
  for (const key in attributes) {
    total += utf8Bytes(key) + utf8Bytes(attributes[key]);
  }
  return total;
}

function utf8Bytes(value: string | undefined): number {
  return value ? Buffer.byteLength(value, "utf8") : 0;
}

function checkBytes(field: string, size: number, limit: number): void {
  if (size > limit) {
    throw new ConnectError(
      `${field} is ${size} bytes, over the limit of ${limit}`,
      Code.InvalidArgument,
    );
  }
}
