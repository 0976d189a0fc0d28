import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import type { VideoGrant } from "livekit-server-sdk";
import { trackSourceToString } from "livekit-server-sdk";
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

/** `{"alg":"HS256"}`, the protected header of every token. */
const encodedHeader = Buffer.from('{"alg":"HS256"}').toString("base64url");

/**
 * Mints participant tokens for one LiveKit project: the claims that
 * livekit-server-sdk's `AccessToken` writes for the same input, in the same
 * order, signed with HMAC-SHA256 by `node:crypto` with a key imported once.
 *
 * `AccessToken` imports the secret for every token and signs through
 * jose's asynchronous WebCrypto path; this does the same work
 * synchronously, several times faster; a test shows the tokens are byte
 * for byte those of `AccessToken` for the same input and clock. The room
 * configuration crosses from this service's generated types to the SDK's
 * through the protobuf binary format, never field by field, so no field
 * can be dropped on the way.
 */
export class TokenMinter {
  private readonly key: KeyObject;
  /** `,"iss":"<API key>"`, the same in every payload. */
  private readonly issuer: string;

  constructor(project: LiveKitProject) {
    this.key = createSecretKey(Buffer.from(project.apiSecret, "utf8"));
    this.issuer = `,"iss":${JSON.stringify(project.apiKey)}`;
  }

  private readonly roomConfigs = new Map<string, string>();

  /**
   * The `roomConfig` claim for the given bytes, as JSON: what the SDK's
   * message writes into a token (its `toJSON()`: `toJson` with default
   * values).
   *
   * Apps send the same few configurations (the same agent, the same
   * timeouts) again and again, so the claims of small ones are kept, least
   * recently used first out, and written again as they are.
   */
  private roomConfigClaim(bytes: Uint8Array): string {
    if (bytes.length > cachedRoomConfigBytes) return roomConfigJson(bytes);
    const key = Buffer.from(
      bytes.buffer,
      bytes.byteOffset,
      bytes.length,
    ).toString("latin1");
    let claim = this.roomConfigs.get(key);
    if (claim === undefined) {
      claim = roomConfigJson(bytes);
      if (this.roomConfigs.size >= roomConfigCacheSize) {
        const oldest = this.roomConfigs.keys().next().value;
        if (oldest !== undefined) this.roomConfigs.delete(oldest);
      }
    } else {
      this.roomConfigs.delete(key);
    }
    this.roomConfigs.set(key, claim);
    return claim;
  }

  /**
   * Signs a token for `claims`, valid from now for `ttlSeconds`.
   *
   * The payload is the JSON that `AccessToken` writes: the same keys,
   * values and order (its grants as `claimsToJwtPayload` writes them, then
   * `iss`, `exp`, `nbf` and `sub`). It is written as a string, each value
   * by `JSON.stringify`, so that the cached `roomConfig` claim is not
   * serialized again for every token.
   */
  mint(claims: TokenClaims, nowMs = Date.now()): MintedToken {
    let json = "{";
    if (claims.metadata) {
      json += `"metadata":${JSON.stringify(claims.metadata)},`;
    }
    if (claims.attributes) {
      json += `"attributes":${JSON.stringify(claims.attributes)},`;
    }
    if (claims.name) json += `"name":${JSON.stringify(claims.name)},`;
    json += `"video":${JSON.stringify(videoClaim(claims))}`;
    if (claims.roomConfig.length > 0) {
      json += `,"roomConfig":${this.roomConfigClaim(claims.roomConfig)}`;
    }
    const now = Math.floor(nowMs / 1000);
    const exp = now + claims.ttlSeconds;
    json += `${this.issuer},"exp":${exp},"nbf":${now},"sub":${JSON.stringify(claims.identity)}}`;

    const signed = `${encodedHeader}.${Buffer.from(json).toString("base64url")}`;
    const signature = createHmac("sha256", this.key)
      .update(signed)
      .digest("base64url");
    return { jwt: `${signed}.${signature}`, expiresAt: new Date(exp * 1000) };
  }
}

/** The SDK's JSON of a room configuration given in protobuf binary. */
function roomConfigJson(bytes: Uint8Array): string {
  return JSON.stringify(
    SdkRoomConfiguration.fromBinary(bytes).toJson({ emitDefaultValues: true }),
  );
}

/**
 * The `video` claim: the grant, then `roomJoin` and `room`, with track
 * sources as the SDK writes them ("camera", not 1).
 */
function videoClaim(claims: TokenClaims): Record<string, unknown> {
  const video: Record<string, unknown> = {};
  const grant = claims.grant as Record<string, unknown>;
  for (const key in grant) {
    const value = grant[key];
    video[key] =
      key === "canPublishSources" && Array.isArray(value)
        ? value.map(trackSourceToString)
        : value;
  }
  video.roomJoin = true;
  video.room = claims.room;
  return video;
}

/** Room configurations of at most this many bytes are remembered. */
const cachedRoomConfigBytes = 1024;
/** How many distinct room configurations are remembered. */
const roomConfigCacheSize = 256;

const minters = new WeakMap<LiveKitProject, TokenMinter>();

/** The minter of a project, created once per project object. */
export function minterFor(project: LiveKitProject): TokenMinter {
  let minter = minters.get(project);
  if (minter === undefined) {
    minter = new TokenMinter(project);
    minters.set(project, minter);
  }
  return minter;
}
