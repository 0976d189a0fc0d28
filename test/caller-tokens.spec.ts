import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  type CallerFixture,
  startCallerFixture,
} from "./support/callers.js";
import { testProject } from "./support/service.js";
import { lifetimeSeconds, verifyToken } from "./support/token.js";

/** The claims every participant token carries, and no others. */
const claimNames = ["exp", "iss", "name", "nbf", "sub", "video"];

describe("CreateToken for an authenticated caller", () => {
  let f: CallerFixture;
  beforeAll(async () => {
    f = await startCallerFixture();
  });
  afterAll(() => f.close());

  it("mints a backend exactly the token its policy allows", async () => {
    const response = await f.call(
      {
        roomName: "support-42",
        participantIdentity: "agent-7",
        participantName: "Agent Seven",
        participantMetadata: '{"desk":3}',
        participantAttributes: { role: "agent" },
        roomConfig: {
          metadata: "queue=billing",
          agents: [{ agentName: "support-agent", metadata: '{"lang":"de"}' }],
        },
        videoGrant: { hidden: true },
        ttl: { seconds: 1200n },
      },
      bearer(f.keys.backend),
      "Connect JSON",
    );
    const claims = await verifyToken(response.participantToken);
    expect(Object.keys(claims).sort()).toEqual(
      [...claimNames, "attributes", "metadata", "roomConfig"].sort(),
    );
    expect(claims).toMatchObject({
      iss: testProject.apiKey,
      sub: "agent-7",
      name: "Agent Seven",
      metadata: '{"desk":3}',
      attributes: { role: "agent" },
    });
    expect(claims.video).toEqual({
      room: "support-42",
      roomJoin: true,
      canPublish: true,
      canPublishSources: ["camera"],
      canSubscribe: true,
      canPublishData: true,
      canUpdateOwnMetadata: false,
      hidden: true,
    });
    expect(claims.roomConfig?.metadata).toBe("queue=billing");
    expect(claims.roomConfig?.agents).toMatchObject([
      { agentName: "support-agent", metadata: '{"lang":"de"}' },
    ]);
    expect(lifetimeSeconds(claims)).toBe(1200);
    expect(response).toMatchObject({
      serverUrl: testProject.url,
      participantIdentity: "agent-7",
      participantName: "Agent Seven",
      roomName: "support-42",
    });
    expect(Number(response.expiresAt?.seconds)).toBe(claims.exp);
  });

  it("mints an end user exactly the token its policy allows", async () => {
    const jwt = await f.userToken({ sub: "alice", name: "Alice", org: "acme" });
    const response = await f.call(
      {
        roomName: "team-acme-standup",
        roomConfig: { agents: [{ agentName: "helper" }] },
      },
      bearer(jwt),
    );
    const claims = await verifyToken(response.participantToken);
    expect(Object.keys(claims).sort()).toEqual(
      [...claimNames, "roomConfig"].sort(),
    );
    expect(claims).toMatchObject({ sub: "alice", name: "Alice" });
    expect(claims.video).toEqual({
      room: "team-acme-standup",
      roomJoin: true,
      canPublish: false,
      canSubscribe: true,
      canPublishData: true,
      canUpdateOwnMetadata: false,
    });
    expect(claims.roomConfig?.agents.map((a) => a.agentName)).toEqual([
      "helper",
    ]);
    // the server's default TTL, 600s, is under the policy's 900s
    expect(lifetimeSeconds(claims)).toBe(600);
  });

  it("accepts both keys of a policy during a rotation", async () => {
    for (const key of [f.keys.backend, f.keys.backendNext]) {
      const response = await f.call({ roomName: "r" }, bearer(key));
      expect((await verifyToken(response.participantToken)).video?.room).toBe(
        "r",
      );
    }
    const callers = f.log
      .auditLines()
      .filter((line) => line.policy === "backend" && line.room === "r")
      .map((line) => line.caller);
    expect(callers).toEqual(["service:backend-2024", "service:backend-2025"]);
  });
});

describe("CreateToken audit log", () => {
  let f: CallerFixture;
  const secrets: string[] = [];
  beforeAll(async () => {
    f = await startCallerFixture();
    const jwt = await f.userToken({ org: "acme" });
    const unknownKey = "u".repeat(43);
    const [minted] = await Promise.all([
      f.call(
        {
          roomName: "r",
          participantMetadata: "metadata-value-not-for-logs",
          participantAttributes: { role: "attribute-value-not-for-logs" },
        },
        bearer(f.keys.backend),
      ),
      f.call({ roomName: "team-evil-x" }, bearer(jwt)).catch(() => {}),
      f.call({ roomName: "lobby" }, bearer(unknownKey)).catch(() => {}),
    ]);
    secrets.push(
      ...Object.values(f.keys),
      jwt,
      jwt.split(".")[2] ?? "",
      minted.participantToken,
      minted.participantToken.split(".")[2] ?? "",
      testProject.apiSecret,
      unknownKey,
      "metadata-value-not-for-logs",
      "attribute-value-not-for-logs",
    );
  });
  afterAll(() => f.close());

  it("writes one line per decision, naming caller, policy and rule", () => {
    const lines = f.log.auditLines();
    expect(lines).toHaveLength(3);
    expect(lines).toContainEqual(
      expect.objectContaining({
        audit: "allowed",
        caller: "service:backend-2024",
        policy: "backend",
        identity: expect.stringMatching(/^user-/),
        room: "r",
        attributeKeys: ["role"],
        ttlSeconds: 600,
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        audit: "refused",
        caller: "user:alice",
        policy: "members",
        code: "permission_denied",
        rule: "rooms",
      }),
    );
  });

  it("logs a refused authentication, without the credential", () => {
    expect(f.log.lines()).toContainEqual(
      expect.objectContaining({ code: "unauthenticated" }),
    );
    expect(f.log.auditLines()).toContainEqual(
      expect.objectContaining({
        audit: "refused",
        caller: "unauthenticated",
        code: "unauthenticated",
        rule: "authentication",
        reason: "unknown service key or malformed token",
      }),
    );
  });

  it("never writes a key, a JWT, a token, the API secret or values", () => {
    const text = f.log.text;
    expect(text).toContain('"audit":"allowed"');
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(text).not.toContain(secret);
    }
  });
});
