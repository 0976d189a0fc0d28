import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import { file_tokenservice_v1_token_service } from "../gen/tokenservice/v1/token_service_pb.js";
import { HealthState, registerHealth } from "../server/health.js";
import { registerReflection } from "../server/reflection.js";
import {
  bufCurl,
  type H2cServer,
  registerStubTokenService,
  startH2cServer,
} from "./support/h2c-server.js";
import { fileNames, reflectionClient } from "./support/reflection.js";

describe("registerReflection", () => {
  let server: H2cServer;
  let reflect: ReturnType<typeof reflectionClient>;
  const calls: unknown[] = [];
  beforeAll(async () => {
    server = await startH2cServer((router) => {
      registerReflection(router, [
        file_tokenservice_v1_token_service,
        file_grpc_health_v1_health,
      ]);
      registerHealth(router, new HealthState());
      registerStubTokenService(router, calls);
    });
    reflect = reflectionClient(server.baseUrl);
  });
  afterAll(() => server.close());

  it("lets buf curl list every method of every registered service", async () => {
    const { stdout } = await bufCurl(["--list-methods", server.baseUrl]);
    expect(stdout.trim().split("\n")).toEqual([
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/List",
      "grpc.health.v1.Health/Watch",
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      "tokenservice.v1.TokenService/CreateToken",
    ]);
  });

  it.each([["grpc-v1"], ["grpc-v1alpha"]])(
    "lets buf curl call CreateToken with no schema over %s",
    async (reflectProtocol) => {
      calls.length = 0;
      const body = {
        room_name: "room-a",
        ttl: "600s",
        room_config: { name: "room-a", agents: [{ agent_name: "agent-x" }] },
      };
      const { stdout } = await bufCurl([
        ...["--reflect-protocol", reflectProtocol],
        `${server.baseUrl}/tokenservice.v1.TokenService/CreateToken`,
        ...["-d", JSON.stringify(body)],
      ]);
      expect(JSON.parse(stdout)).toEqual({
        serverUrl: "wss://stub.livekit.example",
        participantToken: "stub-token",
        participantIdentity: "stub-identity",
        participantName: "Stub",
        roomName: "stub-room",
        expiresAt: "2030-01-02T03:04:05Z",
      });
      expect(calls).toMatchObject([
        {
          roomName: "room-a",
          ttl: { seconds: 600n, nanos: 0 },
          roomConfig: { name: "room-a", agents: [{ agentName: "agent-x" }] },
        },
      ]);
    },
  );

  it("lists the registered services, sorted, echoing the request", async () => {
    const [response] = await reflect({
      host: "example",
      messageRequest: { case: "listServices", value: "*" },
    });
    expect(response?.validHost).toBe("example");
    expect(response?.originalRequest?.messageRequest).toEqual({
      case: "listServices",
      value: "*",
    });
    const answer = response?.messageResponse;
    expect(answer?.case).toBe("listServicesResponse");
    const listed = answer?.case === "listServicesResponse" ? answer.value : [];
    expect(listed).toMatchObject({
      service: [
        { name: "grpc.health.v1.Health" },
        { name: "grpc.reflection.v1.ServerReflection" },
        { name: "grpc.reflection.v1alpha.ServerReflection" },
        { name: "tokenservice.v1.TokenService" },
      ],
    });
  });

  it("sends a file with its transitive dependencies, each once per stream", async () => {
    const responses = await reflect(
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "tokenservice.v1.TokenService",
        },
      },
      {
        messageRequest: {
          case: "fileByFilename",
          value: "google/protobuf/timestamp.proto",
        },
      },
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "grpc.health.v1.Health",
        },
      },
    );
    expect(responses.map(fileNames)).toEqual([
      [
        "tokenservice/v1/token_service.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/timestamp.proto",
        "livekit/room_configuration.proto",
      ],
      ["google/protobuf/timestamp.proto"],
      ["grpc/health/v1/health.proto"],
    ]);
  });

  it("answers an unknown symbol with error_response NOT_FOUND", async () => {
    const [response] = await reflect({
      messageRequest: { case: "fileContainingSymbol", value: "no.such.Type" },
    });
    expect(response?.messageResponse).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5, errorMessage: "symbol not found: no.such.Type" },
    });
  });

  it("ends the stream with invalid_argument for a request that asks nothing", async () => {
    const error = await reflect({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
  });
});
