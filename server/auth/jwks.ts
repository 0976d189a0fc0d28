import { createPublicKey, type KeyObject } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JWK,
  type JWTVerifyGetKey,
} from "jose";

/**
 * The JWS algorithms end-user tokens may use, with the key each needs. Only
 * asymmetric ones: this service holds public keys, never a shared secret.
 */
export const asymmetricAlgorithms: Readonly<
  Record<string, { kty: string; crv?: string }>
> = {
  RS256: { kty: "RSA" },
  RS384: { kty: "RSA" },
  RS512: { kty: "RSA" },
  PS256: { kty: "RSA" },
  PS384: { kty: "RSA" },
  PS512: { kty: "RSA" },
  ES256: { kty: "EC", crv: "P-256" },
  ES384: { kty: "EC", crv: "P-384" },
  ES512: { kty: "EC", crv: "P-521" },
  EdDSA: { kty: "OKP", crv: "Ed25519" },
  Ed25519: { kty: "OKP", crv: "Ed25519" },
};

/** JWK members that carry private or symmetric key material. */
const secretMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Parses one configured public key, a PEM SPKI block
 * (`-----BEGIN PUBLIC KEY-----`) or a JWK as JSON, into a public JWK.
 * A JWK keeps its `kid`, `alg`, `use` and `key_ops`; a PEM key has no `kid`
 * and so matches a token whatever its `kid`.
 *
 * Throws an `Error` naming `label` for anything else: private keys (even
 * though a public key could be derived from one, they must not sit in this
 * configuration), symmetric keys, other PEM types, unreadable keys, and RSA
 * keys shorter than 2048 bits.
 */
export function parsePublicKey(text: string, label: string): JWK {
  const trimmed = text.trim();
  let key: KeyObject;
  let extra: JWK = {};
  if (trimmed.startsWith("-----BEGIN")) {
    if (!trimmed.startsWith("-----BEGIN PUBLIC KEY-----")) {
      const why = /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)
        ? "it is a private key, which must never be configured here"
        : "other PEM types are not accepted";
      throw new Error(`${label} must be a PEM SPKI public key; ${why}`);
    }
    key = readKey(label, () => createPublicKey({ key: trimmed }));
  } else if (trimmed.startsWith("{")) {
    const jwk = parseJson(trimmed, label);
    if (jwk.kty === "oct") {
      throw new Error(`${label} is a symmetric key; only public keys verify`);
    }
    if (secretMembers.some((member) => Object.hasOwn(jwk, member))) {
      throw new Error(`${label} holds private key material; give the public`);
    }
    const { kid, alg, use, key_ops } = jwk;
    extra = { kid, alg, use, key_ops };
    key = readKey(label, () => createPublicKey({ key: jwk, format: "jwk" }));
  } else {
    throw new Error(`${label} must be a PEM SPKI public key or a JWK as JSON`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === "rsa" && (bits ?? 0) < 2048) {
    throw new Error(`${label} is an RSA key of ${bits} bits; 2048 at least`);
  }
  const exported = readKey(label, () => key.export({ format: "jwk" }));
  const jwk: JWK = { ...exported };
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined) Object.assign(jwk, { [name]: value });
  }
  return jwk;
}

/** Whether `jwk` may verify a signature made with `alg`. */
export function keyFitsAlgorithm(jwk: JWK, alg: string): boolean {
  const entry = asymmetricAlgorithms[alg];
  if (entry === undefined || jwk.kty !== entry.kty) return false;
  if (entry.crv !== undefined && jwk.crv !== entry.crv) return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (jwk.use !== undefined && jwk.use !== "sig") return false;
  return jwk.key_ops === undefined || jwk.key_ops.includes("verify");
}

/**
 * A key lookup over configured public keys. A token naming a `kid` is
 * checked against the keys with that `kid`, then against the keys without
 * one (PEM keys); a token without a `kid` against every key. When several
 * keys match, jose throws `JWKSMultipleMatchingKeys`, whose candidates the
 * caller tries in turn.
 */
export function createStaticKeySource(keys: JWK[]): JWTVerifyGetKey {
  const all = createLocalJWKSet({ keys });
  const keyed = createLocalJWKSet({ keys: keys.filter((k) => k.kid) });
  const unkeyed = createLocalJWKSet({ keys: keys.filter((k) => !k.kid) });
  return async (header) => {
    if (header.kid === undefined) return all(header);
    try {
      return await keyed(header);
    } catch (err) {
      if (!hasCode(err, "ERR_JWKS_NO_MATCHING_KEY")) throw err;
    }
    return unkeyed({ ...header, kid: undefined });
  };
}

/** How the identity provider's key set is fetched and cached. */
export interface RemoteKeySourceOptions {
  /** Abort a fetch after this many milliseconds. */
  timeoutMs: number;
  /** Refetch the key set once it is this old, even if every `kid` matched. */
  cacheMaxAgeMs: number;
  /** Fetch at most once in this many milliseconds for unknown `kid`s. */
  cooldownMs: number;
}

/**
 * Codes of jose errors that mean the key set could not be obtained: the
 * fetch timed out, the answer was not 200 or not JSON (`ERR_JOSE_GENERIC`,
 * which the key-set lookup raises for nothing else), or it was not a key
 * set.
 */
const unreachableCodes = new Set([
  "ERR_JWKS_TIMEOUT",
  "ERR_JOSE_GENERIC",
  "ERR_JWKS_INVALID",
]);

/**
 * A key lookup over the identity provider's JWKS at `url`, using jose's
 * `createRemoteJWKSet`: fetched on first use, cached for `cacheMaxAgeMs`,
 * refetched when a token names an unknown `kid` unless the last fetch was
 * less than `cooldownMs` ago (concurrent refetches share one request).
 *
 * Throws a `ConnectError` with `Code.Unavailable` when the key set cannot
 * be fetched (network error, timeout, non-200, not JSON, not a key set);
 * jose's errors about the token's own header, such as
 * `JWKSNoMatchingKey` after the refetch, pass through unchanged.
 */
export function createRemoteKeySource(
  url: string,
  options: RemoteKeySourceOptions,
): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), {
    timeoutDuration: options.timeoutMs,
    cacheMaxAge: options.cacheMaxAgeMs,
    cooldownDuration: options.cooldownMs,
  });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      const joseCode = err instanceof errors.JOSEError ? err.code : undefined;
      if (joseCode !== undefined && !unreachableCodes.has(joseCode)) throw err;
      throw new ConnectError(
        "identity provider is unavailable",
        Code.Unavailable,
        undefined,
        undefined,
        err,
      );
    }
  };
}

/** Defaults of the JWKS fetch settings. */
export const jwksDefaults = {
  jwksTimeoutMs: 5_000,
  jwksCacheMaxAgeMs: 10 * 60_000,
  jwksCooldownMs: 30_000,
};

/** The settings that say where the verification keys come from. */
export interface KeySourceConfig {
  jwksUrl?: string;
  publicKeys?: string[];
  algorithms: string[];
  jwksTimeoutMs?: number;
  jwksCacheMaxAgeMs?: number;
  jwksCooldownMs?: number;
}

/**
 * Checks the key settings, throwing an `Error` naming the key at fault:
 * exactly one of `jwksUrl` (https, or http on a loopback address, without
 * credentials) and `publicKeys` (each readable by `parsePublicKey` and
 * fit for one of `algorithms`, which must already be checked), and whole,
 * positive timings (the cooldown may be 0).
 */
export function checkKeySource(config: KeySourceConfig): void {
  checkMilliseconds(config.jwksTimeoutMs, "jwksTimeoutMs", 1);
  checkMilliseconds(config.jwksCacheMaxAgeMs, "jwksCacheMaxAgeMs", 1);
  checkMilliseconds(config.jwksCooldownMs, "jwksCooldownMs", 0);
  const { jwksUrl, publicKeys } = config;
  if ((jwksUrl === undefined) === (publicKeys === undefined)) {
    throw new Error('set exactly one of "jwksUrl" and "publicKeys"');
  }
  if (jwksUrl !== undefined) checkJwksUrl(jwksUrl);
  if (publicKeys === undefined) return;
  if (!Array.isArray(publicKeys) || publicKeys.length === 0) {
    throw new Error('"publicKeys" must list at least one key');
  }
  publicKeys.forEach((text, index) => {
    const label = `"publicKeys"[${index}]`;
    if (typeof text !== "string") throw new Error(`${label} must be a string`);
    const jwk = parsePublicKey(text, label);
    if (!config.algorithms.some((alg) => keyFitsAlgorithm(jwk, alg))) {
      const algorithms = config.algorithms.join(", ");
      throw new Error(`${label} fits none of "algorithms" (${algorithms})`);
    }
  });
}

/**
 * The key lookup for checked settings: the remote JWKS when `jwksUrl` is
 * set, else the static `publicKeys`.
 */
export function createKeySource(config: KeySourceConfig): JWTVerifyGetKey {
  if (config.jwksUrl === undefined) {
    const keys = config.publicKeys ?? [];
    return createStaticKeySource(
      keys.map((text, i) => parsePublicKey(text, `"publicKeys"[${i}]`)),
    );
  }
  const { jwksTimeoutMs, jwksCacheMaxAgeMs, jwksCooldownMs } = jwksDefaults;
  return createRemoteKeySource(config.jwksUrl, {
    timeoutMs: config.jwksTimeoutMs ?? jwksTimeoutMs,
    cacheMaxAgeMs: config.jwksCacheMaxAgeMs ?? jwksCacheMaxAgeMs,
    cooldownMs: config.jwksCooldownMs ?? jwksCooldownMs,
  });
}

/** Whether `err` is a jose error with this `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof errors.JOSEError && err.code === code;
}

function parseJson(text: string, label: string): JWK {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${label} is not valid JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${label} must be one JWK, a JSON object`);
  }
  return value as JWK;
}

function readKey<T>(label: string, read: () => T): T {
  try {
    return read();
  } catch {
    throw new Error(`${label} could not be read as a public key`);
  }
}

function checkMilliseconds(value: unknown, key: string, least: number) {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || (value as number) < least) {
    throw new Error(`"${key}" must be whole milliseconds, ${least} or more`);
  }
}

function checkJwksUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error('"jwksUrl" is not a valid URL');
  }
  if (url.username !== "" || url.password !== "") {
    throw new Error('"jwksUrl" must not carry credentials');
  }
  const loopback = /^(127(\.\d{1,3}){3}|\[::1\])$/;
  if (url.protocol === "http:" && loopback.test(url.hostname)) return;
  if (url.protocol !== "https:") {
    throw new Error(
      '"jwksUrl" must use https; http only on 127.0.0.0/8 or [::1]',
    );
  }
}
