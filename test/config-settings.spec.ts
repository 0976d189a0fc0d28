import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../server/config.js";
import { configError, type Env, useTempDir } from "./support/config-env.js";

const temp = useTempDir("token-service-settings-");
const tempFile = temp.write;

// The settings below apply alike in and out of development mode, and are
// checked in it: without credentials or NODE_ENV.
describe("loadConfig listener", () => {
  it("takes PORT, 8080 by default, and the --port flag over it", () => {
    expect(loadConfig({}, {}).port).toBe(8080);
    expect(loadConfig({}, { PORT: "" }).port).toBe(8080);
    expect(loadConfig({}, { PORT: "9000" }).port).toBe(9000);
    expect(loadConfig({ port: 7000 }, { PORT: "9000" }).port).toBe(7000);
  });

  it.each(["http", "-1", "65536", "80.5", " "])("refuses PORT=%j", (port) => {
    const error = configError({ PORT: port });
    expect([error.key, error.message]).toEqual([
      "PORT",
      "PORT: must be an integer from 0 to 65535",
    ]);
  });

  it("reads TLS_CERT_FILE and TLS_KEY_FILE, which need each other", () => {
    const cert = tempFile("cert.pem", "CERT");
    const key = tempFile("key.pem", "KEY");
    const tls = loadConfig({}, { TLS_CERT_FILE: cert, TLS_KEY_FILE: key }).tls;
    expect(tls?.cert.toString()).toBe("CERT");
    expect(tls?.key.toString()).toBe("KEY");
    expect(loadConfig({}, {})).not.toHaveProperty("tls");
    expect(configError({ TLS_CERT_FILE: cert }).key).toBe("TLS_KEY_FILE");
    expect(configError({ TLS_KEY_FILE: key }).key).toBe("TLS_CERT_FILE");
    const missing = join(temp.dir, "no-cert.pem");
    const error = configError({ TLS_CERT_FILE: missing, TLS_KEY_FILE: key });
    expect(error.key).toBe("TLS_CERT_FILE");
  });
});

describe("loadConfig token lifetimes", () => {
  const ttl = (env: Env) => loadConfig({}, env).ttl;

  it("parses TOKEN_TTL and TOKEN_MAX_TTL as durations", () => {
    expect(ttl({})).toEqual({ defaultSeconds: 600, maxSeconds: 21_600 });
    expect(ttl({ TOKEN_TTL: "10m", TOKEN_MAX_TTL: "1h" })).toEqual({
      defaultSeconds: 600,
      maxSeconds: 3_600,
    });
    expect(ttl({ TOKEN_TTL: "120", TOKEN_MAX_TTL: "120" })).toEqual({
      defaultSeconds: 120,
      maxSeconds: 120,
    });
  });

  it("refuses lifetimes below 120 s and malformed durations", () => {
    const short = configError({ TOKEN_TTL: "90s" });
    expect([short.key, short.message]).toEqual([
      "TOKEN_TTL",
      "TOKEN_TTL: must be at least 120 seconds",
    ]);
    expect(configError({ TOKEN_MAX_TTL: "1m" }).key).toBe("TOKEN_MAX_TTL");
    const bad = configError({ TOKEN_TTL: "1.5h" });
    expect([bad.key, bad.message]).toEqual([
      "TOKEN_TTL",
      "TOKEN_TTL: not a duration (like 600, 90s, 10m, 6h): 1.5h",
    ]);
  });

  it("refuses a TOKEN_MAX_TTL below TOKEN_TTL", () => {
    const env = { TOKEN_TTL: "1h", TOKEN_MAX_TTL: "30m" };
    const error = configError(env);
    expect([error.key, error.message]).toEqual([
      "TOKEN_MAX_TTL",
      "TOKEN_MAX_TTL: must not be below TOKEN_TTL",
    ]);
  });
});

describe("loadConfig request limits", () => {
  const limits = (env: Env) => loadConfig({}, env).limits;

  it("defaults to LiveKit's limits and takes MAX_* overrides", () => {
    expect(limits({})).toEqual({
      nameBytes: 256,
      metadataBytes: 64_000,
      attributesBytes: 64_000,
      tokenBytes: 8_192,
      requestBytes: 262_144,
    });
    const env = {
      MAX_NAME_BYTES: "1",
      MAX_METADATA_BYTES: "0",
      MAX_ATTRIBUTES_BYTES: "0",
      MAX_TOKEN_BYTES: "256",
      MAX_REQUEST_BYTES: String(64 * 1024 * 1024),
    };
    expect(limits(env)).toEqual({
      nameBytes: 1,
      metadataBytes: 0,
      attributesBytes: 0,
      tokenBytes: 256,
      requestBytes: 67_108_864,
    });
  });

  it.each([
    ["MAX_NAME_BYTES", "0", 1],
    ["MAX_METADATA_BYTES", "-1", 0],
    ["MAX_ATTRIBUTES_BYTES", "67108865", 0],
    ["MAX_TOKEN_BYTES", "255", 256],
    ["MAX_REQUEST_BYTES", "1023", 1024],
  ])("refuses %s=%s", (key, value, min) => {
    const error = configError({ [key]: value });
    expect([error.key, error.message]).toEqual([
      key,
      `${key}: must be an integer from ${min} to 67108864`,
    ]);
  });
});
