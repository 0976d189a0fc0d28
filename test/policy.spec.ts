import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  type CreateTokenRequest,
  CreateTokenRequestSchema,
} from "../gen/tokenservice/v1/token_service_pb.js";
import type { Caller } from "../server/auth/caller.js";
import { applyPolicy } from "../server/policy/apply-policy.js";
import { PolicyError } from "../server/policy/policy-error.js";
import { checkRoomPattern, roomAllowed } from "../server/policy/rooms.js";
import { minTtlSeconds, resolveTtlSeconds } from "../server/policy/ttl.js";
import {
  backendPolicy,
  kioskPolicy,
  memberPolicy,
  type TokenRequest,
} from "./support/policies.js";

const config = { ttl: { defaultSeconds: 600, maxSeconds: 3600 } };
const alice: Caller = {
  kind: "user",
  identity: "alice",
  name: "Alice",
  claims: { sub: "alice", org: "acme" },
  policy: memberPolicy,
};
const backend: Caller = { kind: "service", name: "b", policy: backendPolicy };
const kiosk: Caller = { kind: "service", name: "k", policy: kioskPolicy };

const request = (init: TokenRequest): CreateTokenRequest =>
  create(CreateTokenRequestSchema, init);

/** The PolicyError `run` throws, to check its rule and code. */
function refusal(run: () => unknown): PolicyError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error("nothing was refused");
}

describe("applyPolicy", () => {
  it("binds an end user to the identity and name of the token", () => {
    const claims = applyPolicy(request({ roomName: "lobby" }), alice, config);
    expect(claims.identity).toBe("alice");
    expect(claims.name).toBe("Alice");
  });

  it.each<[string, TokenRequest, string]>([
    ["another identity", { participantIdentity: "bob" }, "identity"],
    ["another name", { participantName: "Bob" }, "name"],
    ["a room outside the policy", { roomName: "x" }, "rooms"],
    [
      "an attribute key outside",
      { participantAttributes: { a: "1" } },
      "attributes",
    ],
    [
      "metadata over the cap",
      { participantMetadata: "x".repeat(33) },
      "participant_metadata",
    ],
  ])("refuses an end user %s, naming the rule", (_, init, rule) => {
    const error = refusal(() =>
      applyPolicy(request({ roomName: "lobby", ...init }), alice, config),
    );
    expect(error.rule).toBe(rule);
    expect(Code[error.code]).toBe(Code[Code.PermissionDenied]);
  });

  it("refuses a named identity to a policy without anyIdentity", () => {
    const init = { roomName: "kiosk-1", participantIdentity: "alice" };
    expect(refusal(() => applyPolicy(request(init), kiosk, config)).rule).toBe(
      "identity",
    );
  });

  it("requires a room from a caller whose policy lacks *", () => {
    expect(refusal(() => applyPolicy(request({}), kiosk, config)).rule).toBe(
      "rooms",
    );
  });

  it("passes what a policy allows through unchanged", () => {
    const claims = applyPolicy(
      request({
        roomName: "r",
        participantIdentity: "agent-7",
        participantAttributes: { role: "agent" },
        participantMetadata: "m",
        ttl: { seconds: 1200n },
      }),
      backend,
      config,
    );
    expect(claims).toMatchObject({
      identity: "agent-7",
      room: "r",
      attributes: { role: "agent" },
      metadata: "m",
      ttlSeconds: 1200,
    });
  });
});

describe("checkRoomPattern", () => {
  it.each(["*", "lobby", "support-*", "team-{org}-*", "{org}", "t.{a}.{b}-x"])(
    "accepts %j",
    (pattern) => {
      expect(checkRoomPattern(pattern)).toBeUndefined();
    },
  );

  it.each([
    "",
    "a*b",
    "**",
    "team-{org}*",
    "team-{org}x",
    "{a}{b}",
    "t-{org",
    "t-}",
    "{}",
  ])("refuses %j", (pattern) => {
    expect(checkRoomPattern(pattern)).toEqual(expect.any(String));
  });
});

describe("roomAllowed", () => {
  const patterns = ["lobby", "support-*", "team-{org}-*"];
  it.each([
    ["lobby", true],
    ["lobby2", false],
    ["support-1", true],
    ["support", false],
    ["team-acme-x", true],
    ["team-acme-", true],
    ["team-evil-x", false],
    ["team-acmecorp-x", false],
  ])("decides %j for org acme: %s", (room, allowed) => {
    expect(roomAllowed(room, patterns, { org: "acme" })).toBe(allowed);
  });

  it.each<unknown>([
    "acme-*",
    "acme-",
    "*",
    "{org}",
    "",
    "a b",
    "é",
    7,
    ["acme"],
    null,
  ])("matches nothing through a template for org %j", (org) => {
    const claims = { org } as Record<string, unknown>;
    for (const room of [
      "team-acme-x",
      `team-${org}-x`,
      "team--x",
      "team-*-x",
    ]) {
      expect(roomAllowed(room, ["team-{org}-*"], claims)).toBe(false);
    }
  });

  it("matches nothing through a template without claims", () => {
    expect(roomAllowed("team-acme-x", ["team-{org}-*"], undefined)).toBe(false);
    expect(roomAllowed("team--x", ["team-{org}-*"], undefined)).toBe(false);
  });

  it("never reads a placeholder from the prototype of the claims", () => {
    const pattern = ["t-{constructor}-*", "t-{__proto__}-*", "t-{toString}-*"];
    expect(roomAllowed("t-x-1", pattern, {})).toBe(false);
    expect(roomAllowed("t--1", pattern, {})).toBe(false);
  });
});

describe("resolveTtlSeconds", () => {
  const lifetimes = { defaultSeconds: 600, maxSeconds: 3600 };
  it.each([
    ["absent, under the policy", undefined, 3600, 600],
    ["absent, over the policy", undefined, 300, 300],
    ["within both maxima", 1200n, 3600, 1200],
    ["over the policy's max", 86_400n, 900, 900],
    ["over the server's max", 86_400n, 86_400, 3600],
    ["far over both", 315_576_000_000n, 900, 900],
  ])("resolves a ttl %s", (_, seconds, policyMax, want) => {
    const ttl = seconds === undefined ? undefined : { seconds, nanos: 0 };
    const policy = { maxTtlSeconds: policyMax };
    expect(resolveTtlSeconds(ttl as never, lifetimes, policy)).toBe(want);
  });

  it.each([0n, -600n, BigInt(minTtlSeconds - 1)])(
    "refuses %is as invalid_argument",
    (seconds) => {
      const ttl = { seconds, nanos: 0 } as never;
      const error = refusal(() =>
        resolveTtlSeconds(ttl, lifetimes, { maxTtlSeconds: 900 }),
      );
      expect(Code[error.code]).toBe(Code[Code.InvalidArgument]);
    },
  );
});
