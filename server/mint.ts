import { createRequire } from "node:module";
import type { VideoGrant } from "livekit-server-sdk";
import { AccessToken } from "livekit-server-sdk";
import type { LiveKitProject } from "./config.js";

/**
 * The `RoomConfiguration` class of the `@livekit/protocol` copy that
 * livekit-server-sdk itself uses, so that the token's `roomConfig` claim is
 * written by the same schema the SDK was built against.
 */
const { RoomConfiguration: SdkRoomConfiguration } = createRequire(
  createRequire(import.meta.url).resolve("livekit-server-sdk"),
)("@livekit/protocol") as typeof import("@livekit/protocol");

/** What one participant token grants. */
export interface TokenClaims {
  identity: string;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
  /** The room the token may join. */
  room: string;
  /** The video grant, besides `roomJoin` and `room`. */
  grant: Omit<VideoGrant, "roomJoin" | "room">;
  /**
   * The room configuration in protobuf binary form; empty for none, in which
   * case the token carries no `roomConfig` claim.
   */
  roomConfig: Uint8Array;
  ttlSeconds: number;
}

/** A signed participant token. */
export interface MintedToken {
  jwt: string;
  /** The token's `exp` claim. */
  expiresAt: Date;
}

/**
 * Mints a participant token with livekit-server-sdk's `AccessToken`.
 *
 * The room configuration crosses from this service's generated types to the
 * SDK's through the protobuf binary format, never field by field, so no
 * field can be dropped on the way.
 */
export async function mintParticipantToken(
  project: LiveKitProject,
  claims: TokenClaims,
): Promise<MintedToken> {
  const token = new AccessToken(project.apiKey, project.apiSecret, {
    identity: claims.identity,
    name: claims.name,
    metadata: claims.metadata,
    attributes: claims.attributes,
    ttl: claims.ttlSeconds,
  });
  token.addGrant({ ...claims.grant, roomJoin: true, room: claims.room });
  if (claims.roomConfig.length > 0) {
    token.roomConfig = SdkRoomConfiguration.fromBinary(claims.roomConfig);
  }
  const jwt = await token.toJwt();
  return { jwt, expiresAt: new Date(readExpiry(jwt) * 1000) };
}

/** Reads the `exp` claim of a token this module has just signed. */
function readExpiry(jwt: string): number {
  const payload = jwt.split(".")[1] ?? "";
  const { exp } = JSON.parse(Buffer.from(payload, "base64url").toString());
  if (typeof exp !== "number") throw new Error("minted token has no exp");
  return exp;
}
