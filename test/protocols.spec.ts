import {
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import { startTestService, type TestService } from "./support/service.js";
import { firstAgent, verifyToken } from "./support/token.js";

interface Case {
  protocol: string;
  /** The response content type that proves which protocol was spoken. */
  contentType: string;
  /** Whether the response came over HTTP/1.1 (it has `connection`). */
  http1: boolean;
  transport(baseUrl: string, interceptors: Interceptor[]): Transport;
}

const cases: Case[] = [
  {
    protocol: "Connect JSON over HTTP/1.1",
    contentType: "application/json",
    http1: true,
    transport: (baseUrl, interceptors) =>
      createConnectTransport({
        baseUrl,
        httpVersion: "1.1",
        useBinaryFormat: false,
        interceptors,
      }),
  },
  {
    protocol: "Connect binary over HTTP/1.1",
    contentType: "application/proto",
    http1: true,
    transport: (baseUrl, interceptors) =>
      createConnectTransport({
        baseUrl,
        httpVersion: "1.1",
        useBinaryFormat: true,
        interceptors,
      }),
  },
  {
    protocol: "Connect JSON over HTTP/2 (h2c)",
    contentType: "application/json",
    http1: false,
    transport: (baseUrl, interceptors) =>
      createConnectTransport({
        baseUrl,
        httpVersion: "2",
        useBinaryFormat: false,
        interceptors,
      }),
  },
  {
    protocol: "gRPC over HTTP/2 (h2c prior knowledge)",
    contentType: "application/grpc+proto",
    http1: false,
    transport: (baseUrl, interceptors) =>
      createGrpcTransport({ baseUrl, interceptors }),
  },
  {
    protocol: "gRPC-Web over HTTP/1.1",
    contentType: "application/grpc-web+proto",
    http1: true,
    transport: (baseUrl, interceptors) =>
      createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  },
];

const request = {
  roomName: "room-a",
  participantIdentity: "user-1",
  participantName: "Ada",
  participantMetadata: '{"role":"host"}',
  participantAttributes: { k: "v" },
  roomConfig: {
    agents: [
      { agentName: "agent-x", metadata: '{"a":1}', deployment: "staging" },
    ],
  },
};

describe("TokenService.CreateToken on every protocol", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());

  it.each(cases)("mints a verifiable token over $protocol", async (c) => {
    const seen: Headers[] = [];
    const recordResponse: Interceptor = (next) => async (req) => {
      const res = await next(req);
      seen.push(res.header);
      return res;
    };
    const client = createClient(
      TokenService,
      c.transport(service.baseUrl, [recordResponse]),
    );

    const response = await client.createToken(request);

    expect(seen).toHaveLength(1);
    expect(seen[0]?.get("content-type")).toBe(c.contentType);
    expect(seen[0]?.has("connection")).toBe(c.http1);

    const claims = await verifyToken(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.name).toBe("Ada");
    expect(claims.video?.room).toBe("room-a");
    expect(claims.video?.roomJoin).toBe(true);
    expect(claims.metadata).toBe('{"role":"host"}');
    expect(claims.attributes).toEqual({ k: "v" });
    expect(claims.roomConfig?.agents).toHaveLength(1);
    expect(firstAgent(claims)).toMatchObject({
      agentName: "agent-x",
      metadata: '{"a":1}',
      deployment: "staging",
    });
    expect(claims.exp).toBeGreaterThan(claims.nbf ?? Number.POSITIVE_INFINITY);

    expect(response.serverUrl).toBe(service.config.livekit.url);
    expect(response.participantIdentity).toBe(claims.sub);
    expect(response.participantName).toBe(claims.name);
    expect(response.roomName).toBe(claims.video?.room);
    expect(Number(response.expiresAt?.seconds)).toBe(claims.exp);
    expect(response.expiresAt?.nanos).toBe(0);
  });
});
