import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../server/config-error.js";
import { parseConfigDocument, readConfigFile } from "../server/config-file.js";
import { participantGrant } from "../server/policy/defaults.js";

const key = "k".repeat(32);
const env = { KEY: key };
const dir = mkdtempSync(join(tmpdir(), "config-file-spec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A valid document: one policy, one service key, one end-user setup. */
function base(): Record<string, unknown> {
  return {
    policies: { p: { rooms: ["lobby"] } },
    callers: {
      serviceKeys: [{ name: "s", keyEnv: "KEY", policy: "p" }],
      users: {
        issuer: "https://idp.example.com/",
        audience: "token-service",
        jwksUrl: "https://idp.example.com/jwks.json",
        policy: "p",
      },
    },
  };
}

/** The ConfigError that parsing `document` throws. */
function configError(document: unknown, environment = env): ConfigError {
  try {
    parseConfigDocument(document, environment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("the document was accepted");
}

/** Sets (or, for undefined, deletes) the value at a dotted path. */
function edit(document: unknown, path: string, value: unknown): void {
  const keys = path.split(/\.|\[(\d+)\]\.?/).filter((k) => k);
  const last = keys.pop() as string;
  let at = document as Record<string, unknown>;
  for (const key of keys) {
    at[key] ??= {};
    at = at[key] as Record<string, unknown>;
  }
  if (value === undefined) delete at[last];
  else at[last] = value;
}

const missingFile = join(dir, "missing");
const keyEntry = { keyEnv: "KEY", policy: "p" };

describe("parseConfigDocument", () => {
  it("accepts the base document", () => {
    expect(parseConfigDocument(base(), env).auth.serviceKeys).toHaveLength(1);
  });

  // [the key the error must name, the path edited, the value set there]
  it.each<[string, string, unknown]>([
    ["polices", "polices", {}],
    ["policies.p.rooms", "policies.p.rooms", undefined],
    ["policies.p.rooms[1]", "policies.p.rooms", ["a", "a*b"]],
    ["policies.p.room", "policies.p.room", ["a"]],
    ["policies.p.anyIdentity", "policies.p.anyIdentity", "yes"],
    ["policies.p.grant.canPublish", "policies.p.grant.canPublish", 1],
    [
      "policies.p.grant.canPublishSources",
      "policies.p.grant.canPublishSources",
      ["webcam"],
    ],
    ["policies.p.grant.roomAdmn", "policies.p.grant.roomAdmn", true],
    ["policies.p.maxTtl", "policies.p.maxTtl", "10s"],
    ["policies.p.roomConfig.fields", "policies.p.roomConfig.fields", ["egres"]],
    [
      "policies.p.roomConfig.agentMetadataBytes",
      "policies.p.roomConfig.agentMetadataBytes",
      -1,
    ],
    ["policies.p.attributes.maxBytes", "policies.p.attributes.maxBytes", "1kb"],
    ["policies.p.metadataBytes", "policies.p.metadataBytes", 1e9],
    ["callers.serviceKeys[0].policy", "callers.serviceKeys[0].policy", "nope"],
    ["callers.serviceKeys[0].keyEnv", "callers.serviceKeys[0].keyEnv", "UNSET"],
    [
      "callers.serviceKeys[0].keyFile",
      "callers.serviceKeys[0]",
      { name: "s", keyFile: missingFile, policy: "p" },
    ],
    ["callers.serviceKeys[0].key", "callers.serviceKeys[0].key", key],
    ["callers.serviceKeys[1].name", "callers.serviceKeys[1]", keyEntry],
    [
      "callers.serviceKeys",
      "callers.serviceKeys[1]",
      { name: "s", ...keyEntry },
    ],
    ["callers.users.audience", "callers.users.audience", undefined],
    ["callers.users.issuer", "callers.users.issuer", ""],
    ["callers.users.policy", "policies.p.grant.roomAdmin", true],
    [
      "callers.users.clockToleranceSeconds",
      "callers.users.clockToleranceSeconds",
      3600,
    ],
    ["callers.users.algorithms", "callers.users.algorithms", ["HS256"]],
    ["callers.users.jwksUrl", "callers.users.jwksUrl", "http://idp.example/k"],
    ["callers.anonymous.policy", "callers.anonymous.policy", "nope"],
    [
      "rateLimits.perCaller.burst",
      "rateLimits.perCaller",
      { ratePerSecond: 1, burst: 0 },
    ],
    ["rateLimits.redis.url", "rateLimits.redis.urlEnv", "UNSET"],
    ["trustedProxies", "trustedProxies", "10.0.0.0/8"],
    ["cors.allowedOrigin", "cors.allowedOrigin", ["https://a.example"]],
  ])("names %s in its error", (path, at, value) => {
    const document = base();
    edit(document, at, value);
    const error = configError(document);
    expect(error.key).toBe(path);
    expect(error.message.startsWith(`${path}: `)).toBe(true);
  });

  it("refuses a service key shorter than 32 characters", () => {
    const error = configError(base(), { KEY: "k".repeat(31) });
    expect(error.key).toBe("callers.serviceKeys[0].keyEnv");
    expect(error.message).not.toContain("k".repeat(31));
  });

  it("refuses a root that is not a mapping", () => {
    expect(configError(["policies"]).key).toBe("(root)");
  });
});

describe("readConfigFile", () => {
  it("names --config for a file that cannot be read", () => {
    const read = () => readConfigFile(join(dir, "absent.yaml"), env);
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/^--config: cannot read .*absent\.yaml \(ENOENT\)$/);
  });

  it("names --config for a file that is not YAML", () => {
    const path = join(dir, "broken.yaml");
    writeFileSync(path, "policies: [unclosed\n");
    expect(() => readConfigFile(path, env)).toThrow(/^--config: not YAML/);
  });

  it("reads the complete example config", () => {
    const keyFile = join(dir, "billing-next.key");
    const nextKey = "n".repeat(40);
    writeFileSync(keyFile, `${nextKey}\n`);
    const example = readFileSync(
      new URL("./support/example-config.yaml", import.meta.url),
      "utf8",
    );
    const path = join(dir, "example.yaml");
    writeFileSync(path, example.replace("./billing-next.key", keyFile));

    const config = readConfigFile(path, {
      BILLING_SERVICE_KEY: key,
      REDIS_URL: "redis://127.0.0.1:6379",
    });

    const [billing, next] = config.auth.serviceKeys;
    expect(billing).toMatchObject({ name: "billing-backend", key });
    expect(next).toMatchObject({ name: "billing-backend-next", key: nextKey });
    expect(next?.policy).toBe(billing?.policy);
    expect(billing?.policy).toMatchObject({
      name: "backend",
      anyIdentity: true,
      maxTtlSeconds: 7200,
      grant: {
        hidden: true,
        recorder: true,
        canPublishSources: ["camera", "microphone"],
      },
      roomConfig: { agentMetadataBytes: 4096, agentAttributesBytes: 2048 },
      attributeKeys: ["role", "tier"],
    });
    expect(billing?.policy.roomConfig.fields).toContain("egress");
    expect(config.auth.users?.jwt).toMatchObject({
      issuer: "https://idp.example.com/",
      audience: ["token-service", "token-service-staging"],
      algorithms: ["RS256", "ES256"],
      clockToleranceSeconds: 60,
      requiredClaims: ["org"],
      nameClaim: "name",
    });
    expect(config.auth.users?.policy.rooms).toEqual(["lobby", "team-{org}-*"]);
    expect(config.auth.anonymous).toMatchObject({
      name: "visitors",
      grant: { ...participantGrant, canPublish: false },
      maxTtlSeconds: 600,
    });
    expect(config.rateLimits).toEqual({
      perCaller: { ratePerSecond: 5, burst: 20 },
      perAddress: { ratePerSecond: 1, burst: 10 },
      redis: { url: "redis://127.0.0.1:6379", keyPrefix: "lkts" },
    });
    expect(config.trustedProxies).toEqual(["10.0.0.0/8", "::1"]);
    expect(config.corsOrigins).toEqual(["https://app.example.com"]);
  });
});
