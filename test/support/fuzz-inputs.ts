import { gzipSync } from "node:zlib";
import {
  create,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonValue,
  ScalarType,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import fc from "fast-check";
import {
  RoomConfigurationSchema,
  RoomEgressSchema,
} from "../../gen/livekit/room_configuration_pb.js";
import {
  type CreateTokenRequest,
  CreateTokenRequestSchema,
} from "../../gen/tokenservice/v1/token_service_pb.js";

/**
 * fast-check arbitraries for hostile CreateToken requests: valid requests
 * to start from, byte-level mutations of protobuf, JSON values of the
 * wrong type for every field of the schema, malformed UTF-8 and UTF-16,
 * content types and encodings.
 */

/** Any Unicode text: whole code points, no lone surrogates. */
const text = (maxLength: number) => fc.string({ maxLength, unit: "binary" });

/** Egress requests in JSON, each reaching different nested messages. */
const egressTemplates: JsonValue[] = [
  {
    room: {
      roomName: "r",
      layout: "grid",
      file: {
        filepath: "out.mp4",
        s3: { accessKey: "AK", secret: "S", bucket: "b", metadata: { k: "v" } },
      },
      preset: "H264_720P_30",
    },
  },
  { tracks: { filepath: "t/{track_id}", gcp: { credentials: "c" } } },
  {
    participant: {
      fileOutputs: [{ filepath: "p.mp4", azure: { accountName: "a" } }],
      advanced: { width: 1280, keyFrameInterval: 2.5 },
    },
  },
  {
    room: {
      streamOutputs: [{ urls: ["rtmp://127.0.0.1/live"] }],
      webhooks: [{ url: "https://127.0.0.1/hook", signingKey: "k" }],
      imageOutputs: [{ captureInterval: 5 }],
    },
  },
];

const egress = fc
  .constantFrom(...egressTemplates)
  .map((json) => fromJson(RoomEgressSchema, json));

const agent = fc.record(
  {
    agentName: text(12),
    metadata: text(40),
    deployment: text(8),
    attributes: fc.dictionary(text(6), text(10), { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

const roomConfig = fc
  .record(
    {
      name: text(20),
      emptyTimeout: fc.nat(),
      departureTimeout: fc.nat(),
      maxParticipants: fc.nat(),
      metadata: text(60),
      minPlayoutDelay: fc.nat(),
      maxPlayoutDelay: fc.nat(),
      syncStreams: fc.boolean(),
      agents: fc.array(agent, { maxLength: 4 }),
      tags: fc.dictionary(text(8), text(12), { maxKeys: 4 }),
      egress,
    },
    { requiredKeys: [] },
  )
  .map((init) => create(RoomConfigurationSchema, init));

const trackSource = fc.constantFrom(
  "camera",
  "microphone",
  "screen_share",
  "screen_share_audio",
  "CAMERA",
  "",
  "screen-share",
);

const videoGrant = fc.record(
  {
    canPublish: fc.boolean(),
    canPublishSources: fc.array(trackSource, { maxLength: 5 }),
    canSubscribe: fc.boolean(),
    canPublishData: fc.boolean(),
    canUpdateOwnMetadata: fc.boolean(),
    hidden: fc.boolean(),
    recorder: fc.boolean(),
    roomCreate: fc.boolean(),
    roomAdmin: fc.boolean(),
    roomList: fc.boolean(),
    roomRecord: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** The largest Duration that JSON can carry (about 10,000 years). */
const maxJsonSeconds = 315_576_000_000n;

const ttl = fc
  .record({
    seconds: fc.oneof(
      fc.bigInt({ min: -maxJsonSeconds, max: maxJsonSeconds }),
      fc.bigInt({ min: 0n, max: 30_000n }),
    ),
    nanos: fc.integer({ min: 0, max: 999_999_999 }),
  })
  .map(({ seconds, nanos }) => ({ seconds, nanos: seconds < 0n ? 0 : nanos }));

/** A request that both protobuf binary and JSON can carry. */
export const validRequest: fc.Arbitrary<CreateTokenRequest> = fc
  .record(
    {
      roomName: text(40),
      participantName: text(40),
      participantIdentity: text(40),
      participantMetadata: text(200),
      participantAttributes: fc.dictionary(text(10), text(20), { maxKeys: 4 }),
      roomConfig,
      ttl,
      videoGrant,
    },
    { requiredKeys: [] },
  )
  .map((init) => create(CreateTokenRequestSchema, init));

export function toBinaryRequest(request: CreateTokenRequest): Uint8Array {
  return toBinary(CreateTokenRequestSchema, request);
}

export function toJsonRequest(request: CreateTokenRequest): string {
  return toJsonString(CreateTokenRequestSchema, request);
}

// --- protobuf wire format -------------------------------------------------

/** A varint (up to 64 bits) as protobuf writes it. */
export function varint(value: bigint | number): Buffer {
  let rest = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Buffer.from(bytes);
}

/** A length-delimited field: tag, length, bytes. */
export function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([
    varint((field << 3) | 2),
    varint(bytes.length),
    Buffer.from(bytes),
  ]);
}

/** A byte-level change to a serialized message. */
export type Mutation = { name: string; apply(bytes: Buffer): Buffer };

const position = (bytes: Buffer, at: number) =>
  bytes.length === 0 ? 0 : at % (bytes.length + 1);

/** Mutations that break protobuf the way corrupt or hostile peers do. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]) => ({
    name: `flip bit ${bit} of byte ${at}`,
    apply: (bytes: Buffer) => {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) {
        const i = at % copy.length;
        copy[i] = (copy[i] as number) ^ (1 << bit);
      }
      return copy;
    },
  })),
  fc.nat().map((at) => ({
    name: `truncate at ${at}`,
    apply: (bytes: Buffer) =>
      bytes.subarray(0, bytes.length === 0 ? 0 : at % bytes.length),
  })),
  fc
    .tuple(
      fc.nat(),
      fc.integer({ min: 1, max: 536_870_911 }),
      fc.constantFrom(
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]),
        // 11 bytes: longer than any valid varint.
        Buffer.from([
          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1,
        ]),
        Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]),
      ),
    )
    .map(([at, field, huge]) => ({
      name: `huge varint in field ${field} at ${at}`,
      apply: (bytes: Buffer) => {
        const i = position(bytes, at);
        const inserted = Buffer.concat([varint(field << 3), huge]);
        return Buffer.concat([
          bytes.subarray(0, i),
          inserted,
          bytes.subarray(i),
        ]);
      },
    })),
  fc
    .tuple(fc.nat(), fc.integer({ min: 1, max: 20 }), fc.bigInt(0n, 2n ** 64n))
    .map(([at, field, length]) => ({
      name: `length ${length} in field ${field} at ${at}`,
      apply: (bytes: Buffer) => {
        const i = position(bytes, at);
        const inserted = Buffer.concat([
          varint((field << 3) | 2),
          varint(length),
        ]);
        return Buffer.concat([
          bytes.subarray(0, i),
          inserted,
          bytes.subarray(i),
        ]);
      },
    })),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 7 })).map(([at, xor]) => ({
    name: `wire type of byte ${at} xor ${xor}`,
    apply: (bytes: Buffer) => {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) {
        const i = at % copy.length;
        copy[i] = (copy[i] as number) ^ xor;
      }
      return copy;
    },
  })),
  fc
    .tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }))
    .map(([at, junk]) => ({
      name: `splice ${junk.length} random bytes at ${at}`,
      apply: (bytes: Buffer) => {
        const i = position(bytes, at);
        return Buffer.concat([bytes.subarray(0, i), junk, bytes.subarray(i)]);
      },
    })),
  fc.integer({ min: 1, max: 2000 }).map((depth) => ({
    name: `${depth} nested groups in field 15`,
    apply: (bytes: Buffer) =>
      Buffer.concat([
        bytes,
        Buffer.alloc(depth, (15 << 3) | 3),
        Buffer.alloc(depth, (15 << 3) | 4),
      ]),
  })),
  fc.integer({ min: 2, max: 50 }).map((times) => ({
    name: `repeat the message ${times} times`,
    apply: (bytes: Buffer) =>
      Buffer.concat(Array.from({ length: times }, () => bytes)),
  })),
);

/** Byte sequences that are not UTF-8. */
export const invalidUtf8: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom(
    Buffer.from([0xff]),
    Buffer.from([0xc0, 0x80]), // overlong NUL
    Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate (CESU-8)
    Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
    Buffer.from([0xe2, 0x82]), // truncated sequence
    Buffer.from([0x80]), // lone continuation byte
  ),
  fc
    .tuple(text(10), fc.uint8Array({ minLength: 1, maxLength: 8 }), text(10))
    .map(([before, junk, after]) =>
      Buffer.concat([Buffer.from(before), junk, Buffer.from(after)]),
    ),
);

/**
 * Where a string sits in a CreateTokenRequest, as a function from the
 * string's bytes to a serialized request holding it there.
 */
export const stringSlots: { name: string; wrap(bytes: Buffer): Buffer }[] = [
  { name: "room_name", wrap: (b) => lengthDelimited(1, b) },
  { name: "participant_name", wrap: (b) => lengthDelimited(2, b) },
  { name: "participant_identity", wrap: (b) => lengthDelimited(3, b) },
  { name: "participant_metadata", wrap: (b) => lengthDelimited(4, b) },
  {
    name: "participant_attributes key",
    wrap: (b) =>
      lengthDelimited(
        5,
        Buffer.concat([
          lengthDelimited(1, b),
          lengthDelimited(2, Buffer.from("v")),
        ]),
      ),
  },
  {
    name: "participant_attributes value",
    wrap: (b) =>
      lengthDelimited(
        5,
        Buffer.concat([
          lengthDelimited(1, Buffer.from("k")),
          lengthDelimited(2, b),
        ]),
      ),
  },
  {
    name: "room_config.name",
    wrap: (b) => lengthDelimited(6, lengthDelimited(1, b)),
  },
  {
    name: "room_config.metadata",
    wrap: (b) => lengthDelimited(6, lengthDelimited(11, b)),
  },
  {
    name: "room_config.agents[0].agent_name",
    wrap: (b) => lengthDelimited(6, lengthDelimited(10, lengthDelimited(1, b))),
  },
  {
    name: "room_config.agents[0].metadata",
    wrap: (b) => lengthDelimited(6, lengthDelimited(10, lengthDelimited(2, b))),
  },
  {
    name: "room_config.tags key",
    wrap: (b) =>
      lengthDelimited(
        6,
        lengthDelimited(
          12,
          Buffer.concat([
            lengthDelimited(1, b),
            lengthDelimited(2, Buffer.from("v")),
          ]),
        ),
      ),
  },
  {
    name: "video_grant.can_publish_sources",
    wrap: (b) => lengthDelimited(101, lengthDelimited(2, b)),
  },
];

// --- JSON -----------------------------------------------------------------

/** A field of the request, by its JSON path, and what kind of value it is. */
export interface FieldPath {
  path: (string | 0)[];
  field: DescField;
}

/**
 * Every field of CreateTokenRequest and of the messages it holds, down to
 * `depth` message levels, by JSON path (`0` is the first list element).
 */
export function fieldPaths(
  message: DescMessage = CreateTokenRequestSchema,
  depth = 4,
  prefix: (string | 0)[] = [],
): FieldPath[] {
  const paths: FieldPath[] = [];
  for (const field of message.fields) {
    const path = [...prefix, field.jsonName];
    paths.push({ path, field });
    if (depth === 0) continue;
    const nested =
      field.fieldKind === "message"
        ? field.message
        : field.fieldKind === "list" && field.listKind === "message"
          ? field.message
          : undefined;
    if (nested === undefined || nested.typeName.startsWith("google.")) {
      continue;
    }
    const next = field.fieldKind === "list" ? [...path, 0 as const] : path;
    paths.push(...fieldPaths(nested, depth - 1, next));
  }
  return paths;
}

/** JSON values a field of `field`'s kind must not accept, and edge values. */
export function wrongValuesFor(field: DescField): JsonValue[] {
  const anyWrong: JsonValue[] = [[], {}, [null], [[]], { "": {} }];
  switch (field.fieldKind) {
    case "list":
      return [{}, "x", 1, true, [1, "x", {}], [[1]], ...anyWrong];
    case "map":
      return [[], "x", 1, true, { k: 1 }, { k: {} }, { k: [] }, { k: null }];
    case "enum":
      return ["NOT_A_VALUE", 2 ** 31, -1, 1.5, true, "", ...anyWrong];
    case "message":
      if (field.message.typeName === "google.protobuf.Duration") {
        return [
          "abc",
          "1.5",
          3600,
          "315576000001s",
          "-315576000001s",
          "1e9s",
          "0.0000000001s",
          "NaNs",
          { seconds: 3600 },
          true,
          [],
        ];
      }
      return [1, "x", true, [], [{}], "{}"];
    case "scalar":
      return wrongScalars(field.scalar);
  }
}

function wrongScalars(scalar: ScalarType): JsonValue[] {
  const notString: JsonValue[] = [1, -1, true, [], {}, ["x"], { x: "y" }];
  switch (scalar) {
    case ScalarType.STRING:
      return notString;
    case ScalarType.BYTES:
      return ["not base64!", "====", ...notString];
    case ScalarType.BOOL:
      return ["true", "false", 1, 0, "yes", [], {}, [true]];
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return ["abc", "1e400", true, [], {}, "0x10", ""];
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return [
        "18446744073709551616",
        "-9223372036854775809",
        1.5,
        "1e3",
        "0x10",
        true,
        [],
        {},
      ];
    default:
      // 32-bit integers.
      return [
        -1,
        4_294_967_296,
        -2_147_483_649,
        1.5,
        "1.5",
        "abc",
        1e308,
        "Infinity",
        true,
        [],
        {},
        "",
      ];
  }
}

/** Sets `value` at `path` in a fresh JSON object. */
export function jsonWith(path: (string | 0)[], value: JsonValue): JsonValue {
  let result: JsonValue = value;
  for (let i = path.length - 1; i >= 0; i--) {
    const key = path[i] as string | 0;
    result = key === 0 ? [result] : { [key]: result };
  }
  return result;
}

/** Strings that are not well-formed UTF-16: lone and reversed surrogates. */
export const badUtf16: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("\ud800", "\udfff", "\udc00\ud800", "a\ud83d", "\ud83db"),
  fc
    .array(fc.integer({ min: 0xd800, max: 0xdfff }), {
      minLength: 1,
      maxLength: 4,
    })
    .map((units) => String.fromCharCode(...units)),
  fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 16 })
    .map((units) => String.fromCharCode(...units)),
);

/**
 * A JSON string literal for `value` as a hostile client writes it: escaped
 * (`\ud800`), or raw, its lone surrogates as three-byte CESU-8 sequences
 * that are not UTF-8.
 */
export function jsonStringLiteral(value: string, raw: boolean): Buffer {
  if (!raw) return Buffer.from(JSON.stringify(value));
  const parts: Buffer[] = [Buffer.from('"')];
  for (const unit of value) {
    const code = unit.codePointAt(0) as number;
    if (code >= 0xd800 && code <= 0xdfff) {
      parts.push(
        Buffer.from([
          0xe0 | (code >> 12),
          0x80 | ((code >> 6) & 0x3f),
          0x80 | (code & 0x3f),
        ]),
      );
    } else {
      parts.push(Buffer.from(JSON.stringify(unit).slice(1, -1)));
    }
  }
  parts.push(Buffer.from('"'));
  return Buffer.concat(parts);
}

// --- headers --------------------------------------------------------------

/** Content types: valid ones in odd spellings, near misses, junk, none. */
export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constantFrom(
    undefined,
    "",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json; charset=utf-16",
    "application/proto",
    "application/protobuf",
    "application/x-protobuf",
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc+thrift",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "application/connect+proto",
    "application/connect+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json, application/proto",
    "application/json;;;",
  ),
  fc.string({ unit: fc.constantFrom(..."abcjsonprotgw/+-;= ,") }),
);

/** Values of `content-encoding` or `grpc-encoding`. */
export const encodingName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "gzip",
    "br",
    "identity",
    "deflate",
    "zstd",
    "snappy",
    "GZIP",
    "gzip, br",
    "x-gzip",
    "",
    " gzip",
    "gzip;q=1",
    "*",
  ),
  fc.string({ minLength: 1, unit: fc.constantFrom(..."gzipbrdeflat-,; *") }),
);

/** A gzip stream of `bytes`, optionally corrupted by `mutate`. */
export function gzip(bytes: Uint8Array): Buffer {
  return gzipSync(bytes);
}
