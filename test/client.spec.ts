import { Code, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTokenServiceClient } from "../client/index.js";
import { expectConnectError } from "./support/errors.js";
import { postJson } from "./support/http.js";
import {
  type RecordingProxy,
  startRecordingProxy,
} from "./support/recording-proxy.js";
import {
  devAuthWithKeys,
  startTestService,
  type TestService,
  testKey,
} from "./support/service.js";
import { verifyToken } from "./support/token.js";

const nodeTransports: [string, (baseUrl: string) => Transport][] = [
  [
    "Connect over HTTP/1.1",
    (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  ],
  [
    "Connect over HTTP/2",
    (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
  ],
  ["gRPC", (baseUrl) => createGrpcTransport({ baseUrl })],
  [
    "gRPC-Web",
    (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  ],
];

describe("createTokenServiceClient", () => {
  let service: TestService;
  let proxy: RecordingProxy;
  beforeAll(async () => {
    service = await startTestService({
      auth: devAuthWithKeys(
        "static",
        "call-1",
        "call-2",
        "default",
        "per-call",
      ),
    });
    proxy = await startRecordingProxy(service.baseUrl);
  });
  afterAll(async () => {
    await proxy.close();
    await service.close();
  });
  beforeEach(() => {
    proxy.requests.length = 0;
  });

  it("calls over connect-web's fetch transport by default", async () => {
    const client = createTokenServiceClient({ baseUrl: proxy.baseUrl });
    const response = await client.createToken({
      roomName: "room-a",
      participantIdentity: "user-1",
    });
    const claims = await verifyToken(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.video?.room).toBe("room-a");
    expect(proxy.requests).toHaveLength(1);
    expect(proxy.requests[0]?.headers["content-type"]).toBe("application/json");
  });

  it.each(nodeTransports)("calls over connect-node's %s", async (_, make) => {
    const client = createTokenServiceClient({
      transport: make(service.baseUrl),
    });
    const response = await client.createToken({ roomName: "room-a" });
    const claims = await verifyToken(response.participantToken);
    expect(claims.video?.room).toBe("room-a");
    expect(response.roomName).toBe("room-a");
  });

  it("throws a TypeError without baseUrl or transport", () => {
    expect(() => createTokenServiceClient({})).toThrow(TypeError);
  });

  it("sends static headers with every call", async () => {
    const client = createTokenServiceClient({
      baseUrl: proxy.baseUrl,
      headers: {
        authorization: `Bearer ${testKey("static")}`,
        "x-app": "demo",
      },
    });
    await client.createToken({});
    await client.createToken({});
    expect(proxy.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${testKey("static")}`,
      `Bearer ${testKey("static")}`,
    ]);
    expect(proxy.requests[1]?.headers["x-app"]).toBe("demo");
  });

  it("calls a headers function before each call", async () => {
    let calls = 0;
    const client = createTokenServiceClient({
      transport: createConnectTransport({
        baseUrl: proxy.baseUrl,
        httpVersion: "1.1",
      }),
      headers: async () => {
        calls++;
        return { authorization: `Bearer ${testKey(`call-${calls}`)}` };
      },
    });
    await client.createToken({});
    await client.createToken({});
    expect(proxy.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${testKey("call-1")}`,
      `Bearer ${testKey("call-2")}`,
    ]);
  });

  it("lets headers given to a call take precedence", async () => {
    const client = createTokenServiceClient({
      baseUrl: proxy.baseUrl,
      headers: () => ({
        authorization: `Bearer ${testKey("default")}`,
        "x-app": "demo",
      }),
    });
    await client.createToken(
      {},
      { headers: { authorization: `Bearer ${testKey("per-call")}` } },
    );
    expect(proxy.requests[0]?.headers.authorization).toBe(
      `Bearer ${testKey("per-call")}`,
    );
    expect(proxy.requests[0]?.headers["x-app"]).toBe("demo");
  });

  it.each([["connect-web (default)", undefined], ...nodeTransports] as const)(
    "surfaces the server's code and message over %s",
    async (_, make) => {
      const body = { room_name: "room-a", room_config: { name: "room-b" } };
      const server = await postJson(service.baseUrl, body);
      expect(server.json.code).toBe("invalid_argument");

      const client = createTokenServiceClient({
        baseUrl: service.baseUrl,
        ...(make && { transport: make(service.baseUrl) }),
      });
      const error = await expectConnectError(
        client.createToken({
          roomName: "room-a",
          roomConfig: { name: "room-b" },
        }),
        Code.InvalidArgument,
      );
      expect(error.rawMessage).toBe(server.json.message);
    },
  );
});
