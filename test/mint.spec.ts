import { fromJson, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { AccessToken, TokenVerifier, TrackSource } from "livekit-server-sdk";
import { describe, expect, it, vi } from "vitest";
import { RoomConfigurationSchema } from "../gen/livekit/room_configuration_pb.js";
import { type TokenClaims, TokenMinter } from "../server/mint.js";
import { roomConfigurationFixtures } from "./support/room-config-fixture.js";

const project = {
  url: "wss://mint.livekit.example",
  apiKey: "APImintkey",
  apiSecret: "a-secret-of-more-than-thirty-two-characters",
};

/** 2026-12-04T12:00:00.250Z: a quarter second past a whole second. */
const now = Date.UTC(2026, 11, 4, 12, 0, 0, 250);

/** What livekit-server-sdk's AccessToken mints for the same claims. */
async function sdkToken(claims: TokenClaims): Promise<string> {
  const token = new AccessToken(project.apiKey, project.apiSecret, {
    identity: claims.identity,
    name: claims.name,
    metadata: claims.metadata,
    attributes: claims.attributes,
    ttl: claims.ttlSeconds,
  });
  token.addGrant({ ...claims.grant, roomJoin: true, room: claims.room });
  if (claims.roomConfig.length > 0) {
    const { RoomConfiguration } = await import("@livekit/protocol");
    token.roomConfig = RoomConfiguration.fromBinary(claims.roomConfig);
  }
  vi.useFakeTimers({ toFake: ["Date"], now });
  try {
    return await token.toJwt();
  } finally {
    vi.useRealTimers();
  }
}

function payloadSegment(jwt: string): string {
  return jwt.split(".")[1] ?? "";
}

const fullRoomConfig = toBinary(
  RoomConfigurationSchema,
  fromJson(RoomConfigurationSchema, roomConfigurationFixtures()[0] ?? {}),
);

const cases: [string, TokenClaims][] = [
  [
    "a minimal token",
    {
      identity: "user-1",
      room: "room-a",
      grant: {},
      roomConfig: new Uint8Array(0),
      ttlSeconds: 600,
    },
  ],
  [
    "a token with every participant field and a narrowed grant",
    {
      identity: "user-ü",
      name: "Ada Lovelace",
      metadata: '{"team":"blue"}',
      attributes: { role: "host", "emoji-🎉": "yes" },
      room: "room-b",
      grant: {
        canPublish: true,
        canPublishSources: [TrackSource.CAMERA, TrackSource.MICROPHONE],
        canSubscribe: false,
        canPublishData: true,
        canUpdateOwnMetadata: false,
        hidden: true,
        recorder: true,
      },
      roomConfig: new Uint8Array(0),
      ttlSeconds: 7200,
    },
  ],
  [
    "a token with a room configuration that sets every field",
    {
      identity: "agent-host",
      room: "room-c",
      grant: { canPublish: true, roomAdmin: true },
      roomConfig: fullRoomConfig,
      ttlSeconds: 120,
    },
  ],
];

describe("TokenMinter", () => {
  it.each(cases)(
    "writes the payload AccessToken writes for %s",
    async (_, claims) => {
      const ours = new TokenMinter(project).mint(claims, now).jwt;
      const theirs = await sdkToken(claims);
      expect(payloadSegment(ours)).toBe(payloadSegment(theirs));
      expect(ours).toBe(theirs);
    },
  );

  it.each(cases)("mints %s that TokenVerifier accepts", async (_, claims) => {
    const minted = new TokenMinter(project).mint(claims);
    const verified = await new TokenVerifier(
      project.apiKey,
      project.apiSecret,
    ).verify(minted.jwt);
    expect(verified.sub).toBe(claims.identity);
    expect(verified.exp).toBe(minted.expiresAt.getTime() / 1000);
    expect((verified.exp ?? 0) - (verified.nbf ?? 0)).toBe(claims.ttlSeconds);
  });

  it("writes a remembered room configuration as it wrote it the first time", async () => {
    const claims = cases[2]?.[1] as TokenClaims;
    const minter = new TokenMinter(project);
    const first = minter.mint(claims, now).jwt;
    const again = minter.mint(
      { ...claims, roomConfig: claims.roomConfig.slice() },
      now,
    ).jwt;
    expect(again).toBe(first);
    expect(again).toBe(await sdkToken(claims));
  });

  it("writes AccessToken's payload for any participant fields", async () => {
    // Any Unicode, lone surrogates and JSON's special characters included,
    // and attribute keys that JavaScript orders first (integer-like).
    const text = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({
        unit: fc.constantFrom('"', "\\", "\n", "\u2028", "\ud800", "é"),
      }),
    );
    const claims = fc.record(
      {
        identity: text.filter((t) => t.length > 0),
        name: text,
        metadata: text,
        attributes: fc.dictionary(fc.oneof(text, fc.nat().map(String)), text),
        room: text.filter((t) => t.length > 0),
        ttlSeconds: fc.integer({ min: 1, max: 86_400 }),
      },
      { requiredKeys: ["identity", "room", "ttlSeconds"] },
    );
    await fc.assert(
      fc.asyncProperty(claims, async (fields) => {
        const token: TokenClaims = {
          ...fields,
          grant: { canPublish: true },
          roomConfig: new Uint8Array(0),
        };
        const ours = new TokenMinter(project).mint(token, now).jwt;
        expect(payloadSegment(ours)).toBe(
          payloadSegment(await sdkToken(token)),
        );
      }),
      { seed: 20261204, numRuns: 300 },
    );
  });

  it("signs with the project's secret and no other", async () => {
    const minted = new TokenMinter(project).mint(cases[0]?.[1] as TokenClaims);
    const verifier = new TokenVerifier(project.apiKey, `${project.apiSecret}x`);
    await expect(verifier.verify(minted.jwt)).rejects.toThrow(/signature/);
  });
});
