import { Code } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  type CallerFixture,
  expectRefused,
  newServiceKey,
  type Protocol,
  startCallerFixture,
  tokenClient,
  userJwtConfig,
} from "./support/callers.js";
import {
  createSigningKey,
  encodeSegment,
  type SigningKey,
  signToken,
  startIdentityProvider,
} from "./support/identity-provider.js";
import { type CapturedLog, captureLog } from "./support/log-capture.js";
import { memberPolicy } from "./support/policies.js";
import { startTestService, type TestService } from "./support/service.js";

/** An Authorization header that must not authenticate, given the fixture. */
type BadCredential = (f: CallerFixture) => Promise<string | undefined>;

const now = () => Math.floor(Date.now() / 1000);

/** The forger's key, made once: RSA key generation is slow. */
let forgerKey: Promise<SigningKey> | undefined;

const badCredentials: [string, BadCredential][] = [
  ["no Authorization header", async () => undefined],
  ["an unknown service key", async () => bearer(newServiceKey())],
  ["a Basic credential", async () => "Basic YWxpY2U6c2VjcmV0"],
  ["an empty Authorization header", async () => ""],
  ["Bearer with no value", async () => "Bearer"],
  ["Bearer with two values", async (f) => `Bearer ${f.keys.backend} x`],
  ["a service key with a suffix", async (f) => bearer(`${f.keys.backend}x`)],
  [
    "a JWT signed by another key under the provider's kid",
    async (f) => {
      forgerKey ??= createSigningKey("RS256", f.signingKey.kid);
      const forger = await forgerKey;
      return bearer(
        await signToken(forger, { iss: f.idp.issuer, aud: "token-service" }),
      );
    },
  ],
  [
    "an expired JWT",
    async (f) =>
      bearer(await f.userToken({ iat: now() - 7200, exp: now() - 600 })),
  ],
  [
    "a JWT that is not yet valid",
    async (f) => bearer(await f.userToken({ nbf: now() + 600 })),
  ],
  [
    "a JWT without exp",
    async (f) => bearer(await f.userToken({ exp: undefined })),
  ],
  [
    "a JWT whose sub is not a string",
    async (f) => bearer(await f.userToken({ sub: 42 as unknown as string })),
  ],
  [
    "a JWT from another issuer",
    async (f) => bearer(await f.userToken({ iss: "https://idp.invalid" })),
  ],
  [
    "a JWT for another audience",
    async (f) => bearer(await f.userToken({ aud: "another-service" })),
  ],
  [
    "an unsigned JWT (alg none)",
    async (f) => {
      const header = encodeSegment({ alg: "none", typ: "JWT" });
      const payload = encodeSegment({
        iss: f.idp.issuer,
        aud: "token-service",
        sub: "alice",
        exp: now() + 300,
      });
      return bearer(`${header}.${payload}.`);
    },
  ],
  [
    "an HS256 JWT keyed with the provider's public key",
    async (f) =>
      bearer(
        await new SignJWT({ sub: "alice", aud: "token-service" })
          .setIssuer(f.idp.issuer)
          .setExpirationTime("5m")
          .setProtectedHeader({ alg: "HS256", kid: f.signingKey.kid })
          .sign(new TextEncoder().encode(f.signingKey.publicPem)),
      ),
  ],
];

describe("CreateToken authentication", () => {
  let f: CallerFixture;
  beforeAll(async () => {
    f = await startCallerFixture();
  });
  afterAll(() => f.close());

  describe.each<Protocol>(["Connect JSON", "gRPC"])("over %s", (protocol) => {
    it.each(badCredentials)(
      "refuses %s as unauthenticated",
      async (_, credential) => {
        const authorization = await credential(f);
        const call = () =>
          f.call({ roomName: "lobby" }, authorization, protocol);
        const error = await expectRefused(f.log, call, Code.Unauthenticated);
        const secret = authorization?.replace(/^\w+ ?/, "");
        if (secret) expect(error.rawMessage).not.toContain(secret);
      },
    );

    it("authenticates a valid JWT (the control)", async () => {
      const token = bearer(await f.userToken());
      const response = await f.call({ roomName: "lobby" }, token, protocol);
      expect(response.participantIdentity).toBe("alice");
    });
  });

  it("ignores a key that a JWT names in its own header", async () => {
    forgerKey ??= createSigningKey("RS256", f.signingKey.kid);
    const forger = await forgerKey;
    const forgerIdp = await startIdentityProvider([forger.publicJwk]);
    try {
      const { kty, n, e } = forger.publicJwk;
      for (const header of [
        { jwk: { kty, n, e } },
        { jku: forgerIdp.jwksUrl },
      ]) {
        const jwt = await new SignJWT({ sub: "alice", aud: "token-service" })
          .setIssuer(f.idp.issuer)
          .setExpirationTime("5m")
          .setProtectedHeader({ alg: "RS256", ...header })
          .sign(forger.privateKey);
        const call = () => f.call({ roomName: "lobby" }, bearer(jwt));
        await expectRefused(f.log, call, Code.Unauthenticated);
      }
      expect(forgerIdp.fetches).toBe(0);
    } finally {
      await forgerIdp.close();
    }
  });

  it("refuses a forged JWT as unauthenticated over gRPC-Web", async () => {
    const forged = badCredentials.find(([name]) => name.includes("kid"));
    const authorization = await forged?.[1](f);
    const call = () => f.call({ roomName: "lobby" }, authorization, "gRPC-Web");
    await expectRefused(f.log, call, Code.Unauthenticated);
  });

  it("refuses a missing credential as unauthenticated over gRPC-Web", async () => {
    const call = () => f.call({ roomName: "lobby" }, undefined, "gRPC-Web");
    await expectRefused(f.log, call, Code.Unauthenticated);
  });
});

describe("CreateToken with the identity provider down", () => {
  let service: TestService;
  let log: CapturedLog;
  let authorization: string;
  beforeAll(async () => {
    const key = await createSigningKey("ES256", "k1");
    const idp = await startIdentityProvider([key.publicJwk]);
    await idp.close();
    log = captureLog();
    const jwt = { ...userJwtConfig(idp), algorithms: ["ES256"] };
    service = await startTestService(
      {
        dev: false,
        auth: { serviceKeys: [], users: { jwt, policy: memberPolicy } },
      },
      { logger: log.logger },
    );
    const claims = { iss: idp.issuer, aud: "token-service", sub: "a" };
    authorization = bearer(await signToken(key, claims));
  });
  afterAll(() => service.close());

  it.each<Protocol>(["Connect JSON", "gRPC"])(
    "answers unavailable over %s",
    async (protocol) => {
      const client = tokenClient(service.baseUrl, protocol);
      const call = () =>
        client.createToken(
          { roomName: "lobby" },
          { headers: { authorization } },
        );
      await expectRefused(log, call, Code.Unavailable);
    },
  );
});

describe("CreateToken where anonymous callers are allowed", () => {
  let f: CallerFixture;
  beforeAll(async () => {
    f = await startCallerFixture({ anonymous: memberPolicy });
  });
  afterAll(() => f.close());

  it("mints for a caller that sends no credential (the control)", async () => {
    const response = await f.call({ roomName: "lobby" }, undefined, "gRPC");
    expect(response.roomName).toBe("lobby");
  });

  describe.each<Protocol>(["Connect JSON", "gRPC"])("over %s", (protocol) => {
    it.each(badCredentials.slice(1))(
      "refuses %s, never treating it as anonymous",
      async (_, credential) => {
        const authorization = await credential(f);
        const call = () =>
          f.call({ roomName: "lobby" }, authorization, protocol);
        await expectRefused(f.log, call, Code.Unauthenticated);
      },
    );
  });
});
