import { create, toJson } from "@bufbuild/protobuf";
import {
  RoomAgentDispatch,
  RoomConfiguration,
  TokenSourceRequest,
  TokenSourceResponse,
} from "@livekit/protocol";
import { TokenSource, type TokenSourceFetchOptions } from "livekit-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  CreateTokenRequestSchema,
  toCreateTokenRequest,
} from "../client/index.js";
import { createTokenPath, sendRaw } from "./support/http.js";
import {
  type RecordingProxy,
  startRecordingProxy,
} from "./support/recording-proxy.js";
import { startTestService, type TestService } from "./support/service.js";
import { firstAgent, verifyToken } from "./support/token.js";

const everyOption: Required<TokenSourceFetchOptions> = {
  roomName: "room-a",
  participantIdentity: "user-1",
  participantName: "Ada",
  participantMetadata: '{"role":"host"}',
  participantAttributes: { k: "v" },
  agentName: "agent-x",
  agentMetadata: '{"a":1}',
  deployment: "staging",
};

/** The peer message livekit-client builds, with every field set. */
const peerRequest = new TokenSourceRequest({
  roomName: "room-a",
  participantIdentity: "user-1",
  participantName: "Ada",
  participantAttributes: { k: "v" },
  roomConfig: new RoomConfiguration({
    agents: [new RoomAgentDispatch({ agentName: "agent-x" })],
  }),
});

describe("livekit-client TokenSource.endpoint against CreateToken", () => {
  let service: TestService;
  let proxy: RecordingProxy;
  beforeAll(async () => {
    service = await startTestService();
    proxy = await startRecordingProxy(service.baseUrl);
  });
  afterAll(async () => {
    await proxy.close();
    await service.close();
  });
  beforeEach(() => {
    proxy.requests.length = 0;
  });

  it("fetches a token whose claims carry every option", async () => {
    const source = TokenSource.endpoint(`${service.baseUrl}${createTokenPath}`);
    const response = await source.fetch(everyOption);
    expect(response.serverUrl).toBe(service.config.livekit.url);
    const claims = await verifyToken(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.name).toBe("Ada");
    expect(claims.metadata).toBe('{"role":"host"}');
    expect(claims.video?.room).toBe("room-a");
    expect(claims.attributes?.k).toBe("v");
    expect(claims.roomConfig?.agents).toHaveLength(1);
    expect(firstAgent(claims)).toMatchObject({
      agentName: "agent-x",
      metadata: '{"a":1}',
      deployment: "staging",
    });
  });

  it("reports a refused request as HTTP 400 with the error body", async () => {
    const source = TokenSource.endpoint(`${service.baseUrl}${createTokenPath}`);
    await expect(
      source.fetch({
        roomName: "room-a",
        participantIdentity: "é".repeat(129),
      }),
    ).rejects.toThrow(/received 400 \/ \{"code":"invalid_argument"/);
  });

  it.each([
    ...Object.entries(everyOption).map(([key, value]) => ({ [key]: value })),
    everyOption,
  ])("sends the body toCreateTokenRequest maps %o to", async (options) => {
    const source = TokenSource.endpoint(`${proxy.baseUrl}${createTokenPath}`);
    await source.fetch(options);
    expect(proxy.requests).toHaveLength(1);
    const sent = JSON.parse(proxy.requests[0]?.body.toString() ?? "");
    const ours = create(
      CreateTokenRequestSchema,
      toCreateTokenRequest(options),
    );
    expect(sent).toEqual(
      toJson(CreateTokenRequestSchema, ours, { useProtoFieldName: true }),
    );
  });
});

describe("CreateToken with livekit.TokenSourceRequest bodies", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());

  /** Checks a token minted for `peerRequest`. */
  async function expectPeerClaims(token: string) {
    const claims = await verifyToken(token);
    expect(claims.sub).toBe("user-1");
    expect(claims.name).toBe("Ada");
    expect(claims.video?.room).toBe("room-a");
    expect(claims.attributes).toEqual({ k: "v" });
    expect(firstAgent(claims)?.agentName).toBe("agent-x");
  }

  it("accepts the JSON livekit-client sends, and answers in kind", async () => {
    const response = await sendRaw(service.baseUrl, {
      headers: { "content-type": "application/json" },
      body: peerRequest.toJsonString({ useProtoFieldName: true }),
    });
    expect(response.status).toBe(200);
    const peer = TokenSourceResponse.fromJsonString(
      new TextDecoder().decode(response.body),
      { ignoreUnknownFields: true },
    );
    expect(peer.serverUrl).toBe(service.config.livekit.url);
    await expectPeerClaims(peer.participantToken);
  });

  it("accepts the peer message as binary, and answers in kind", async () => {
    const response = await sendRaw(service.baseUrl, {
      headers: { "content-type": "application/proto" },
      body: peerRequest.toBinary(),
    });
    expect(response.status).toBe(200);
    const peer = TokenSourceResponse.fromBinary(response.body);
    expect(peer.serverUrl).toBe(service.config.livekit.url);
    await expectPeerClaims(peer.participantToken);
  });
});
