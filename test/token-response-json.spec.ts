/**
 * The hand-written JSON of `CreateTokenResponse` is byte for byte what
 * protobuf-es's `toJsonString` writes, for any field values.
 */
import { create, toJsonString } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CreateTokenResponseSchema } from "../gen/tokenservice/v1/token_service_pb.js";
import { createTokenResponseJson } from "../server/token-response-json.js";

/** Any Unicode, lone surrogates and JSON's special characters included. */
const text = fc.oneof(
  fc.constant(""),
  fc.string({ unit: "binary" }),
  fc.string({
    unit: fc.constantFrom('"', "\\", "\n", "\u0000", "\u2028", "\ud800", "é"),
  }),
);

/** Timestamps across the range protobuf JSON allows, with any nanos. */
const timestamp = fc.record({
  seconds: fc.bigInt({ min: -62_135_596_800n, max: 253_402_300_799n }),
  nanos: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 999 }).map((ms) => ms * 1_000_000),
    fc.integer({ min: 0, max: 999_999_999 }),
  ),
});

describe("createTokenResponseJson", () => {
  it("writes what toJsonString writes", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            serverUrl: text,
            participantToken: text,
            participantIdentity: text,
            participantName: text,
            roomName: text,
            expiresAt: timestamp,
          },
          { requiredKeys: [] },
        ),
        (fields) => {
          const response = create(CreateTokenResponseSchema, fields);
          expect(createTokenResponseJson(response)).toBe(
            toJsonString(CreateTokenResponseSchema, response),
          );
        },
      ),
      { seed: 20261204, numRuns: 2000 },
    );
  });

  it("writes a timestamp it wrote before, and one a nanosecond apart, right", () => {
    const at = (seconds: bigint, nanos: number) =>
      create(CreateTokenResponseSchema, { expiresAt: { seconds, nanos } });
    const sequence = [
      at(1_800_000_000n, 0),
      at(1_800_000_000n, 0),
      at(1_800_000_000n, 1),
      at(1_800_000_001n, 1),
      at(1_800_000_001n, 0),
    ];
    expect(sequence.map(createTokenResponseJson)).toEqual([
      '{"expiresAt":"2027-01-15T08:00:00Z"}',
      '{"expiresAt":"2027-01-15T08:00:00Z"}',
      '{"expiresAt":"2027-01-15T08:00:00.000000001Z"}',
      '{"expiresAt":"2027-01-15T08:00:01.000000001Z"}',
      '{"expiresAt":"2027-01-15T08:00:01Z"}',
    ]);
  });

  it("writes {} for an empty response, as toJsonString does", () => {
    const response = create(CreateTokenResponseSchema);
    expect(createTokenResponseJson(response)).toBe("{}");
  });
});
