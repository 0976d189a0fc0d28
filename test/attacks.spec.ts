import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  type CallerFixture,
  expectRefused,
  startCallerFixture,
} from "./support/callers.js";
import type { TokenRequest } from "./support/policies.js";
import { lifetimeSeconds, verifyToken } from "./support/token.js";

/**
 * Callers that are authenticated but ask for more than their policy gives:
 * each is refused with `permission_denied` and gets no token.
 */
describe("CreateToken under a caller policy", () => {
  let f: CallerFixture;
  let alice: string;
  beforeAll(async () => {
    f = await startCallerFixture();
    alice = bearer(await f.userToken({ name: "Alice", org: "acme" }));
  });
  afterAll(() => f.close());

  const asUser = (request: TokenRequest) => () => f.call(request, alice);
  const asKiosk = (request: TokenRequest) => () =>
    f.call(request, bearer(f.keys.kiosk));
  const denied = (call: () => Promise<unknown>) =>
    expectRefused(f.log, call, Code.PermissionDenied);

  describe("identity", () => {
    it("refuses an end user who asks for another identity", async () => {
      await denied(asUser({ roomName: "lobby", participantIdentity: "bob" }));
    });

    it("refuses an end user who asks for another display name", async () => {
      await denied(asUser({ roomName: "lobby", participantName: "Bob" }));
    });

    it("refuses an identity from a key without anyIdentity", async () => {
      await denied(
        asKiosk({ roomName: "kiosk-1", participantIdentity: "alice" }),
      );
    });

    it("gives a key without anyIdentity a random identity", async () => {
      const response = await asKiosk({ roomName: "kiosk-1" })();
      const claims = await verifyToken(response.participantToken);
      expect(claims.sub).toMatch(/^user-[\w-]{16}$/);
    });
  });

  describe("rooms", () => {
    it.each(["lobby", "support-7", "team-acme-x"])(
      "mints for %s, within the policy",
      async (room) => {
        const response = await asUser({ roomName: room })();
        const claims = await verifyToken(response.participantToken);
        expect(claims.video?.room).toBe(room);
      },
    );

    it.each([
      "lobby-2",
      "Lobby",
      "support",
      "team-evil-x",
      "team-acme",
      "team-acmecorp-x",
      "",
    ])("refuses room %j to an end user of org acme", async (room) => {
      await denied(asUser({ roomName: room }));
    });

    it("refuses a room outside the policy named in room_config", async () => {
      await denied(asUser({ roomConfig: { name: "team-evil-x" } }));
    });

    it.each(["acme-*", "acme-", "*", "{org}", "acme}", "ac me", ""])(
      "never widens the template for an org claim of %j",
      async (org) => {
        const token = bearer(await f.userToken({ org }));
        for (const room of ["team-acme-x", `team-${org}-x`, "team--x"]) {
          await denied(() => f.call({ roomName: room }, token));
        }
      },
    );

    it("refuses a room outside a key's prefix", async () => {
      await denied(asKiosk({ roomName: "lobby" }));
      await denied(asKiosk({ roomName: "kiosk" }));
    });
  });

  describe("video_grant", () => {
    it("refuses can_publish when the policy does not give it", async () => {
      await denied(
        asUser({ roomName: "lobby", videoGrant: { canPublish: true } }),
      );
    });

    it.each([
      "hidden",
      "recorder",
      "roomAdmin",
      "roomCreate",
      "roomList",
      "roomRecord",
      "canUpdateOwnMetadata",
    ] as const)("refuses %s when the policy does not give it", async (key) => {
      await denied(asUser({ roomName: "lobby", videoGrant: { [key]: true } }));
    });

    it("refuses a track source outside the policy's", async () => {
      const call = () =>
        f.call(
          {
            roomName: "room-1",
            videoGrant: { canPublishSources: ["screen_share"] },
          },
          bearer(f.keys.backend),
        );
      await denied(call);
    });

    it("mints a narrower grant than the policy's when asked", async () => {
      const response = await asUser({
        roomName: "lobby",
        videoGrant: { canPublishData: false, canSubscribe: true },
      })();
      const { video } = await verifyToken(response.participantToken);
      expect(video).toEqual({
        room: "lobby",
        roomJoin: true,
        canPublish: false,
        canSubscribe: true,
        canPublishData: false,
        canUpdateOwnMetadata: false,
      });
    });
  });

  describe("ttl", () => {
    it.each([
      ["an end user", 900, () => alice],
      ["a backend", 1800, () => bearer(f.keys.backend)],
    ])("clamps %s's ttl to its policy's %is", async (_, max, auth) => {
      const request = { roomName: "lobby", ttl: { seconds: 315576000000n } };
      const response = await f.call(request, auth());
      const claims = await verifyToken(response.participantToken);
      expect(lifetimeSeconds(claims)).toBe(max);
      expect(Number(response.expiresAt?.seconds)).toBe(claims.exp);
      const now = Date.now() / 1000;
      expect(claims.exp).toBeGreaterThan(now + max - 10);
      expect(claims.exp).toBeLessThanOrEqual(now + max + 1);
    });
  });

  describe("participant attributes and metadata", () => {
    it("refuses an attribute key outside the policy's", async () => {
      await denied(
        asUser({ roomName: "lobby", participantAttributes: { admin: "1" } }),
      );
    });

    it("refuses attributes over the policy's cap", async () => {
      const value = "x".repeat(29); // "role" + 29 = 33 bytes; the cap is 32
      await denied(
        asUser({ roomName: "lobby", participantAttributes: { role: value } }),
      );
    });

    it("mints attributes exactly at the policy's cap", async () => {
      const attributes = { role: "x".repeat(28) };
      const response = await asUser({
        roomName: "lobby",
        participantAttributes: attributes,
      })();
      const claims = await verifyToken(response.participantToken);
      expect(claims.attributes).toEqual(attributes);
    });

    it("refuses metadata over the policy's cap", async () => {
      await denied(
        asUser({ roomName: "lobby", participantMetadata: "é".repeat(17) }),
      );
    });
  });
});
