import {
  type CallerPolicy,
  type GrantPolicy,
  roomConfigFields,
} from "./types.js";

/** A participant's usual grant: publish, subscribe, send data. */
export const participantGrant: GrantPolicy = {
  canPublish: true,
  canSubscribe: true,
  canPublishData: true,
  canUpdateOwnMetadata: false,
  hidden: false,
  recorder: false,
  roomCreate: false,
  roomAdmin: false,
  roomList: false,
  roomRecord: false,
};

/**
 * What a configured policy allows for whatever it leaves out: narrow, so
 * that every widening is written down. Rooms have no default; a policy
 * must list them.
 */
export const policyDefaults: Omit<CallerPolicy, "name" | "rooms"> = {
  anyIdentity: false,
  grant: participantGrant,
  maxTtlSeconds: 3600,
  agents: [],
  roomConfig: {
    fields: ["agents"],
    agentMetadataBytes: 1024,
    agentAttributesBytes: 1024,
  },
  attributeKeys: [],
  attributesBytes: 1024,
  metadataBytes: 1024,
};

/**
 * The policy of anonymous callers in development mode: any identity, room
 * and agent, every room configuration field but `egress`, and the server's
 * own limits.
 *
 * Note that `egress` stays refused even here: it carries storage
 * credentials and URLs that egress workers act on.
 */
export function developmentPolicy(maxTtlSeconds: number): CallerPolicy {
  return {
    name: "development",
    rooms: ["*"],
    anyIdentity: true,
    grant: { ...participantGrant, canUpdateOwnMetadata: true },
    maxTtlSeconds,
    agents: ["*"],
    roomConfig: {
      fields: roomConfigFields.filter((field) => field !== "egress"),
      agentMetadataBytes: Number.MAX_SAFE_INTEGER,
      agentAttributesBytes: Number.MAX_SAFE_INTEGER,
    },
    attributeKeys: ["*"],
    attributesBytes: Number.MAX_SAFE_INTEGER,
    metadataBytes: Number.MAX_SAFE_INTEGER,
  };
}
