import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateTokenRequestSchema } from "../../gen/tokenservice/v1/token_service_pb.js";
import {
  participantGrant,
  policyDefaults,
} from "../../server/policy/defaults.js";
import type { CallerPolicy } from "../../server/policy/types.js";

/** A `CreateToken` request as the generated client takes it. */
export type TokenRequest = MessageInitShape<typeof CreateTokenRequestSchema>;

/** A policy with the narrow defaults and `overrides`. */
export function makePolicy(
  name: string,
  rooms: string[],
  overrides: Partial<Omit<CallerPolicy, "name" | "rooms">> = {},
): CallerPolicy {
  return { ...policyDefaults, name, rooms, ...overrides };
}

/** End users: lobby, `support-*` and their own team's rooms; no publish. */
export const memberPolicy = makePolicy(
  "members",
  ["lobby", "support-*", "team-{org}-*"],
  {
    grant: { ...participantGrant, canPublish: false },
    maxTtlSeconds: 900,
    agents: ["helper"],
    roomConfig: {
      fields: ["agents"],
      agentMetadataBytes: 32,
      agentAttributesBytes: 32,
    },
    attributeKeys: ["role"],
    attributesBytes: 32,
    metadataBytes: 32,
  },
);

/** A backend that names identities, dispatches agents, sets metadata. */
export const backendPolicy = makePolicy("backend", ["*"], {
  anyIdentity: true,
  grant: { ...participantGrant, hidden: true, canPublishSources: ["camera"] },
  maxTtlSeconds: 1800,
  agents: ["support-agent"],
  roomConfig: {
    fields: ["agents", "metadata"],
    agentMetadataBytes: 256,
    agentAttributesBytes: 256,
  },
  attributeKeys: ["role", "tier"],
});

/** A kiosk backend: its own rooms, random identities only. */
export const kioskPolicy = makePolicy("kiosk", ["kiosk-*"]);

/** A recording backend: the only policy that lists `egress`. */
export const recorderPolicy = makePolicy("recorder", ["*"], {
  roomConfig: { ...policyDefaults.roomConfig, fields: ["egress"] },
});
