import { Code, ConnectError } from "@connectrpc/connect";
import {
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import {
  asymmetricAlgorithms,
  checkKeySource,
  createKeySource,
  hasCode,
  jwksDefaults,
} from "./jwks.js";

/** How end-user JWTs from the identity provider are verified. */
export interface JwtAuthConfig {
  /** The exact `iss` tokens must carry. */
  issuer: string;
  /** Tokens must carry at least one of these in `aud`. */
  audience: string | string[];
  /** The identity provider's JWKS; https, or http on a loopback host. */
  jwksUrl?: string;
  /** PEM SPKI public keys or JWKs as JSON, instead of `jwksUrl`. */
  publicKeys?: string[];
  /** Allowed asymmetric JWS algorithms, such as `["RS256", "ES256"]`. */
  algorithms: string[];
  /** Leeway for `exp` and `nbf`, at most 300; `jwtAuthDefaults`: 30. */
  clockToleranceSeconds: number;
  /** Claims every token must carry, such as `["org"]`; `exp` always is. */
  requiredClaims: string[];
  /** The claim holding the participant identity; defaults to `sub`. */
  identityClaim: string;
  /** The claim holding the display name, if any. */
  nameClaim?: string;
  /** JWKS fetch timeout; default 5000. */
  jwksTimeoutMs?: number;
  /** Refetch the JWKS once it is this old; default 10 minutes. */
  jwksCacheMaxAgeMs?: number;
  /** Least time between JWKS fetches for unknown `kid`s; default 30 s. */
  jwksCooldownMs?: number;
}

/** Defaults for the settings a configuration file may leave out. */
export const jwtAuthDefaults = {
  clockToleranceSeconds: 30,
  requiredClaims: [] as string[],
  identityClaim: "sub",
  ...jwksDefaults,
};

/** The longest participant identity, in UTF-8 bytes. */
export const maxIdentityBytes = 256;

/** The longest token accepted, in characters, before any parsing. */
export const maxTokenLength = 16_384;

/** The most keys tried for a token that several configured keys match. */
const maxCandidateKeys = 8;

/** An end user whose token verified. */
export interface VerifiedUser {
  /** From `identityClaim`: a non-empty string of at most 256 bytes. */
  identity: string;
  /** From `nameClaim`, when configured and a non-empty string. */
  name?: string;
  /** Every verified claim. */
  claims: JWTPayload;
}

/** Verifies end-user JWTs; see `createJwtVerifier`. */
export interface JwtVerifier {
  /** Resolves to the user, or rejects with a `ConnectError`. */
  verify(token: string): Promise<VerifiedUser>;
}

/**
 * Checks a configuration, throwing an `Error` whose message names the
 * offending key. Refuses `none` and every `HS*` algorithm, unknown
 * algorithms, a missing issuer or audience, both or neither of `jwksUrl`
 * and `publicKeys`, a JWKS URL that is neither https nor loopback http,
 * unusable keys, and out-of-range numbers.
 */
export function checkJwtAuthConfig(config: JwtAuthConfig): void {
  const fail = (message: string): never => {
    throw new Error(message);
  };
  if (!isName(config.issuer)) fail('"issuer" must be a non-empty string');
  const audiences = [config.audience].flat();
  if (audiences.length === 0 || !audiences.every(isName)) {
    fail('"audience" must be a non-empty string or list of them');
  }
  if (!Array.isArray(config.algorithms) || config.algorithms.length === 0) {
    fail('"algorithms" must list at least one algorithm');
  }
  for (const alg of config.algorithms) {
    const name = `"algorithms" entry ${JSON.stringify(alg)}`;
    if (typeof alg === "string" && alg.toLowerCase() === "none") {
      fail(`${name} is refused: it accepts unsigned tokens`);
    }
    if (typeof alg === "string" && /^hs/i.test(alg)) {
      fail(
        `${name} is refused: HMAC is symmetric, and with only public keys ` +
          "configured anyone who knows a public key could sign tokens",
      );
    }
    if (typeof alg !== "string" || !Object.hasOwn(asymmetricAlgorithms, alg)) {
      const known = Object.keys(asymmetricAlgorithms).join(", ");
      fail(`${name} is not one of the supported algorithms: ${known}`);
    }
  }
  const tolerance = config.clockToleranceSeconds;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) {
    fail('"clockToleranceSeconds" must be a number from 0 to 300');
  }
  const required = config.requiredClaims;
  if (!Array.isArray(required) || !required.every(isName)) {
    fail('"requiredClaims" must be a list of non-empty claim names');
  }
  if (!isName(config.identityClaim)) {
    fail('"identityClaim" must be a non-empty string');
  }
  if (config.nameClaim !== undefined && !isName(config.nameClaim)) {
    fail('"nameClaim" must be a non-empty string when set');
  }
  checkKeySource(config);
}

/**
 * Returns a verifier for `config`, which is checked first (throwing as
 * `checkJwtAuthConfig` does). `verify(token)` checks the signature with
 * jose against the JWKS or the static keys, the algorithm against the
 * allow-list, `iss`, `aud`, `exp` (always required), `nbf` and the
 * required claims, then reads the identity and name.
 *
 * `verify` rejects with a `ConnectError`: `Code.Unauthenticated` for any
 * bad token, with a short message naming the failed check but never the
 * token or a claim value; `Code.Unavailable` when the JWKS cannot be
 * fetched. Keys already cached keep verifying until `jwksCacheMaxAgeMs`.
 */
export function createJwtVerifier(config: JwtAuthConfig): JwtVerifier {
  checkJwtAuthConfig(config);
  const getKey = createKeySource(config);
  const options: JWTVerifyOptions = {
    issuer: config.issuer,
    audience: config.audience,
    algorithms: [...config.algorithms],
    clockTolerance: config.clockToleranceSeconds,
    requiredClaims: [...new Set([...config.requiredClaims, "exp"])],
  };
  return {
    async verify(token) {
      if (typeof token !== "string" || token === "") {
        throw unauthenticated("token is missing");
      }
      if (token.length > maxTokenLength) {
        throw unauthenticated("token is too long");
      }
      let claims: JWTPayload;
      try {
        claims = await verifySignedToken(token, getKey, options);
      } catch (err) {
        throw toConnectError(err, config);
      }
      return toVerifiedUser(claims, config);
    },
  };
}

/** jose's `jwtVerify`, trying each key in turn when several match. */
async function verifySignedToken(
  token: string,
  getKey: JWTVerifyGetKey,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    let tried = 0;
    for await (const key of err) {
      if (++tried > maxCandidateKeys) break;
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (attempt) {
        // Only a bad signature means "try the next key"; a claim error
        // comes after a valid signature and is the answer.
        if (!hasCode(attempt, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")) {
          throw attempt;
        }
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** Maps a jose error, by its code, to a message safe to return. */
function toConnectError(err: unknown, config: JwtAuthConfig): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = err instanceof errors.JOSEError ? err.code : undefined;
  switch (code) {
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return unauthenticated("token algorithm is not allowed");
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return unauthenticated("token signature is invalid");
    case "ERR_JWKS_NO_MATCHING_KEY":
      return unauthenticated("no trusted key matches the token");
    case "ERR_JWT_EXPIRED":
      return unauthenticated("token has expired");
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return unauthenticated("token is malformed");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const { claim, reason } = err as errors.JWTClaimValidationFailed;
      if (reason === "missing") {
        return unauthenticated(`token is missing the "${claim}" claim`);
      }
      if (reason === "invalid") {
        return unauthenticated(`token "${claim}" claim is invalid`);
      }
      if (claim === "iss") {
        return unauthenticated(`token issuer is not "${config.issuer}"`);
      }
      if (claim === "aud") {
        const accepted = [config.audience].flat().join('", "');
        return unauthenticated(`token audience is not one of "${accepted}"`);
      }
      if (claim === "nbf") return unauthenticated("token is not yet valid");
      return unauthenticated(`token "${claim}" claim check failed`);
    }
    default:
      return unauthenticated("token could not be verified");
  }
}

function toVerifiedUser(
  claims: JWTPayload,
  config: JwtAuthConfig,
): VerifiedUser {
  const claim = config.identityClaim;
  const identity = ownClaim(claims, claim);
  if (identity === undefined) {
    throw unauthenticated(`token is missing the "${claim}" identity claim`);
  }
  if (typeof identity !== "string") {
    throw unauthenticated(`token "${claim}" claim is not a string`);
  }
  if (identity === "") throw unauthenticated(`token "${claim}" is empty`);
  if (Buffer.byteLength(identity, "utf8") > maxIdentityBytes) {
    throw unauthenticated(
      `token "${claim}" is over ${maxIdentityBytes} bytes, ` +
        "the longest participant identity allowed",
    );
  }
  const user: VerifiedUser = { identity, claims };
  const name = config.nameClaim && ownClaim(claims, config.nameClaim);
  if (typeof name === "string" && name !== "") user.name = name;
  return user;
}

/** No cause is attached: jose's claim errors carry the token's payload. */
function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

/** A claim of the token itself, never one inherited from `Object`. */
function ownClaim(claims: JWTPayload, name: string): unknown {
  return Object.hasOwn(claims, name) ? claims[name] : undefined;
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}
