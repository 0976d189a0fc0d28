import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { TokenSourceFetchOptions } from "livekit-client";
import type { RoomAgentDispatch } from "../gen/livekit/room_configuration_pb.js";
import { RoomAgentDispatchSchema } from "../gen/livekit/room_configuration_pb.js";
import type { CreateTokenRequestSchema } from "../gen/tokenservice/v1/token_service_pb.js";

/** A `CreateToken` request, as the generated client accepts it. */
export type CreateTokenRequestInit = MessageInitShape<
  typeof CreateTokenRequestSchema
>;

/**
 * Maps livekit-client's `TokenSourceFetchOptions` to a `CreateToken`
 * request, as `TokenSource.endpoint` maps them to its JSON body: the
 * participant fields one to one, and `agentName`, `agentMetadata` and
 * `deployment` into the first agent dispatch of `room_config`.
 */
export function toCreateTokenRequest(
  options: TokenSourceFetchOptions,
): CreateTokenRequestInit {
  const request: CreateTokenRequestInit = {
    roomName: options.roomName,
    participantName: options.participantName,
    participantIdentity: options.participantIdentity,
    participantMetadata: options.participantMetadata,
    participantAttributes: options.participantAttributes ?? {},
  };
  const { agentName, agentMetadata, deployment } = options;
  if (
    agentName !== undefined ||
    agentMetadata !== undefined ||
    deployment !== undefined
  ) {
    const agent: RoomAgentDispatch = create(RoomAgentDispatchSchema, {
      agentName,
      metadata: agentMetadata,
      deployment,
    });
    request.roomConfig = { agents: [agent] };
  }
  return request;
}
