import { ConfigError } from "./config-error.js";
import type { Fields } from "./config-fields.js";
import { parseDuration } from "./duration.js";
import { policyDefaults } from "./policy/defaults.js";
import { checkRoomPattern } from "./policy/rooms.js";
import { minTtlSeconds } from "./policy/ttl.js";
import {
  type CallerPolicy,
  type GrantPolicy,
  type RoomConfigField,
  roomConfigFields,
  type TrackSourceName,
} from "./policy/types.js";

const trackSources: readonly TrackSourceName[] = [
  "camera",
  "microphone",
  "screen_share",
  "screen_share_audio",
];

const maxBytes = 1024 * 1024;

/**
 * Reads the `policies` section: a map from policy name to policy. What a
 * policy leaves out takes the narrow defaults of `policyDefaults`.
 *
 * @throws ConfigError naming the key at fault.
 */
export function readPolicies(section: Fields): Map<string, CallerPolicy> {
  const policies = new Map<string, CallerPolicy>();
  for (const name of section.keys()) {
    policies.set(name, readPolicy(name, section.object(name)));
  }
  return policies;
}

function readPolicy(name: string, fields: Fields): CallerPolicy {
  fields.only([
    "rooms",
    "anyIdentity",
    "grant",
    "maxTtl",
    "agents",
    "roomConfig",
    "attributes",
    "metadataBytes",
  ]);
  const d = policyDefaults;
  const rooms = fields.strings("rooms", undefined);
  for (const [i, pattern] of rooms.entries()) {
    const problem = checkRoomPattern(pattern);
    if (problem)
      throw new ConfigError(`${fields.path("rooms")}[${i}]`, problem);
  }
  const roomConfig = fields.object("roomConfig");
  roomConfig.only(["fields", "agentMetadataBytes", "agentAttributesBytes"]);
  const attributes = fields.object("attributes");
  attributes.only(["keys", "maxBytes"]);

  return {
    name,
    rooms,
    anyIdentity: fields.boolean("anyIdentity", d.anyIdentity),
    grant: readGrant(fields.object("grant")),
    maxTtlSeconds: readTtl(fields, d.maxTtlSeconds),
    agents: fields.strings("agents", d.agents),
    roomConfig: {
      fields: readRoomConfigFields(roomConfig),
      agentMetadataBytes: roomConfig.number(
        "agentMetadataBytes",
        d.roomConfig.agentMetadataBytes,
        0,
        maxBytes,
      ),
      agentAttributesBytes: roomConfig.number(
        "agentAttributesBytes",
        d.roomConfig.agentAttributesBytes,
        0,
        maxBytes,
      ),
    },
    attributeKeys: attributes.strings("keys", d.attributeKeys),
    attributesBytes: attributes.number(
      "maxBytes",
      d.attributesBytes,
      0,
      maxBytes,
    ),
    metadataBytes: fields.number("metadataBytes", d.metadataBytes, 0, maxBytes),
  };
}

function readGrant(fields: Fields): GrantPolicy {
  const base = policyDefaults.grant;
  const flags = Object.keys(base).filter(
    (key) => key !== "canPublishSources",
  ) as (keyof Omit<GrantPolicy, "canPublishSources">)[];
  fields.only([...flags, "canPublishSources"]);
  const grant = { ...base };
  for (const key of flags) grant[key] = fields.boolean(key, base[key]);
  if (fields.has("canPublishSources")) {
    const sources = fields.strings("canPublishSources", undefined);
    for (const source of sources) {
      if (!trackSources.includes(source as TrackSourceName)) {
        throw new ConfigError(
          fields.path("canPublishSources"),
          `unknown source "${source}"; expected ${trackSources.join(", ")}`,
        );
      }
    }
    grant.canPublishSources = sources as TrackSourceName[];
  }
  return grant;
}

function readTtl(fields: Fields, fallback: number): number {
  if (!fields.has("maxTtl")) return fallback;
  const seconds = parseDuration(fields.stringOrNumber("maxTtl"));
  if (seconds === undefined || seconds < minTtlSeconds) {
    throw new ConfigError(
      fields.path("maxTtl"),
      `must be a duration of at least ${minTtlSeconds}s, like 15m or 1h`,
    );
  }
  return seconds;
}

function readRoomConfigFields(fields: Fields): RoomConfigField[] {
  const names = fields.strings("fields", policyDefaults.roomConfig.fields);
  for (const name of names) {
    if (!roomConfigFields.includes(name as RoomConfigField)) {
      throw new ConfigError(
        fields.path("fields"),
        `unknown field "${name}"; expected ${roomConfigFields.join(", ")}`,
      );
    }
  }
  return names as RoomConfigField[];
}
