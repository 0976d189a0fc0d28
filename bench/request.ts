/**
 * The one request the benchmark sends to both targets, in each wire form,
 * and the check that a response carries the token that request asks for.
 */
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { jwtVerify } from "jose";
import { CreateTokenRequestSchema } from "../gen/tokenservice/v1/token_service_pb.js";

/** The path of `CreateToken` on the service. */
export const createTokenPath = "/tokenservice.v1.TokenService/CreateToken";

/** Room `bench-room`, identity `bench-user`, name `Bench User`, one agent. */
export const benchRequest = create(CreateTokenRequestSchema, {
  roomName: "bench-room",
  participantIdentity: "bench-user",
  participantName: "Bench User",
  roomConfig: { agents: [{ agentName: "bench-agent" }] },
});

/**
 * The request as JSON with the proto field names (`room_name`, …), which
 * both the service (Connect JSON) and the peer (`RoomConfiguration.fromJson`
 * and plain property reads) understand.
 */
export function jsonBody(): string {
  return toJsonString(CreateTokenRequestSchema, benchRequest, {
    useProtoFieldName: true,
  });
}

/** The request as protobuf, framed as one gRPC message (5-byte envelope). */
export function grpcBody(): Buffer {
  const message = toBinary(CreateTokenRequestSchema, benchRequest);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0); // not compressed
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** What a valid token for the bench request must say. */
export interface ExpectedToken {
  apiKey: string;
  apiSecret: string;
}

/**
 * Verifies a participant token's signature with the API secret and checks
 * that it grants the bench request: issuer, identity, name, room, and the
 * agent dispatch.
 *
 * @throws Error saying what is wrong
 */
export async function checkToken(
  token: string,
  expected: ExpectedToken,
): Promise<Record<string, unknown>> {
  const { payload } = await jwtVerify(
    token,
    new TextEncoder().encode(expected.apiSecret),
    { algorithms: ["HS256"], issuer: expected.apiKey, subject: "bench-user" },
  );
  const video = payload.video as { room?: string; roomJoin?: boolean };
  const roomConfig = payload.roomConfig as
    | { agents?: { agentName?: string }[] }
    | undefined;
  const problems: string[] = [];
  if (payload.name !== "Bench User") problems.push(`name ${payload.name}`);
  if (video?.room !== "bench-room") problems.push(`room ${video?.room}`);
  if (video?.roomJoin !== true) problems.push("no roomJoin");
  if (roomConfig?.agents?.[0]?.agentName !== "bench-agent") {
    problems.push(`agents ${JSON.stringify(roomConfig?.agents)}`);
  }
  if (problems.length > 0) {
    throw new Error(`token does not match the request: ${problems.join(", ")}`);
  }
  return payload;
}
