import { randomBytes } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { RoomConfigurationSchema } from "../../gen/livekit/room_configuration_pb.js";
import type { CreateTokenRequest } from "../../gen/tokenservice/v1/token_service_pb.js";
import type { Caller } from "../auth/caller.js";
import type { ServiceConfig } from "../config.js";
import type { TokenClaims } from "../mint.js";
import { attributesBytes, resolveRoomName } from "../validate.js";
import { resolveGrant } from "./grants.js";
import { PolicyError } from "./policy-error.js";
import { capBytes, checkRoomConfig } from "./room-config.js";
import { roomAllowed } from "./rooms.js";
import { resolveTtlSeconds } from "./ttl.js";

/**
 * Decides what token a caller gets for a request: the identity, room,
 * grant, TTL, attributes and room configuration, each within the caller's
 * policy. The request must already be within the server's limits.
 *
 * @throws PolicyError `permission_denied` naming the rule that refused, or
 * `invalid_argument` for a request that is malformed whoever sends it.
 */
export function applyPolicy(
  request: CreateTokenRequest,
  caller: Caller,
  config: Pick<ServiceConfig, "ttl">,
): TokenClaims {
  const { policy } = caller;
  const identity = resolveIdentity(request, caller);
  const name = resolveName(request, caller);
  const room = resolveRoom(request, caller);

  checkAttributes(request.participantAttributes, policy.attributeKeys);
  capBytes(
    "participant_attributes",
    attributesBytes(request.participantAttributes),
    policy.attributesBytes,
  );
  capBytes(
    "participant_metadata",
    Buffer.byteLength(request.participantMetadata ?? ""),
    policy.metadataBytes,
  );
  checkRoomConfig(request.roomConfig, policy);

  return {
    identity,
    name,
    metadata: request.participantMetadata || undefined,
    attributes: nonEmpty(request.participantAttributes),
    room,
    grant: resolveGrant(policy.grant, request.videoGrant),
    roomConfig: request.roomConfig
      ? toBinary(RoomConfigurationSchema, request.roomConfig)
      : new Uint8Array(0),
    ttlSeconds: resolveTtlSeconds(request.ttl, config.ttl, policy),
  };
}

function resolveIdentity(request: CreateTokenRequest, caller: Caller): string {
  const asked = request.participantIdentity || undefined;
  if (caller.kind === "user") {
    if (asked !== undefined && asked !== caller.identity) {
      throw new PolicyError(
        "identity",
        "participant_identity must be the caller's own identity",
      );
    }
    return caller.identity;
  }
  if (asked !== undefined && !caller.policy.anyIdentity) {
    throw new PolicyError(
      "identity",
      "the caller's policy does not allow choosing participant_identity",
    );
  }
  return asked ?? randomName("user");
}

function resolveName(
  request: CreateTokenRequest,
  caller: Caller,
): string | undefined {
  const asked = request.participantName || undefined;
  if (caller.kind !== "user" || caller.name === undefined) return asked;
  if (asked !== undefined && asked !== caller.name) {
    throw new PolicyError(
      "name",
      "participant_name must be the caller's own name",
    );
  }
  return caller.name;
}

function resolveRoom(request: CreateTokenRequest, caller: Caller): string {
  const rooms = caller.policy.rooms;
  const asked = resolveRoomName(request);
  if (asked === undefined) {
    if (rooms.includes("*")) return randomName("room");
    throw new PolicyError("rooms", "room_name is required for this caller");
  }
  const claims = caller.kind === "user" ? caller.claims : undefined;
  if (!roomAllowed(asked, rooms, claims)) {
    throw new PolicyError(
      "rooms",
      `room "${asked}" is not allowed for this caller`,
    );
  }
  return asked;
}

function checkAttributes(
  attributes: Record<string, string>,
  allowedKeys: readonly string[],
): void {
  if (allowedKeys.includes("*")) return;
  for (const key in attributes) {
    if (!allowedKeys.includes(key)) {
      throw new PolicyError(
        "attributes",
        `participant_attributes key "${key}" is not allowed for this caller`,
      );
    }
  }
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
