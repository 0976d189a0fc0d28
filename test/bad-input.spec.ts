import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateTokenRequestSchema,
  TokenService,
} from "../gen/tokenservice/v1/token_service_pb.js";
import { defaultLimits } from "../server/config.js";
import { expectConnectError } from "./support/errors.js";
import { postJson } from "./support/http.js";
import { startTestService, type TestService } from "./support/service.js";

/** `é` is one character but two UTF-8 bytes. */
const twoByte = (chars: number) => "é".repeat(chars);

interface Case {
  what: string;
  /** The field the error must name. */
  field: string;
  body: JsonObject;
}

/** Requests each over one limit, yet short of it when counted in chars. */
const overLimit: Case[] = [
  {
    what: "participant_identity of 258 bytes (129 chars)",
    field: "participant_identity",
    body: { participant_identity: twoByte(129) },
  },
  {
    what: "room_name of 258 bytes (129 chars)",
    field: "room_name",
    body: { room_name: twoByte(129) },
  },
  {
    what: "participant_name of 258 bytes (129 chars)",
    field: "participant_name",
    body: { participant_name: twoByte(129) },
  },
  {
    what: "room_config.name of 258 bytes (129 chars)",
    field: "room_config.name",
    body: { room_config: { name: twoByte(129) } },
  },
  {
    what: "participant_metadata of 64,002 bytes (32,001 chars)",
    field: "participant_metadata",
    body: { participant_metadata: twoByte(32_001) },
  },
  {
    what: "participant_attributes of a 64,000-byte value plus its key",
    field: "participant_attributes",
    body: { participant_attributes: { a: "x".repeat(64_000) } },
  },
  {
    what: "participant_attributes of two entries, 64,002 bytes in all",
    field: "participant_attributes",
    body: {
      participant_attributes: { a: twoByte(16_000), b: twoByte(16_000) },
    },
  },
  {
    what: "fields under their limits whose token would exceed 8 KiB",
    field: "token",
    body: {
      participant_metadata: "m".repeat(4000),
      room_config: {
        agents: [{ agent_name: "a", metadata: "a".repeat(3000) }],
      },
    },
  },
];

/** Requests exactly at each limit, which must mint. */
const atLimit: Omit<Case, "field">[] = [
  {
    what: "participant_identity",
    body: { participant_identity: twoByte(128) },
  },
  { what: "room_name", body: { room_name: twoByte(128) } },
  { what: "participant_name", body: { participant_name: twoByte(128) } },
  { what: "room_config.name", body: { room_config: { name: twoByte(128) } } },
  {
    what: "participant_metadata",
    body: { participant_metadata: twoByte(32_000) },
  },
  {
    what: "participant_attributes",
    body: { participant_attributes: { é: twoByte(31_999) } },
  },
];

describe("TokenService.CreateToken size limits", () => {
  let service: TestService;
  /** The same limits, but a token limit too large to be reached. */
  let roomyTokens: TestService;
  beforeAll(async () => {
    service = await startTestService();
    roomyTokens = await startTestService({
      limits: { ...defaultLimits, tokenBytes: 1024 * 1024 },
    });
  });
  afterAll(async () => {
    await service.close();
    await roomyTokens.close();
  });

  it.each(overLimit)(
    "answers $what with HTTP 400 invalid_argument and no token",
    async ({ field, body }) => {
      const { status, json } = await postJson(service.baseUrl, body);
      expect(status).toBe(400);
      expect(json.code).toBe("invalid_argument");
      expect(json.message).toContain(field);
      expect(json).not.toHaveProperty("participantToken");
    },
  );

  it.each(overLimit)(
    "rejects $what over gRPC with InvalidArgument",
    async ({ field, body }) => {
      const client = createClient(
        TokenService,
        createGrpcTransport({ baseUrl: service.baseUrl }),
      );
      const request = fromJson(CreateTokenRequestSchema, body);
      const error = await expectConnectError(
        client.createToken(request),
        Code.InvalidArgument,
      );
      expect(error.rawMessage).toContain(field);
    },
  );

  it.each(atLimit)(
    "mints with $what exactly at its limit",
    async ({ body }) => {
      const { status, json } = await postJson(roomyTokens.baseUrl, body);
      expect(status).toBe(200);
      expect(json.participantToken).toEqual(expect.any(String));
    },
  );

  it.each([
    ["participant_metadata alone", { participant_metadata: "m".repeat(4000) }],
    [
      "the agent metadata alone",
      {
        room_config: {
          agents: [{ agent_name: "a", metadata: "a".repeat(3000) }],
        },
      },
    ],
  ])("mints a token under 8 KiB from %s", async (_, body) => {
    const { status, json } = await postJson(service.baseUrl, body);
    expect(status).toBe(200);
    const token = String(json.participantToken);
    expect(token.length).toBeGreaterThan(4000);
    expect(token.length).toBeLessThanOrEqual(defaultLimits.tokenBytes);
  });
});
