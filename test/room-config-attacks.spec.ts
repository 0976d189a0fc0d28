import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  type CallerFixture,
  expectRefused,
  startCallerFixture,
  tokenClient,
} from "./support/callers.js";
import { type CapturedLog, captureLog } from "./support/log-capture.js";
import { memberPolicy, type TokenRequest } from "./support/policies.js";
import { startTestService, type TestService } from "./support/service.js";
import { firstAgent, verifyToken } from "./support/token.js";

/** Egress to S3, with the credentials an egress worker would act on. */
const s3Egress: TokenRequest["roomConfig"] = {
  egress: {
    room: {
      roomName: "lobby",
      fileOutputs: [
        {
          filepath: "recordings/{room_name}.mp4",
          output: {
            case: "s3",
            value: {
              accessKey: "AKIAEXAMPLE",
              secret: "attacker-controlled-secret",
              bucket: "attacker-bucket",
              endpoint: "https://s3.attacker.example",
            },
          },
        },
      ],
    },
  },
};

describe("CreateToken with a room_config the policy does not allow", () => {
  let f: CallerFixture;
  let dev: TestService;
  let devLog: CapturedLog;
  let anonymous: TestService;
  let anonymousLog: CapturedLog;
  let alice: string;
  beforeAll(async () => {
    f = await startCallerFixture();
    alice = bearer(await f.userToken({ org: "acme" }));
    devLog = captureLog();
    dev = await startTestService({}, { logger: devLog.logger });
    anonymousLog = captureLog();
    anonymous = await startTestService(
      { dev: false, auth: { serviceKeys: [], anonymous: memberPolicy } },
      { logger: anonymousLog.logger },
    );
  });
  afterAll(async () => {
    await Promise.all([f.close(), dev.close(), anonymous.close()]);
  });

  const asUser = (roomConfig: TokenRequest["roomConfig"]) => () =>
    f.call({ roomName: "lobby", roomConfig }, alice);
  const denied = (call: () => Promise<unknown>) =>
    expectRefused(f.log, call, Code.PermissionDenied);

  describe("egress", () => {
    it.each(["backend", "kiosk"] as const)(
      "refuses S3 egress to the %s service key",
      async (key) => {
        const request = { roomName: "kiosk-1", roomConfig: s3Egress };
        await denied(() => f.call(request, bearer(f.keys[key])));
      },
    );

    it("refuses S3 egress to an end user", async () => {
      await denied(asUser(s3Egress));
    });

    it("refuses S3 egress to a configured anonymous caller", async () => {
      const client = tokenClient(anonymous.baseUrl, "Connect JSON");
      const call = () =>
        client.createToken({ roomName: "lobby", roomConfig: s3Egress });
      await expectRefused(anonymousLog, call, Code.PermissionDenied);
    });

    it("refuses S3 egress to anyone in development mode", async () => {
      const client = tokenClient(dev.baseUrl, "Connect JSON");
      const call = () =>
        client.createToken({ roomName: "any", roomConfig: s3Egress });
      await expectRefused(devLog, call, Code.PermissionDenied);
    });

    it("mints egress for a key whose policy lists it", async () => {
      const request = { roomName: "rec-1", roomConfig: s3Egress };
      const response = await f.call(request, bearer(f.keys.recorder));
      const claims = await verifyToken(response.participantToken);
      // TokenVerifier returns the claim as JSON, not as a message
      expect(claims.roomConfig).toMatchObject({
        egress: {
          room: { fileOutputs: [{ s3: { bucket: "attacker-bucket" } }] },
        },
      });
    });
  });

  describe("agents", () => {
    it("refuses an agent that is not on the allow-list", async () => {
      await denied(asUser({ agents: [{ agentName: "shell-agent" }] }));
    });

    it("refuses an allowed agent among others that are not", async () => {
      await denied(
        asUser({ agents: [{ agentName: "helper" }, { agentName: "x" }] }),
      );
    });

    it("refuses agents.deployment when not allowed", async () => {
      await denied(
        asUser({ agents: [{ agentName: "helper", deployment: "canary" }] }),
      );
    });

    it("refuses agent metadata over the policy's cap", async () => {
      const metadata = "m".repeat(33);
      await denied(asUser({ agents: [{ agentName: "helper", metadata }] }));
    });

    it("refuses agent attributes over the policy's cap", async () => {
      const attributes = { key: "v".repeat(30) };
      await denied(asUser({ agents: [{ agentName: "helper", attributes }] }));
    });

    it("mints an allowed agent with metadata at the cap", async () => {
      const metadata = "m".repeat(32);
      const response = await asUser({
        agents: [{ agentName: "helper", metadata }],
      })();
      const claims = await verifyToken(response.participantToken);
      expect(firstAgent(claims)?.agentName).toBe("helper");
      expect(firstAgent(claims)?.metadata).toBe(metadata);
    });
  });

  describe("room limits and settings", () => {
    it.each<[string, TokenRequest["roomConfig"]]>([
      ["max_participants", { maxParticipants: 10_000 }],
      ["empty_timeout", { emptyTimeout: 86_400 }],
      ["departure_timeout", { departureTimeout: 86_400 }],
      ["metadata", { metadata: "x" }],
      ["tags", { tags: { a: "b" } }],
      ["min_playout_delay", { minPlayoutDelay: 1 }],
      ["sync_streams", { syncStreams: true }],
    ])("refuses %s when the policy does not list it", async (_, config) => {
      await denied(asUser(config));
    });
  });
});
