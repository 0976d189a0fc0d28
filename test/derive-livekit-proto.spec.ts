import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { RoomConfiguration } from "@livekit/protocol";
import { AccessToken, TokenVerifier } from "livekit-server-sdk";
import { describe, expect, it } from "vitest";
import {
  file_livekit_room_configuration,
  RoomConfigurationSchema,
} from "../gen/livekit/room_configuration_pb.js";
import { deriveProtoSource } from "../scripts/derive-livekit-proto.js";
import {
  describeV1,
  describeV2,
  diffSchemas,
  unsetFields,
  type V1MessageType,
} from "./support/protobuf-v1-schema.js";
import { roomConfigurationFixtures } from "./support/room-config-fixture.js";

const require = createRequire(import.meta.url);

/** The `@livekit/protocol` copy that livekit-server-sdk itself loads. */
const sdkProtocol = createRequire(require.resolve("livekit-server-sdk"))(
  "@livekit/protocol",
) as typeof import("@livekit/protocol");

const versionOf = (entry: string): string =>
  createRequire(entry)("../package.json").version;
const topVersion = versionOf(require.resolve("@livekit/protocol"));
const sdkVersion = versionOf(
  createRequire(require.resolve("livekit-server-sdk")).resolve(
    "@livekit/protocol",
  ),
);

const root = RoomConfiguration as unknown as V1MessageType;
/** The script reads v1 runtime type information without importing types. */
const deriveRoot = RoomConfiguration as unknown as Parameters<
  typeof deriveProtoSource
>[0];
const fixtures = roomConfigurationFixtures().map((json) =>
  RoomConfiguration.fromJson(json),
);
const [fixture] = fixtures;
if (fixture === undefined) throw new Error("no fixture");

/** Matching JSON options of protobuf-es v1 and v2. */
const jsonOptions = [
  { name: "defaults", v1: {}, v2: {} },
  {
    name: "all implicit fields",
    v1: { emitDefaultValues: true },
    v2: { alwaysEmitImplicit: true },
  },
  {
    name: "proto field names",
    v1: { useProtoFieldName: true },
    v2: { useProtoFieldName: true },
  },
  {
    name: "enum numbers",
    v1: { enumAsInteger: true },
    v2: { enumAsInteger: true },
  },
] as const;

describe("room configuration fixtures", () => {
  it("set every field of every reachable message type", () => {
    expect(unsetFields(root, fixtures)).toEqual([]);
  });
});

describe("generated RoomConfigurationSchema", () => {
  it.each(fixtures.map((f, i) => [i, f] as const))(
    "reads and rewrites @livekit/protocol's bytes unchanged (fixture %i)",
    (_, message) => {
      const bytes = message.toBinary();
      const generated = fromBinary(RoomConfigurationSchema, bytes);
      expect(generated.egress?.room?.fileOutputs).toHaveLength(4);
      expect(toBinary(RoomConfigurationSchema, generated)).toEqual(bytes);
    },
  );

  it.each(jsonOptions)(
    "writes the same JSON as @livekit/protocol ($name)",
    ({ v1, v2 }) => {
      for (const message of fixtures) {
        const generated = fromBinary(
          RoomConfigurationSchema,
          message.toBinary(),
        );
        expect(toJson(RoomConfigurationSchema, generated, v2)).toEqual(
          message.toJson(v1),
        );
      }
    },
  );

  it.each(jsonOptions)(
    "parses @livekit/protocol's JSON to the same bytes ($name)",
    ({ v1 }) => {
      for (const message of fixtures) {
        const parsed = fromJson(RoomConfigurationSchema, message.toJson(v1));
        expect(toBinary(RoomConfigurationSchema, parsed)).toEqual(
          message.toBinary(),
        );
      }
    },
  );
});

describe(`livekit-server-sdk's @livekit/protocol ${sdkVersion}`, () => {
  it(`has the schema of the top-level copy, ${topVersion}`, () => {
    const sdkRoot = sdkProtocol.RoomConfiguration as unknown as V1MessageType;
    const labels = [`top-level ${topVersion}`, `SDK's ${sdkVersion}`] as const;
    const diffs = diffSchemas(describeV1(root), describeV1(sdkRoot), labels);
    expect(diffs).toEqual([]);
  });

  it("reads and rewrites the full fixture's bytes unchanged", () => {
    const bytes = fixture.toBinary();
    const sdkMessage = sdkProtocol.RoomConfiguration.fromBinary(bytes);
    expect(sdkMessage.toBinary()).toEqual(bytes);
  });

  it("puts the full fixture into AccessToken's roomConfig claim", async () => {
    const secret = "a-secret-of-at-least-thirty-two-characters";
    const token = new AccessToken("APIkey", secret, { identity: "alice" });
    token.addGrant({ roomJoin: true, room: "room-0" });
    token.roomConfig = sdkProtocol.RoomConfiguration.fromBinary(
      fixture.toBinary(),
    );
    const claims = await new TokenVerifier("APIkey", secret).verify(
      await token.toJwt(),
    );
    expect(claims.roomConfig).toEqual(
      fixture.toJson({ emitDefaultValues: true }),
    );
    const parsed = RoomConfiguration.fromJson(claims.roomConfig as never);
    expect(parsed.toJson()).toEqual(fixture.toJson());
    expect(parsed.equals(fixture)).toBe(true);
    expect(parsed.toBinary()).toEqual(fixture.toBinary());
  });
});

describe("deriveProtoSource", () => {
  const committed = readFileSync(
    new URL("../proto/livekit/room_configuration.proto", import.meta.url),
    "utf8",
  );

  it("derives the committed room_configuration.proto byte for byte", () => {
    // The script writes the source with one trailing newline.
    const written = `${deriveProtoSource(deriveRoot).trimEnd()}\n`;
    expect(written).toBe(committed);
  });

  it("names the installed @livekit/protocol version in the header", () => {
    expect(deriveProtoSource(deriveRoot).split("\n")[1]).toBe(
      "// Derived from the runtime type information of @livekit/protocol " +
        `${topVersion}.`,
    );
  });

  it("yields generated code with the installed package's schema", () => {
    const { messages, enums } = file_livekit_room_configuration;
    const generated = describeV2([...messages, ...enums]);
    const installed = describeV1(root);
    const labels = ["@livekit/protocol", "gen/"] as const;
    expect(diffSchemas(installed, generated, labels)).toEqual([]);
    const order = (schema: typeof installed) =>
      Object.entries(schema).map(
        ([name, t]) => `${t.kind} ${name}: ${t.members.map((m) => m.no)}`,
      );
    const byKind = (schema: typeof installed, kind: string) =>
      order(schema).filter((line) => line.startsWith(kind));
    for (const kind of ["message", "enum"]) {
      expect(byKind(generated, kind)).toEqual(byKind(installed, kind));
    }
  });

  it("rejects a nested type, which the derived file cannot name", () => {
    const nested = {
      typeName: "livekit.Outer.Inner",
      fields: { list: () => [] },
    };
    expect(() => deriveProtoSource(nested)).toThrow(
      "livekit.Outer.Inner: only top-level types of package livekit are " +
        "supported",
    );
  });
});
