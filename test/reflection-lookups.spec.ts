import { create, createFileRegistry, type DescFile } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthState, registerHealth } from "../server/health.js";
import { registerReflection } from "../server/reflection.js";
import {
  type H2cServer,
  registerStubTokenService,
  startH2cServer,
} from "./support/h2c-server.js";
import {
  fileNames,
  type ReflectionRequest,
  reflectionClient,
} from "./support/reflection.js";

/** A proto2 file whose message `test.ext.Base` has two extensions. */
const extensionsFile = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "test/extensions.proto",
    package: "test.ext",
    syntax: "proto2",
    messageType: [{ name: "Base", extensionRange: [{ start: 100, end: 200 }] }],
    extension: [150, 101].map((number) => ({
      name: `ext_${number}`,
      number,
      label: Label.OPTIONAL,
      type: Type.INT32,
      extendee: ".test.ext.Base",
    })),
  }),
  () => undefined,
).getFile("test/extensions.proto") as DescFile;

const tokenFile = "tokenservice/v1/token_service.proto";
const healthFile = "grpc/health/v1/health.proto";

describe("registerReflection lookups", () => {
  let server: H2cServer;
  let reflect: ReturnType<typeof reflectionClient>;
  beforeAll(async () => {
    server = await startH2cServer((router) => {
      registerReflection(router, [extensionsFile]);
      registerHealth(router, new HealthState());
      registerStubTokenService(router);
    });
    reflect = reflectionClient(server.baseUrl);
  });
  afterAll(() => server.close());

  /** The answer to one request on a new stream. */
  async function answer(messageRequest: ReflectionRequest["messageRequest"]) {
    const [response] = await reflect({ messageRequest });
    return response;
  }

  it.each([
    ["tokenservice.v1.TokenService.CreateToken", tokenFile],
    [".tokenservice.v1.CreateTokenRequest", tokenFile],
    [
      "tokenservice.v1.CreateTokenRequest.ParticipantAttributesEntry",
      tokenFile,
    ],
    ["tokenservice.v1.VideoGrant.can_publish", tokenFile],
    ["livekit.RoomConfiguration", "livekit/room_configuration.proto"],
    ["google.protobuf.Duration", "google/protobuf/duration.proto"],
    ["grpc.health.v1.Health.Watch", healthFile],
    ["grpc.health.v1.HealthCheckResponse.ServingStatus", healthFile],
    ["grpc.health.v1.HealthCheckResponse.SERVICE_UNKNOWN", healthFile],
    ["test.ext.ext_150", "test/extensions.proto"],
  ])("finds the file containing %s", async (symbol, file) => {
    const response = await answer({
      case: "fileContainingSymbol",
      value: symbol,
    });
    expect(fileNames(response)[0]).toBe(file);
  });

  it("finds the file containing an extension by message and number", async () => {
    const response = await answer({
      case: "fileContainingExtension",
      value: { containingType: "test.ext.Base", extensionNumber: 101 },
    });
    expect(fileNames(response)).toEqual(["test/extensions.proto"]);
  });

  it("lists the extension numbers of a message, sorted", async () => {
    const response = await answer({
      case: "allExtensionNumbersOfType",
      value: "test.ext.Base",
    });
    expect(response?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "test.ext.Base", extensionNumber: [101, 150] },
    });
  });

  it("lists no extension numbers for a message without extensions", async () => {
    const response = await answer({
      case: "allExtensionNumbersOfType",
      value: "tokenservice.v1.CreateTokenRequest",
    });
    expect(response?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: {
        baseTypeName: "tokenservice.v1.CreateTokenRequest",
        extensionNumber: [],
      },
    });
  });

  it.each<[string, ReflectionRequest["messageRequest"], string]>([
    [
      "an unknown file",
      { case: "fileByFilename", value: "no/such.proto" },
      "file not found: no/such.proto",
    ],
    [
      "an unknown extension number",
      {
        case: "fileContainingExtension",
        value: { containingType: "test.ext.Base", extensionNumber: 102 },
      },
      "extension not found: test.ext.Base 102",
    ],
    [
      "a message without extensions",
      {
        case: "fileContainingExtension",
        value: {
          containingType: "tokenservice.v1.CreateTokenRequest",
          extensionNumber: 100,
        },
      },
      "extension not found: tokenservice.v1.CreateTokenRequest 100",
    ],
    [
      "the extension numbers of an unknown message",
      { case: "allExtensionNumbersOfType", value: "no.such.Message" },
      "message type not found: no.such.Message",
    ],
    [
      "the extension numbers of an enum",
      {
        case: "allExtensionNumbersOfType",
        value: "grpc.health.v1.HealthCheckResponse.ServingStatus",
      },
      "message type not found: grpc.health.v1.HealthCheckResponse.ServingStatus",
    ],
  ])("answers NOT_FOUND for %s", async (_, messageRequest, message) => {
    const response = await answer(messageRequest);
    expect(response?.messageResponse).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5, errorMessage: message },
    });
  });
});
