import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../server/config.js";
import { parseDuration } from "../server/duration.js";
import { configError, project, useTempDir } from "./support/config-env.js";

const devProject = {
  url: "ws://localhost:7880",
  apiKey: "devkey",
  apiSecret: "secret",
};

const temp = useTempDir("token-service-config-");
const tempFile = temp.write;

describe("loadConfig development mode", () => {
  it("is on without credentials outside production, with dev defaults", () => {
    expect(loadConfig({}, {})).toMatchObject({
      dev: true,
      devReason:
        "no LiveKit credentials are set and NODE_ENV is not production",
      livekit: devProject,
      host: "127.0.0.1",
      port: 8080,
      ttl: { defaultSeconds: 600, maxSeconds: 21_600 },
    });
    expect(loadConfig({}, { NODE_ENV: "development" }).dev).toBe(true);
  });

  it("is on with --dev, keeping credentials that are set", () => {
    expect(loadConfig({ dev: true }, {})).toMatchObject({
      dev: true,
      devReason: "--dev was given",
      livekit: devProject,
      host: "127.0.0.1",
    });
    expect(loadConfig({ dev: true }, project).livekit).toEqual({
      url: project.LIVEKIT_URL,
      apiKey: project.LIVEKIT_API_KEY,
      apiSecret: project.LIVEKIT_API_SECRET,
    });
  });

  it("is off when credentials are set, binding every interface", () => {
    const config = loadConfig({}, project);
    expect(config.dev).toBe(false);
    expect(config).not.toHaveProperty("devReason");
    expect(config.host).toBe("0.0.0.0");
    expect(config.livekit.apiKey).toBe("APIprojectkey");
  });

  it("needs callers outside development mode", () => {
    const error = configError({ ...project, CONFIG_FILE: undefined });
    expect(error.key).toBe("callers");
    expect(loadConfig({}, project).auth.serviceKeys.map((k) => k.name)).toEqual(
      ["backend"],
    );
  });

  it("is refused with NODE_ENV=production", () => {
    const env = { ...project, NODE_ENV: "production" };
    const error = configError(env, { dev: true });
    expect([error.key, error.message]).toEqual([
      "--dev",
      "--dev: not allowed with NODE_ENV=production",
    ]);
  });

  it("treats an empty HOST as unset, staying on loopback", () => {
    expect(loadConfig({}, { HOST: "" }).host).toBe("127.0.0.1");
    expect(loadConfig({}, { HOST: "::1" }).host).toBe("::1");
    expect(loadConfig({ host: "localhost" }, { HOST: "::1" }).host).toBe(
      "localhost",
    );
  });
});

describe("loadConfig credentials", () => {
  const production = { NODE_ENV: "production" };

  it("names the first missing key in production", () => {
    expect(configError(production).key).toBe("LIVEKIT_URL");
    expect(configError(production).message).toBe(
      "LIVEKIT_URL: is required outside development mode",
    );
    const url = { ...production, LIVEKIT_URL: project.LIVEKIT_URL };
    expect(configError(url).key).toBe("LIVEKIT_API_KEY");
    const noSecret = { ...project, ...production, LIVEKIT_API_SECRET: "" };
    expect(configError(noSecret).key).toBe("LIVEKIT_API_SECRET");
  });

  it("refuses LiveKit's development credentials in production", () => {
    const dev = { LIVEKIT_API_KEY: "devkey", LIVEKIT_API_SECRET: "secret" };
    const error = configError({ ...project, ...dev, ...production });
    expect([error.key, error.message]).toEqual([
      "LIVEKIT_API_SECRET",
      "LIVEKIT_API_SECRET: development credentials are refused with " +
        "NODE_ENV=production",
    ]);
    const devKey = { ...project, LIVEKIT_API_KEY: "devkey", ...production };
    expect(configError(devKey).key).toBe("LIVEKIT_API_SECRET");
  });

  it("requires a secret of 32 characters in production", () => {
    const short = { ...project, LIVEKIT_API_SECRET: "s".repeat(31) };
    const error = configError({ ...short, ...production });
    expect([error.key, error.message]).toEqual([
      "LIVEKIT_API_SECRET",
      "LIVEKIT_API_SECRET: must be at least 32 characters with " +
        "NODE_ENV=production",
    ]);
    expect(loadConfig({}, { ...project, ...production }).dev).toBe(false);
    expect(loadConfig({}, short).livekit.apiSecret).toBe("s".repeat(31));
  });

  it("reads *_FILE variants, trimmed", () => {
    const config = loadConfig(
      { dev: true },
      {
        LIVEKIT_URL_FILE: tempFile("url", " wss://file.example\n"),
        LIVEKIT_API_KEY_FILE: tempFile("key", "APIfromfile\n"),
        LIVEKIT_API_SECRET_FILE: tempFile("secret", `${"f".repeat(40)}\n`),
      },
    );
    expect(config.livekit).toEqual({
      url: "wss://file.example",
      apiKey: "APIfromfile",
      apiSecret: "f".repeat(40),
    });
  });

  it("refuses a key set both directly and as *_FILE", () => {
    const env = { ...project, LIVEKIT_API_KEY_FILE: tempFile("k2", "APIx") };
    const error = configError(env);
    expect([error.key, error.message]).toEqual([
      "LIVEKIT_API_KEY",
      "LIVEKIT_API_KEY: set either LIVEKIT_API_KEY or LIVEKIT_API_KEY_FILE, " +
        "not both",
    ]);
  });

  it("names the *_FILE key of an unreadable file", () => {
    const path = join(temp.dir, "missing");
    const { LIVEKIT_API_SECRET: _, ...rest } = project;
    const error = configError({ ...rest, LIVEKIT_API_SECRET_FILE: path });
    expect([error.key, error.message]).toEqual([
      "LIVEKIT_API_SECRET_FILE",
      `LIVEKIT_API_SECRET_FILE: cannot read ${path} (ENOENT)`,
    ]);
  });

  it("requires a ws, wss, http or https LIVEKIT_URL", () => {
    for (const url of ["project.livekit.example", "ftp://x.example"]) {
      expect(configError({ ...project, LIVEKIT_URL: url }).key).toBe(
        "LIVEKIT_URL",
      );
    }
    const http = { ...project, LIVEKIT_URL: "http://127.0.0.1:7880" };
    const config = loadConfig({ dev: true }, http);
    expect(config.livekit.url).toBe("http://127.0.0.1:7880");
  });
});

describe("parseDuration", () => {
  it.each([
    ["600", 600],
    ["0", 0],
    ["90s", 90],
    ["10m", 600],
    ["6h", 21_600],
    ["1d", 86_400],
    [" 10m\n", 600],
    ["999999999", 999_999_999],
  ])("parses %j as %i seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each([
    "",
    " ",
    "s",
    "-5",
    "+5",
    "1.5h",
    "10ms",
    "10M",
    "1h30m",
    "1 h",
    "1000000000",
  ])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});
