import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TokenVerifier } from "livekit-server-sdk";
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import { mintJson, postJson } from "./support/http.js";
import {
  startTestService,
  type TestService,
  testProject,
} from "./support/service.js";
import { lifetimeSeconds, verifyToken } from "./support/token.js";

describe("CreateToken over Connect JSON", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());

  it("mints a token for the named room and identity", async () => {
    const client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: service.baseUrl, httpVersion: "1.1" }),
    );
    const response = await client.createToken({
      roomName: "room-a",
      participantIdentity: "user-1",
    });
    const claims = await new TokenVerifier(
      testProject.apiKey,
      testProject.apiSecret,
    ).verify(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.video).toMatchObject({ room: "room-a", roomJoin: true });
    expect(response.serverUrl).toBe(testProject.url);
  });
});

describe("TokenService.CreateToken with small inputs from bug reports", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Mints over raw Connect JSON; returns the response and its claims. */
  async function mint(body: unknown) {
    const json = await mintJson(service.baseUrl, body);
    const claims = await verifyToken(String(json.participantToken));
    return { json, claims };
  }

  /** Expects `invalid_argument` (HTTP 400) and no token. */
  async function expectInvalid(body: unknown) {
    const { status, json } = await postJson(service.baseUrl, body);
    expect(status).toBe(400);
    expect(json.code).toBe("invalid_argument");
    expect(json).not.toHaveProperty("participantToken");
    expect(json).not.toHaveProperty("participant_token");
  }

  it.each([
    ["absent", { room_name: "room-a" }],
    ["null", { room_name: "room-a", room_config: null }],
    ["{}", { room_name: "room-a", room_config: {} }],
    [
      "all defaults",
      { room_name: "room-a", room_config: { name: "", agents: [], tags: {} } },
    ],
  ])(
    "mints with no roomConfig claim when room_config is %s",
    async (_, body) => {
      const { claims } = await mint(body);
      expect(claims.video?.room).toBe("room-a");
      expect(claims).not.toHaveProperty("roomConfig");
    },
  );

  it("uses room_name and participant_identity as given", async () => {
    const { json, claims } = await mint(
      '{"room_name":"room-a","participant_identity":"user-1"}',
    );
    expect(claims.video?.room).toBe("room-a");
    expect(claims.sub).toBe("user-1");
    expect(json.roomName).toBe("room-a");
    expect(json.participantIdentity).toBe("user-1");
  });

  it("omits name, metadata and attributes not given", async () => {
    const { json, claims } = await mint({ room_name: "room-a" });
    expect(claims).not.toHaveProperty("attributes");
    expect(claims).not.toHaveProperty("name");
    expect(claims).not.toHaveProperty("metadata");
    expect(json).not.toHaveProperty("participantName");
  });

  it("generates a different room and identity on each call", async () => {
    const first = await mint({});
    const second = await mint({ room_name: "", participant_identity: "" });
    for (const { json, claims } of [first, second]) {
      expect(claims.video?.room).toMatch(/^room-[\w-]{16}$/);
      expect(claims.sub).toMatch(/^user-[\w-]{16}$/);
      expect(json.roomName).toBe(claims.video?.room);
      expect(json.participantIdentity).toBe(claims.sub);
    }
    expect(second.claims.video?.room).not.toBe(first.claims.video?.room);
    expect(second.claims.sub).not.toBe(first.claims.sub);
  });

  it.each([
    ["absent", { room_config: { name: "room-b" } }],
    ["empty", { room_name: "", room_config: { name: "room-b" } }],
    ["the same", { room_name: "room-b", room_config: { name: "room-b" } }],
  ])("uses room_config.name when room_name is %s", async (_, body) => {
    const { json, claims } = await mint(body);
    expect(claims.video?.room).toBe("room-b");
    expect(json.roomName).toBe("room-b");
  });

  it("rejects room_name and room_config.name that differ", async () => {
    await expectInvalid({ room_name: "room-a", room_config: { name: "b" } });
  });

  it.each([
    ["absent (the default, 600s)", undefined, 600],
    ["900s", "900s", 900],
    ["exactly the minimum, 120s", "120s", 120],
    ["exactly the maximum, 3600s", "3600s", 3600],
    ["over the maximum, 86400s", "86400s", 3600],
    ["far over the maximum", "315576000000s", 3600],
  ])(
    "mints a token whose lifetime is right for ttl %s",
    async (_, ttl, want) => {
      const now = new Date("2030-01-02T03:04:05.678Z");
      vi.useFakeTimers({ toFake: ["Date"], now });
      const { json, claims } = await mint({ room_name: "room-a", ttl });
      const nowSeconds = Math.floor(now.getTime() / 1000);
      expect(claims.nbf).toBe(nowSeconds);
      expect(claims.exp).toBe(nowSeconds + want);
      expect(lifetimeSeconds(claims)).toBe(want);
      expect(Date.parse(String(json.expiresAt)) / 1000).toBe(claims.exp);
    },
  );

  it.each(["119s", "119.999999999s", "0s", "-600s"])(
    "rejects ttl %s, under the 120s minimum",
    async (ttl) => {
      await expectInvalid({ room_name: "room-a", ttl });
    },
  );

  it.each([
    ["snake_case", { room_name: "room-a", participant_identity: "user-1" }],
    ["camelCase", { roomName: "room-a", participantIdentity: "user-1" }],
  ])("accepts %s field names", async (_, body) => {
    const { claims } = await mint(body);
    expect(claims.video?.room).toBe("room-a");
    expect(claims.sub).toBe("user-1");
  });

  it("ignores unknown JSON fields, nested ones included", async () => {
    const { claims } = await mint({
      room_name: "room-a",
      added_upstream_later: { x: 1 },
      room_config: {
        future_field: true,
        agents: [{ agent_name: "agent-x", future_agent_field: "y" }],
      },
    });
    expect(claims.video?.room).toBe("room-a");
    expect(claims.roomConfig?.agents[0]?.agentName).toBe("agent-x");
  });
});
