import { create, toJson } from "@bufbuild/protobuf";
import { Code, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { TokenSourceFetchOptions } from "livekit-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateTokenRequestSchema,
  createTokenSource,
  toCreateTokenRequest,
} from "../client/index.js";
import { expectConnectError } from "./support/errors.js";
import { postJson } from "./support/http.js";
import { startRecordingProxy } from "./support/recording-proxy.js";
import {
  devAuthWithKeys,
  startTestService,
  type TestService,
  testKey,
} from "./support/service.js";
import { firstAgent, verifyToken } from "./support/token.js";

/** A token source whose calls to the service are counted. */
function countedSource(baseUrl: string) {
  let calls = 0;
  const count: Interceptor = (next) => (req) => {
    calls++;
    return next(req);
  };
  const source = createTokenSource({
    transport: createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors: [count],
    }),
  });
  return { source, calls: () => calls };
}

const agentOptions: TokenSourceFetchOptions = {
  roomName: "room-a",
  participantIdentity: "user-1",
  agentName: "agent-x",
  agentMetadata: '{"a":1}',
  deployment: "staging",
};

describe("createTokenSource", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ auth: devAuthWithKeys("id-token") });
  });
  afterAll(() => service.close());

  it("fetches the server URL and a token for the options", async () => {
    const { source, calls } = countedSource(service.baseUrl);
    const response = await source.fetch(agentOptions);
    expect(calls()).toBe(1);
    expect(response.serverUrl).toBe(service.config.livekit.url);
    const claims = await verifyToken(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.video?.room).toBe("room-a");
    expect(claims.roomConfig?.agents).toHaveLength(1);
    expect(firstAgent(claims)).toMatchObject({
      agentName: "agent-x",
      metadata: '{"a":1}',
      deployment: "staging",
    });
  });

  it("serves a second fetch with the same options from the cache", async () => {
    const { source, calls } = countedSource(service.baseUrl);
    const first = await source.fetch(agentOptions);
    const second = await source.fetch({ ...agentOptions });
    expect(calls()).toBe(1);
    expect(second).toEqual(first);
  });

  it("fetches again when agentName changes", async () => {
    const { source, calls } = countedSource(service.baseUrl);
    const first = await source.fetch(agentOptions);
    const second = await source.fetch({ ...agentOptions, agentName: "b" });
    expect(calls()).toBe(2);
    expect(second.participantToken).not.toBe(first.participantToken);
    const claims = await verifyToken(second.participantToken);
    expect(firstAgent(claims)?.agentName).toBe("b");
  });

  it("sends the headers option to the service", async () => {
    const proxy = await startRecordingProxy(service.baseUrl);
    try {
      const source = createTokenSource({
        baseUrl: proxy.baseUrl,
        headers: async () => ({
          authorization: `Bearer ${testKey("id-token")}`,
        }),
      });
      await source.fetch({ roomName: "room-a" });
      expect(proxy.requests).toHaveLength(1);
      expect(proxy.requests[0]?.headers.authorization).toBe(
        `Bearer ${testKey("id-token")}`,
      );
    } finally {
      await proxy.close();
    }
  });

  it("rejects with the server's ConnectError", async () => {
    const roomName = "r".repeat(257);
    const server = await postJson(service.baseUrl, { room_name: roomName });
    expect(server.json.code).toBe("invalid_argument");
    const { source } = countedSource(service.baseUrl);
    const error = await expectConnectError(
      source.fetch({ roomName }),
      Code.InvalidArgument,
    );
    expect(error.rawMessage).toBe(server.json.message);
  });
});

describe("toCreateTokenRequest", () => {
  const cases: [string, TokenSourceFetchOptions, object][] = [
    ["no options", {}, {}],
    ["roomName", { roomName: "room-a" }, { room_name: "room-a" }],
    [
      "participantName",
      { participantName: "Ada" },
      { participant_name: "Ada" },
    ],
    [
      "participantIdentity",
      { participantIdentity: "user-1" },
      { participant_identity: "user-1" },
    ],
    [
      "participantMetadata",
      { participantMetadata: '{"m":1}' },
      { participant_metadata: '{"m":1}' },
    ],
    [
      "participantAttributes",
      { participantAttributes: { k: "v", l: "w" } },
      { participant_attributes: { k: "v", l: "w" } },
    ],
    [
      "agentName",
      { agentName: "agent-x" },
      { room_config: { agents: [{ agent_name: "agent-x" }] } },
    ],
    [
      "agentMetadata",
      { agentMetadata: '{"a":1}' },
      { room_config: { agents: [{ metadata: '{"a":1}' }] } },
    ],
    [
      "deployment",
      { deployment: "staging" },
      { room_config: { agents: [{ deployment: "staging" }] } },
    ],
    [
      "every field",
      {
        roomName: "room-a",
        participantName: "Ada",
        participantIdentity: "user-1",
        participantMetadata: "m",
        participantAttributes: { k: "v" },
        agentName: "agent-x",
        agentMetadata: "a",
        deployment: "staging",
      },
      {
        room_name: "room-a",
        participant_name: "Ada",
        participant_identity: "user-1",
        participant_metadata: "m",
        participant_attributes: { k: "v" },
        room_config: {
          agents: [
            { agent_name: "agent-x", metadata: "a", deployment: "staging" },
          ],
        },
      },
    ],
  ];

  it.each(cases)("maps %s", (_, options, want) => {
    const request = create(
      CreateTokenRequestSchema,
      toCreateTokenRequest(options),
    );
    const json = toJson(CreateTokenRequestSchema, request, {
      useProtoFieldName: true,
    });
    expect(json).toEqual(want);
  });
});
