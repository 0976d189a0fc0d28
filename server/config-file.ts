import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { AuthSettings } from "./auth/authenticate.js";
import { checkJwtAuthConfig, type JwtAuthConfig } from "./auth/jwt.js";
import { minServiceKeyLength, type ServiceKey } from "./auth/service-keys.js";
import { ConfigError } from "./config-error.js";
import { Fields } from "./config-fields.js";
import { readPolicies } from "./config-policies.js";
import type { CallerPolicy } from "./policy/types.js";
import type { RateLimitConfig } from "./rate-limit.js";

/** What the config file holds: callers, their policies, rate limits. */
export interface FileConfig {
  auth: AuthSettings;
  rateLimits: RateLimitConfig;
  /** Addresses and CIDRs of proxies whose `X-Forwarded-For` is trusted. */
  trustedProxies: string[];
  /** Origins allowed to call from browsers. */
  corsOrigins: string[];
}

type Env = Record<string, string | undefined>;

/**
 * Reads and checks the config file (YAML, or JSON, which is YAML too).
 * Secrets are never in the file itself: service keys come from env
 * variables (`keyEnv`) or files (`keyFile`) it names.
 *
 * @throws ConfigError naming the key at fault, as a dotted path.
 */
export function readConfigFile(path: string, env: Env): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError("--config", `cannot read ${path} (${code})`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (e) {
    throw new ConfigError(
      "--config",
      `not YAML or JSON: ${(e as Error).message}`,
    );
  }
  return parseConfigDocument(document ?? {}, env, dirname(resolve(path)));
}

/**
 * Checks a parsed config document.
 *
 * @throws ConfigError naming the key at fault, as a dotted path.
 */
export function parseConfigDocument(
  document: unknown,
  env: Env,
  baseDir = process.cwd(),
): FileConfig {
  const root = Fields.of(document, "");
  root.only(["policies", "callers", "rateLimits", "trustedProxies", "cors"]);
  const policies = readPolicies(root.object("policies"));
  const callers = root.object("callers");
  callers.only(["serviceKeys", "users", "anonymous"]);

  const policyNamed = (fields: Fields, key: string): CallerPolicy => {
    const name = fields.string(key);
    const policy = policies.get(name);
    if (policy === undefined) {
      throw new ConfigError(fields.path(key), `no policy named "${name}"`);
    }
    return policy;
  };

  const serviceKeys = callers.list("serviceKeys").map((entry) => {
    entry.only(["name", "keyEnv", "keyFile", "policy"]);
    return {
      name: entry.string("name"),
      key: readKey(entry, env, baseDir),
      policy: policyNamed(entry, "policy"),
    } satisfies ServiceKey;
  });
  checkUniqueNames(serviceKeys, callers.path("serviceKeys"));

  const auth: AuthSettings = { serviceKeys };
  if (callers.has("users")) {
    const users = callers.object("users");
    const policy = policyNamed(users, "policy");
    checkEndUserPolicy(policy, users.path("policy"));
    auth.users = { jwt: readJwtConfig(users), policy };
  }
  if (callers.has("anonymous")) {
    const anonymous = callers.object("anonymous");
    anonymous.only(["policy"]);
    const policy = policyNamed(anonymous, "policy");
    checkEndUserPolicy(policy, anonymous.path("policy"));
    auth.anonymous = policy;
  }

  const cors = root.object("cors");
  cors.only(["allowedOrigins"]);
  return {
    auth,
    rateLimits: readRateLimits(root.object("rateLimits"), env),
    trustedProxies: root.strings("trustedProxies", []),
    corsOrigins: cors.strings("allowedOrigins", []),
  };
}

/** A key from env or a file; a relative file is next to the config file. */
function readKey(entry: Fields, env: Env, baseDir: string): string {
  const name = entry.optionalString("keyEnv");
  const file = entry.optionalString("keyFile");
  if ((name === undefined) === (file === undefined)) {
    throw new ConfigError(
      entry.path("keyEnv"),
      "set exactly one of keyEnv, keyFile",
    );
  }
  let key: string;
  if (name !== undefined) {
    key = env[name] ?? "";
    if (key === "") {
      throw new ConfigError(entry.path("keyEnv"), `env ${name} is not set`);
    }
  } else {
    try {
      key = readFileSync(resolve(baseDir, file as string), "utf8").trim();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw new ConfigError(
        entry.path("keyFile"),
        `cannot read ${file} (${code})`,
      );
    }
  }
  if (key.length < minServiceKeyLength) {
    throw new ConfigError(
      entry.path(name !== undefined ? "keyEnv" : "keyFile"),
      `the key must be at least ${minServiceKeyLength} characters`,
    );
  }
  return key;
}

function checkUniqueNames(keys: ServiceKey[], path: string): void {
  const seen = new Set<string>();
  for (const { name } of keys) {
    if (seen.has(name)) throw new ConfigError(path, `duplicate name "${name}"`);
    seen.add(name);
  }
}

/** End users and anonymous callers never get administrative grants. */
function checkEndUserPolicy(policy: CallerPolicy, path: string): void {
  const { grant } = policy;
  for (const key of [
    "roomCreate",
    "roomAdmin",
    "roomList",
    "roomRecord",
  ] as const) {
    if (grant[key]) {
      throw new ConfigError(
        path,
        `policy "${policy.name}" grants ${key}, which end users never get`,
      );
    }
  }
}

function readJwtConfig(users: Fields): JwtAuthConfig {
  users.only([
    "issuer",
    "audience",
    "jwksUrl",
    "publicKeys",
    "algorithms",
    "clockToleranceSeconds",
    "requiredClaims",
    "identityClaim",
    "nameClaim",
    "policy",
  ]);
  const audience = users.stringOrStrings("audience");
  const config: JwtAuthConfig = {
    issuer: users.string("issuer"),
    audience,
    algorithms: users.strings("algorithms", ["RS256", "ES256"]),
    clockToleranceSeconds: users.number("clockToleranceSeconds", 30, 0, 300),
    requiredClaims: users.strings("requiredClaims", []),
    identityClaim: users.optionalString("identityClaim") ?? "sub",
  };
  const jwksUrl = users.optionalString("jwksUrl");
  if (jwksUrl !== undefined) config.jwksUrl = jwksUrl;
  if (users.has("publicKeys"))
    config.publicKeys = users.strings("publicKeys", []);
  const nameClaim = users.optionalString("nameClaim");
  if (nameClaim !== undefined) config.nameClaim = nameClaim;
  try {
    checkJwtAuthConfig(config);
  } catch (e) {
    // The verifier's messages start with the key they are about, quoted.
    const message = (e as Error).message;
    const key = /^"(\w+)"/.exec(message)?.[1];
    throw new ConfigError(users.path(key ?? ""), message);
  }
  return config;
}

function readRateLimits(limits: Fields, env: Env): RateLimitConfig {
  limits.only(["perCaller", "perAddress", "redis"]);
  const config: RateLimitConfig = {};
  for (const key of ["perCaller", "perAddress"] as const) {
    if (!limits.has(key)) continue;
    const bucket = limits.object(key);
    bucket.only(["ratePerSecond", "burst"]);
    config[key] = {
      ratePerSecond: bucket.number("ratePerSecond", undefined, 0.001, 1e6),
      burst: bucket.number("burst", undefined, 1, 1e6),
    };
  }
  if (limits.has("redis")) {
    const redis = limits.object("redis");
    redis.only(["url", "urlEnv", "keyPrefix"]);
    const urlEnv = redis.optionalString("urlEnv");
    const url =
      urlEnv !== undefined ? env[urlEnv] : redis.optionalString("url");
    if (!url) {
      throw new ConfigError(
        redis.path("url"),
        "set url, or urlEnv to a set env variable",
      );
    }
    const keyPrefix = redis.optionalString("keyPrefix");
    config.redis = { url, ...(keyPrefix !== undefined && { keyPrefix }) };
  }
  return config;
}
