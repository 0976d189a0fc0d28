import { isFieldSet } from "@bufbuild/protobuf";
import {
  type RoomConfiguration,
  RoomConfigurationSchema,
} from "../../gen/livekit/room_configuration_pb.js";
import { attributesBytes } from "../validate.js";
import { PolicyError } from "./policy-error.js";
import type { CallerPolicy, RoomConfigField } from "./types.js";

/**
 * Checks the room configuration a caller sends against its policy: only
 * the fields it lists may be set (`name` always may), `egress` only when
 * listed explicitly, agents only from the allow-list and with bounded
 * metadata and attributes, and `deployment` only with `agents.deployment`.
 *
 * @throws PolicyError (`permission_denied`) naming the first field refused.
 */
export function checkRoomConfig(
  config: RoomConfiguration | undefined,
  policy: CallerPolicy,
): void {
  if (config === undefined) return;
  const allowed = new Set<string>(policy.roomConfig.fields);
  for (const field of RoomConfigurationSchema.fields) {
    if (field.name === "name" || !isFieldSet(config, field)) continue;
    if (!allowed.has(field.name as RoomConfigField)) {
      throw new PolicyError(
        `room_config.${field.name}`,
        `the caller's policy does not allow room_config.${field.name}`,
      );
    }
  }
  for (const [index, agent] of config.agents.entries()) {
    const path = `room_config.agents[${index}]`;
    if (
      !policy.agents.includes("*") &&
      !policy.agents.includes(agent.agentName)
    ) {
      throw new PolicyError(
        "agents",
        `agent "${agent.agentName}" is not on the caller's allow-list`,
      );
    }
    if (agent.deployment !== "" && !allowed.has("agents.deployment")) {
      throw new PolicyError(
        "room_config.agents.deployment",
        `the caller's policy does not allow ${path}.deployment`,
      );
    }
    capBytes(
      `${path}.metadata`,
      Buffer.byteLength(agent.metadata),
      policy.roomConfig.agentMetadataBytes,
    );
    capBytes(
      `${path}.attributes`,
      attributesBytes(agent.attributes),
      policy.roomConfig.agentAttributesBytes,
    );
  }
}

/**
 * Refuses a value larger than the policy allows.
 *
 * @throws PolicyError (`permission_denied`) naming the field.
 */
export function capBytes(field: string, size: number, cap: number): void {
  if (size > cap) {
    throw new PolicyError(
      field,
      `${field} is ${size} bytes; the caller's policy allows ${cap}`,
    );
  }
}
