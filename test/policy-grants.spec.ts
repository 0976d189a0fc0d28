import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { TrackSource } from "livekit-server-sdk";
import { describe, expect, it } from "vitest";
import { RoomConfigurationSchema } from "../gen/livekit/room_configuration_pb.js";
import { VideoGrantSchema } from "../gen/tokenservice/v1/token_service_pb.js";
import { parseConfigDocument } from "../server/config-file.js";
import { participantGrant, policyDefaults } from "../server/policy/defaults.js";
import { resolveGrant } from "../server/policy/grants.js";
import { PolicyError } from "../server/policy/policy-error.js";
import { checkRoomConfig } from "../server/policy/room-config.js";
import type { GrantPolicy } from "../server/policy/types.js";
import { memberPolicy, type TokenRequest } from "./support/policies.js";

type GrantInit = NonNullable<TokenRequest["videoGrant"]>;
type RoomConfigInit = NonNullable<TokenRequest["roomConfig"]>;

const noPublish: GrantPolicy = { ...participantGrant, canPublish: false };
const grant = (init: GrantInit) => create(VideoGrantSchema, init);
const roomConfig = (init: RoomConfigInit) =>
  create(RoomConfigurationSchema, init);

/** The PolicyError `run` throws. */
function refusal(run: () => unknown): PolicyError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error("nothing was refused");
}

describe("resolveGrant", () => {
  it("gives the policy's default-on grants when none is asked for", () => {
    expect(resolveGrant(noPublish, undefined)).toEqual({
      canPublish: false,
      canSubscribe: true,
      canPublishData: true,
      canUpdateOwnMetadata: false,
    });
  });

  it.each<keyof GrantInit>([
    "canPublish",
    "canUpdateOwnMetadata",
    "hidden",
    "recorder",
    "roomCreate",
    "roomAdmin",
    "roomList",
    "roomRecord",
  ])("refuses %s the policy does not give", (key) => {
    const error = refusal(() =>
      resolveGrant(noPublish, grant({ [key]: true })),
    );
    expect(error.rule).toBe("video_grant");
    expect(Code[error.code]).toBe(Code[Code.PermissionDenied]);
  });

  it("narrows the grant to what is asked for", () => {
    const asked = grant({ canSubscribe: false, canPublishData: false });
    expect(resolveGrant(participantGrant, asked)).toEqual({
      canPublish: true,
      canSubscribe: false,
      canPublishData: false,
      canUpdateOwnMetadata: false,
    });
  });

  it("gives an on-request grant only when asked and allowed", () => {
    const policy = { ...participantGrant, hidden: true };
    expect(resolveGrant(policy, undefined)).not.toHaveProperty("hidden");
    expect(resolveGrant(policy, grant({ hidden: true })).hidden).toBe(true);
  });

  it("keeps track sources within the policy's", () => {
    const policy = {
      ...participantGrant,
      canPublishSources: ["camera" as const],
    };
    expect(resolveGrant(policy, undefined).canPublishSources).toEqual([
      TrackSource.CAMERA,
    ]);
    const asked = grant({ canPublishSources: ["screen_share"] });
    expect(refusal(() => resolveGrant(policy, asked)).rule).toBe("video_grant");
  });

  it.each(["webcam", "__proto__", "toString", "constructor"])(
    "refuses the unknown track source %j as invalid_argument",
    (source) => {
      const asked = grant({ canPublishSources: [source] });
      const error = refusal(() => resolveGrant(participantGrant, asked));
      expect(Code[error.code]).toBe(Code[Code.InvalidArgument]);
    },
  );
});

describe("checkRoomConfig", () => {
  const s3 = { case: "s3" as const, value: { secret: "s", bucket: "b" } };
  const egress = { room: { fileOutputs: [{ output: s3 }] } };

  it.each<[string, RoomConfigInit, string]>([
    ["egress", { egress }, "room_config.egress"],
    ["an empty egress", { egress: {} }, "room_config.egress"],
    [
      "max_participants",
      { maxParticipants: 5 },
      "room_config.max_participants",
    ],
    ["empty_timeout", { emptyTimeout: 5 }, "room_config.empty_timeout"],
    ["an agent off the list", { agents: [{ agentName: "x" }] }, "agents"],
    ["an unnamed agent", { agents: [{ agentName: "" }] }, "agents"],
    [
      "a deployment",
      { agents: [{ agentName: "helper", deployment: "d" }] },
      "room_config.agents.deployment",
    ],
    [
      "agent metadata over the cap",
      { agents: [{ agentName: "helper", metadata: "x".repeat(33) }] },
      "room_config.agents[0].metadata",
    ],
  ])("refuses %s, naming the rule", (_, init, rule) => {
    const error = refusal(() =>
      checkRoomConfig(roomConfig(init), memberPolicy),
    );
    expect(error.rule).toBe(rule);
    expect(Code[error.code]).toBe(Code[Code.PermissionDenied]);
  });

  it("allows a name, and agents within the policy", () => {
    const init = {
      name: "r",
      agents: [{ agentName: "helper", metadata: "m" }],
    };
    expect(() => checkRoomConfig(roomConfig(init), memberPolicy)).not.toThrow();
  });

  it("allows egress only to a policy that lists it", () => {
    const policy = {
      ...memberPolicy,
      roomConfig: { ...memberPolicy.roomConfig, fields: ["egress" as const] },
    };
    expect(() => checkRoomConfig(roomConfig({ egress }), policy)).not.toThrow();
  });
});

describe("parseConfigDocument policies", () => {
  const key = "k".repeat(32);
  const read = (policy: unknown) =>
    parseConfigDocument(
      {
        policies: { p: policy },
        callers: { serviceKeys: [{ name: "s", keyEnv: "K", policy: "p" }] },
      },
      { K: key },
    ).auth.serviceKeys[0]?.policy;

  it("gives a policy that names only rooms the narrow defaults", () => {
    expect(read({ rooms: ["lobby"] })).toEqual({
      ...policyDefaults,
      name: "p",
      rooms: ["lobby"],
    });
    expect(policyDefaults.roomConfig.fields).not.toContain("egress");
    expect(policyDefaults.anyIdentity).toBe(false);
    expect(policyDefaults.agents).toEqual([]);
  });

  it("reads every setting a policy may widen", () => {
    const policy = read({
      rooms: ["team-{org}-*"],
      anyIdentity: true,
      grant: { canPublish: false, hidden: true, canPublishSources: ["camera"] },
      maxTtl: "15m",
      agents: ["helper"],
      roomConfig: { fields: ["agents", "egress"], agentMetadataBytes: 10 },
      attributes: { keys: ["role"], maxBytes: 20 },
      metadataBytes: 30,
    });
    expect(policy).toMatchObject({
      anyIdentity: true,
      grant: { canPublish: false, hidden: true, canPublishSources: ["camera"] },
      maxTtlSeconds: 900,
      agents: ["helper"],
      roomConfig: { fields: ["agents", "egress"], agentMetadataBytes: 10 },
      attributeKeys: ["role"],
      attributesBytes: 20,
      metadataBytes: 30,
    });
  });
});
