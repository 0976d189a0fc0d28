import { Code, ConnectError } from "@connectrpc/connect";
import { type JWTPayload, SignJWT } from "jose";
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import {
  checkJwtAuthConfig,
  createJwtVerifier,
  type JwtAuthConfig,
  jwtAuthDefaults,
} from "../server/auth/jwt.js";
import {
  createSigningKey,
  encodeSegment,
  type SigningKey,
  signToken,
  startIdentityProvider,
  type TestIdentityProvider,
} from "./support/identity-provider.js";

/** A value no error message may ever repeat. */
const secretSub = "alice-4f1c9e-secret-looking-subject";
const audience = "livekit-token-service";

let rsa: SigningKey;
let rsaNext: SigningKey;
let attacker: SigningKey;
let ec: SigningKey;
let idp: TestIdentityProvider;
const started: TestIdentityProvider[] = [];

async function newIdp(keys = [rsa.publicJwk, ec.publicJwk]) {
  const provider = await startIdentityProvider(keys);
  started.push(provider);
  return provider;
}

beforeAll(async () => {
  [rsa, rsaNext, attacker, ec] = await Promise.all([
    createSigningKey("RS256", "rsa-1"),
    createSigningKey("RS256", "rsa-2"),
    createSigningKey("RS256", "rsa-1"),
    createSigningKey("ES256", "ec-1"),
  ]);
  idp = await newIdp();
});
afterAll(() => Promise.all(started.map((provider) => provider.close())));
afterEach(() => vi.useRealTimers());

function config(overrides: Partial<JwtAuthConfig> = {}): JwtAuthConfig {
  return {
    ...jwtAuthDefaults,
    issuer: idp.issuer,
    audience,
    jwksUrl: idp.jwksUrl,
    algorithms: ["RS256", "ES256"],
    nameClaim: "name",
    ...overrides,
  };
}

function claims(extra: JWTPayload = {}): JWTPayload {
  return { iss: idp.issuer, aud: audience, sub: secretSub, ...extra };
}

const now = () => Math.floor(Date.now() / 1000);

/** Awaits a rejection with `code` whose message matches and leaks nothing. */
async function rejects(
  promise: Promise<unknown>,
  code: Code,
  message: RegExp,
): Promise<ConnectError> {
  const err = await promise.then(
    () => expect.fail("verification succeeded"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  const connectError = err as ConnectError;
  expect(Code[connectError.code]).toBe(Code[code]);
  expect(connectError.rawMessage).toMatch(message);
  expect(connectError.rawMessage).not.toContain(secretSub);
  expect(connectError.rawMessage).not.toMatch(/eyJ/);
  if (code === Code.Unauthenticated) expect(connectError.cause).toBeUndefined();
  return connectError;
}

describe("checkJwtAuthConfig", () => {
  it("accepts a JWKS configuration and a static-key one", () => {
    expect(() => checkJwtAuthConfig(config())).not.toThrow();
    const { jwksUrl, ...rest } = config();
    expect(() =>
      checkJwtAuthConfig({ ...rest, publicKeys: [rsa.publicPem] }),
    ).not.toThrow();
  });

  it('refuses "none"', () => {
    expect(() => checkJwtAuthConfig(config({ algorithms: ["none"] }))).toThrow(
      /"algorithms" entry "none" is refused: it accepts unsigned tokens/,
    );
  });

  it("refuses HS256, saying why", () => {
    expect(() =>
      checkJwtAuthConfig(config({ algorithms: ["RS256", "HS256"] })),
    ).toThrow(/"HS256" is refused: HMAC is symmetric/);
  });

  it("refuses empty and unknown algorithms", () => {
    expect(() => checkJwtAuthConfig(config({ algorithms: [] }))).toThrow(
      /"algorithms" must list at least one/,
    );
    expect(() => checkJwtAuthConfig(config({ algorithms: ["RS1"] }))).toThrow(
      /"RS1" is not one of the supported/,
    );
  });

  it("refuses a missing issuer or audience", () => {
    expect(() => checkJwtAuthConfig(config({ issuer: "" }))).toThrow(
      /"issuer" must be/,
    );
    const { audience: _, ...noAudience } = config();
    expect(() => checkJwtAuthConfig(noAudience as JwtAuthConfig)).toThrow(
      /"audience" must be/,
    );
    expect(() => checkJwtAuthConfig(config({ audience: [] }))).toThrow(
      /"audience" must be/,
    );
  });

  it("refuses both or neither of jwksUrl and publicKeys", () => {
    const both = config({ publicKeys: [rsa.publicPem] });
    expect(() => checkJwtAuthConfig(both)).toThrow(/exactly one of "jwksUrl"/);
    const neither = config({ jwksUrl: undefined });
    expect(() => checkJwtAuthConfig(neither)).toThrow(/exactly one/);
  });

  it("refuses plain http off loopback, private keys and unfit keys", () => {
    const remote = config({ jwksUrl: "http://idp.invalid/jwks.json" });
    expect(() => checkJwtAuthConfig(remote)).toThrow(
      /"jwksUrl" must use https/,
    );
    const keys = (publicKeys: string[], algorithms = ["RS256"]) =>
      config({ jwksUrl: undefined, publicKeys, algorithms });
    const pkcs8 =
      "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----";
    expect(() => checkJwtAuthConfig(keys([pkcs8]))).toThrow(
      /"publicKeys"\[0\] must be a PEM SPKI public key; it is a private key/,
    );
    expect(() => checkJwtAuthConfig(keys([ec.publicPem]))).toThrow(
      /"publicKeys"\[0\] fits none of "algorithms"/,
    );
  });
});

describe("createJwtVerifier over a JWKS", () => {
  it("returns the identity from sub, the name and the claims", async () => {
    const token = await signToken(rsa, claims({ name: "Alice", org: "acme" }));
    const user = await createJwtVerifier(config()).verify(token);
    expect(user.identity).toBe(secretSub);
    expect(user.name).toBe("Alice");
    expect(user.claims).toMatchObject({ org: "acme", iss: idp.issuer });
  });

  it("reads the identity from a custom claim, with ES256", async () => {
    const verifier = createJwtVerifier(config({ identityClaim: "email" }));
    const token = await signToken(ec, claims({ email: "a@example.test" }));
    const user = await verifier.verify(token);
    expect(user.identity).toBe("a@example.test");
    expect(user.name).toBeUndefined();
  });

  it("refuses a forged signature (another key, same kid)", async () => {
    const token = await signToken(attacker, claims());
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token signature is invalid$/,
    );
  });

  it("refuses an expired token", async () => {
    const token = await signToken(rsa, claims({ exp: now() - 60 }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token has expired$/,
    );
  });

  it("refuses a token whose nbf is beyond the tolerance", async () => {
    const token = await signToken(rsa, claims({ nbf: now() + 60 }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token is not yet valid$/,
    );
  });

  it("accepts exp and nbf within the clock tolerance", async () => {
    const verifier = createJwtVerifier(config());
    const late = await signToken(rsa, claims({ exp: now() - 10 }));
    const early = await signToken(rsa, claims({ nbf: now() + 10 }));
    await expect(verifier.verify(late)).resolves.toBeDefined();
    await expect(verifier.verify(early)).resolves.toBeDefined();
  });

  it("refuses a token without exp", async () => {
    const token = await signToken(rsa, claims({ exp: undefined }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token is missing the "exp" claim$/,
    );
  });

  it("refuses the wrong issuer", async () => {
    const token = await signToken(rsa, claims({ iss: "https://evil.test" }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token issuer is not "http:\/\/127\.0\.0\.1:\d+"$/,
    );
  });

  it("refuses the wrong audience", async () => {
    const token = await signToken(rsa, claims({ aud: "another-service" }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token audience is not one of "livekit-token-service"$/,
    );
  });

  it('refuses an unsecured token, alg "none"', async () => {
    const payload = encodeSegment(claims({ exp: now() + 300 }));
    const token = `${encodeSegment({ alg: "none" })}.${payload}.`;
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token algorithm is not allowed$/,
    );
  });

  it("refuses HS256 signed with the public key as the secret", async () => {
    const verifier = createJwtVerifier(config());
    const encoder = new TextEncoder();
    for (const secret of [rsa.publicPem, JSON.stringify(rsa.publicJwk)]) {
      const token = await new SignJWT(claims({ exp: now() + 300 }))
        .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
        .sign(encoder.encode(secret));
      await rejects(
        verifier.verify(token),
        Code.Unauthenticated,
        /^token algorithm is not allowed$/,
      );
    }
  });

  it("refuses an algorithm outside the allow-list", async () => {
    const verifier = createJwtVerifier(config({ algorithms: ["RS256"] }));
    const token = await signToken(ec, claims());
    await rejects(
      verifier.verify(token),
      Code.Unauthenticated,
      /^token algorithm is not allowed$/,
    );
  });

  it("refuses a token without a required claim", async () => {
    const verifier = createJwtVerifier(config({ requiredClaims: ["org"] }));
    await rejects(
      verifier.verify(await signToken(rsa, claims())),
      Code.Unauthenticated,
      /^token is missing the "org" claim$/,
    );
  });

  it("refuses a token without the identity claim", async () => {
    const token = await signToken(rsa, claims({ sub: undefined }));
    await rejects(
      createJwtVerifier(config()).verify(token),
      Code.Unauthenticated,
      /^token is missing the "sub" identity claim$/,
    );
  });

  it("refuses an identity claim that is not a string, or empty", async () => {
    const verifier = createJwtVerifier(config({ identityClaim: "uid" }));
    const numeric = await signToken(rsa, claims({ uid: 42 }));
    await rejects(
      verifier.verify(numeric),
      Code.Unauthenticated,
      /^token "uid" claim is not a string$/,
    );
    const empty = await signToken(rsa, claims({ uid: "" }));
    await rejects(
      verifier.verify(empty),
      Code.Unauthenticated,
      /^token "uid" is empty$/,
    );
  });

  it("refuses an identity over 256 UTF-8 bytes, accepts 256", async () => {
    const verifier = createJwtVerifier(config());
    const fits = await signToken(rsa, claims({ sub: "é".repeat(128) }));
    await expect(verifier.verify(fits)).resolves.toBeDefined();
    const long = `${"é".repeat(128)}x`;
    const token = await signToken(rsa, claims({ sub: long }));
    const err = await rejects(
      verifier.verify(token),
      Code.Unauthenticated,
      /^token "sub" is over 256 bytes, the longest participant identity/,
    );
    expect(err.rawMessage).not.toContain("é");
  });

  it("refuses a malformed token", async () => {
    const verifier = createJwtVerifier(config());
    for (const token of ["", "abc", "a.b.c", `${encodeSegment({})}..`]) {
      await rejects(
        verifier.verify(token),
        Code.Unauthenticated,
        /^token (is missing|is malformed)$/,
      );
    }
  });
});

describe("JWKS refresh", () => {
  it("refetches once for an unknown kid, so a rotated key works", async () => {
    const provider = await newIdp([rsa.publicJwk]);
    const verifier = createJwtVerifier(
      config({ jwksUrl: provider.jwksUrl, jwksCooldownMs: 0 }),
    );
    await verifier.verify(await signToken(rsa, claims()));
    expect(provider.fetches).toBe(1);
    provider.keys.push(rsaNext.publicJwk);
    const user = await verifier.verify(await signToken(rsaNext, claims()));
    expect(user.identity).toBe(secretSub);
    expect(provider.fetches).toBe(2);
  });

  it("refuses a kid still unknown after the refetch", async () => {
    const provider = await newIdp([rsa.publicJwk]);
    const verifier = createJwtVerifier(
      config({ jwksUrl: provider.jwksUrl, jwksCooldownMs: 0 }),
    );
    await verifier.verify(await signToken(rsa, claims()));
    const token = await signToken(rsa, claims(), { kid: "unknown" });
    await rejects(
      verifier.verify(token),
      Code.Unauthenticated,
      /^no trusted key matches the token$/,
    );
    expect(provider.fetches).toBe(2);
  });

  it("refetches at most once per cooldown under a flood of kids", async () => {
    const provider = await newIdp([rsa.publicJwk]);
    const verifier = createJwtVerifier(config({ jwksUrl: provider.jwksUrl }));
    await verifier.verify(await signToken(rsa, claims()));
    expect(provider.fetches).toBe(1);
    // Only Date is faked, and frozen: the cooldown has just run out.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + jwtAuthDefaults.jwksCooldownMs + 1_000);
    const flood = async (count: number) => {
      const tokens = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          signToken(rsa, claims(), { kid: `flood-${i}` }),
        ),
      );
      // Concurrently: every one misses the cache at the same moment.
      await Promise.all(
        tokens.map((token) =>
          rejects(
            verifier.verify(token),
            Code.Unauthenticated,
            /^no trusted key matches the token$/,
          ),
        ),
      );
    };
    await flood(25);
    await flood(25);
    expect(provider.fetches).toBe(2);
  });
});

describe("an unreachable identity provider", () => {
  it("is unavailable when the server is gone", async () => {
    const provider = await newIdp();
    await provider.close();
    const verifier = createJwtVerifier(config({ jwksUrl: provider.jwksUrl }));
    await rejects(
      verifier.verify(await signToken(rsa, claims())),
      Code.Unavailable,
      /^identity provider is unavailable$/,
    );
  });

  it("is unavailable when the server answers 500 or not JSON", async () => {
    const provider = await newIdp();
    const token = await signToken(rsa, claims());
    for (const mode of ["error", "garbage"] as const) {
      provider.mode = mode;
      const verifier = createJwtVerifier(config({ jwksUrl: provider.jwksUrl }));
      await rejects(verifier.verify(token), Code.Unavailable, /unavailable/);
    }
    expect(provider.fetches).toBe(2);
  });

  it("is unavailable when the server hangs past the timeout", async () => {
    const provider = await newIdp();
    provider.mode = "hang";
    const verifier = createJwtVerifier(
      config({ jwksUrl: provider.jwksUrl, jwksTimeoutMs: 100 }),
    );
    await rejects(
      verifier.verify(await signToken(rsa, claims())),
      Code.Unavailable,
      /unavailable/,
    );
  });
});

describe("static public keys", () => {
  const staticConfig = (publicKeys: string[]) =>
    config({ jwksUrl: undefined, publicKeys });

  it("verifies with a PEM key, whatever the token's kid", async () => {
    const verifier = createJwtVerifier(staticConfig([rsa.publicPem]));
    const user = await verifier.verify(await signToken(rsa, claims()));
    expect(user.identity).toBe(secretSub);
    await rejects(
      verifier.verify(await signToken(attacker, claims())),
      Code.Unauthenticated,
      /^token signature is invalid$/,
    );
  });

  it("tries each matching PEM key, and takes a JWK", async () => {
    const verifier = createJwtVerifier(
      staticConfig([
        attacker.publicPem,
        rsaNext.publicPem,
        JSON.stringify(ec.publicJwk),
      ]),
    );
    await expect(
      verifier.verify(await signToken(rsaNext, claims())),
    ).resolves.toBeDefined();
    await expect(
      verifier.verify(await signToken(ec, claims())),
    ).resolves.toBeDefined();
    await rejects(
      verifier.verify(await signToken(rsa, claims())),
      Code.Unauthenticated,
      /^token signature is invalid$/,
    );
  });
});
