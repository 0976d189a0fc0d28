import { readFileSync } from "node:fs";
import type { AuthSettings } from "./auth/authenticate.js";
import { ConfigError } from "./config-error.js";
import { readConfigFile } from "./config-file.js";
import { parseDuration } from "./duration.js";
import { developmentPolicy } from "./policy/defaults.js";
import { minTtlSeconds } from "./policy/ttl.js";
import type { RateLimitConfig } from "./rate-limit.js";

/** The credentials and URL of the LiveKit project that tokens are for. */
export interface LiveKitProject {
  /** The URL clients connect to, returned as `server_url`. */
  url: string;
  /** The API key, the token's issuer (`iss`). */
  apiKey: string;
  /** The API secret that signs tokens. Never logged. */
  apiSecret: string;
}

/** Size limits on what a request may ask for. */
export interface RequestLimits {
  /** Longest identity, room name and participant name, in UTF-8 bytes. */
  nameBytes: number;
  /** Longest participant metadata, in UTF-8 bytes. */
  metadataBytes: number;
  /** Largest participant attributes, keys plus values, in UTF-8 bytes. */
  attributesBytes: number;
  /** Longest token, in bytes: it travels in the WebSocket URL. */
  tokenBytes: number;
  /** Largest request body, after decompression, in bytes. */
  requestBytes: number;
}

/** Token lifetimes, in seconds. */
export interface TokenLifetimes {
  /** The TTL of a token whose request names none. */
  defaultSeconds: number;
  /** The longest TTL a request may ask for; longer ones are clamped. */
  maxSeconds: number;
}

/** Bounds on connections, so that slow or greedy clients cannot starve others. */
export interface ConnectionLimits {
  /** Open connections at most; more are refused. */
  maxConnections: number;
  /** Largest request header block, in bytes (HTTP/1.1 and HTTP/2). */
  maxHeaderBytes: number;
  /** Concurrent HTTP/2 streams per connection. */
  maxStreamsPerConnection: number;
  /** Time to receive a request's headers (and a connection's first bytes). */
  headersTimeoutMs: number;
  /** Time to receive a whole HTTP/1.1 request. */
  requestTimeoutMs: number;
  /** How long an idle connection stays open. */
  idleTimeoutMs: number;
}

/** How the service stops on SIGTERM or SIGINT. */
export interface ShutdownTimes {
  /** Readiness is false but calls are still served, so load balancers move away. */
  drainMs: number;
  /** Then in-flight calls have this long to finish before connections are cut. */
  timeoutMs: number;
}

/** Everything the service needs to run, resolved from flags and env. */
export interface ServiceConfig {
  /** Development mode: LiveKit's dev credentials, relaxed defaults. */
  dev: boolean;
  /** Why development mode is on, for the start-up log. */
  devReason?: string;
  livekit: LiveKitProject;
  host: string;
  port: number;
  /** PEM certificate and key; when set, the port speaks TLS only. */
  tls?: { cert: Buffer; key: Buffer };
  ttl: TokenLifetimes;
  limits: RequestLimits;
  connections: ConnectionLimits;
  shutdown: ShutdownTimes;
  /** Who may call; anonymous callers only in development mode or by config. */
  auth: AuthSettings;
  rateLimits: RateLimitConfig;
  /** Proxies whose `X-Forwarded-For` names the client address. */
  trustedProxies: string[];
  /** Origins allowed to call from browsers; `*` in development mode. */
  corsOrigins: string[];
}

export { ConfigError, minTtlSeconds };

/** The credentials of `livekit-server --dev`. */
export const devProject: LiveKitProject = {
  url: "ws://localhost:7880",
  apiKey: "devkey",
  apiSecret: "secret",
};

/** The LiveKit server's default limits, used unless configured otherwise. */
export const defaultLimits: RequestLimits = {
  nameBytes: 256,
  metadataBytes: 64_000,
  attributesBytes: 64_000,
  tokenBytes: 8 * 1024,
  requestBytes: 256 * 1024,
};

const minProductionSecretLength = 32;

/** Flags given on the command line. */
export interface ConfigFlags {
  dev?: boolean;
  /** Path of the config file; else `CONFIG_FILE`. */
  config?: string;
  host?: string;
  port?: number;
}

type Env = Record<string, string | undefined>;

/**
 * Resolves the service configuration from command-line flags and the
 * environment.
 *
 * Development mode is on with `--dev`, or when no LiveKit credentials are
 * set and `NODE_ENV` is not `production`.
 *
 * @throws ConfigError naming the first missing or invalid key.
 */
export function loadConfig(flags: ConfigFlags, env: Env): ServiceConfig {
  const production = env.NODE_ENV === "production";
  const apiKey = readSecret(env, "LIVEKIT_API_KEY");
  const apiSecret = readSecret(env, "LIVEKIT_API_SECRET");
  const url = readSecret(env, "LIVEKIT_URL");
  const hasCredentials = apiKey !== undefined || apiSecret !== undefined;

  const devReason = flags.dev
    ? "--dev was given"
    : !hasCredentials && !production
      ? "no LiveKit credentials are set and NODE_ENV is not production"
      : undefined;
  if (devReason && production) {
    throw new ConfigError("--dev", "not allowed with NODE_ENV=production");
  }
  const dev = devReason !== undefined;

  const livekit =
    dev && !hasCredentials
      ? { ...devProject, url: url ?? devProject.url }
      : undefined;
  const project = livekit ?? {
    url: required("LIVEKIT_URL", url),
    apiKey: required("LIVEKIT_API_KEY", apiKey),
    apiSecret: required("LIVEKIT_API_SECRET", apiSecret),
  };
  if (production) checkProductionSecret(project);
  checkLiveKitUrl(project.url);

  const ttl = {
    defaultSeconds: durationSeconds(env, "TOKEN_TTL", 600),
    maxSeconds: durationSeconds(env, "TOKEN_MAX_TTL", 6 * 3600),
  };
  if (ttl.maxSeconds < ttl.defaultSeconds) {
    throw new ConfigError("TOKEN_MAX_TTL", "must not be below TOKEN_TTL");
  }

  const configPath = flags.config ?? (env.CONFIG_FILE || undefined);
  const file = configPath ? readConfigFile(configPath, env) : undefined;
  const auth: AuthSettings = file?.auth ?? { serviceKeys: [] };
  if (dev && auth.anonymous === undefined) {
    auth.anonymous = developmentPolicy(ttl.maxSeconds);
  }
  if (!dev && !auth.users && auth.serviceKeys.length === 0 && !auth.anonymous) {
    throw new ConfigError(
      "callers",
      "no callers are configured: give --config a file with service keys or users",
    );
  }

  return {
    dev,
    ...(devReason && { devReason }),
    livekit: project,
    host: flags.host ?? (env.HOST || (dev ? "127.0.0.1" : "0.0.0.0")),
    port: flags.port ?? integer(env, "PORT", 8080, 0, 65_535),
    ...loadTls(env),
    ttl,
    limits: loadLimits(env),
    connections: loadConnectionLimits(env),
    shutdown: {
      drainMs:
        1000 * integer(env, "SHUTDOWN_DRAIN_SECONDS", dev ? 0 : 5, 0, 600),
      timeoutMs: 1000 * integer(env, "SHUTDOWN_TIMEOUT_SECONDS", 10, 0, 600),
    },
    auth,
    rateLimits: file?.rateLimits ?? {},
    trustedProxies: file?.trustedProxies ?? [],
    corsOrigins: file?.corsOrigins.length ? file.corsOrigins : dev ? ["*"] : [],
  };
}

/** Connection limits unless configured otherwise. */
export const defaultConnectionLimits: ConnectionLimits = {
  maxConnections: 10_000,
  maxHeaderBytes: 16 * 1024,
  maxStreamsPerConnection: 100,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
};

function loadConnectionLimits(env: Env): ConnectionLimits {
  const d = defaultConnectionLimits;
  const seconds = (key: string, fallbackMs: number, max: number) =>
    1000 * integer(env, key, fallbackMs / 1000, 1, max);
  return {
    maxConnections: integer(env, "MAX_CONNECTIONS", d.maxConnections, 1, 1e6),
    maxHeaderBytes: integer(
      env,
      "MAX_HEADER_BYTES",
      d.maxHeaderBytes,
      1024,
      1 << 20,
    ),
    maxStreamsPerConnection: integer(
      env,
      "MAX_STREAMS_PER_CONNECTION",
      d.maxStreamsPerConnection,
      1,
      10_000,
    ),
    headersTimeoutMs: seconds(
      "HEADERS_TIMEOUT_SECONDS",
      d.headersTimeoutMs,
      600,
    ),
    requestTimeoutMs: seconds(
      "REQUEST_TIMEOUT_SECONDS",
      d.requestTimeoutMs,
      3600,
    ),
    idleTimeoutMs: seconds("IDLE_TIMEOUT_SECONDS", d.idleTimeoutMs, 3600),
  };
}

function loadLimits(env: Env): RequestLimits {
  const max = 64 * 1024 * 1024;
  const d = defaultLimits;
  return {
    nameBytes: integer(env, "MAX_NAME_BYTES", d.nameBytes, 1, max),
    metadataBytes: integer(env, "MAX_METADATA_BYTES", d.metadataBytes, 0, max),
    attributesBytes: integer(
      env,
      "MAX_ATTRIBUTES_BYTES",
      d.attributesBytes,
      0,
      max,
    ),
    tokenBytes: integer(env, "MAX_TOKEN_BYTES", d.tokenBytes, 256, max),
    requestBytes: integer(env, "MAX_REQUEST_BYTES", d.requestBytes, 1024, max),
  };
}

function loadTls(env: Env): { tls?: ServiceConfig["tls"] } {
  const certFile = env.TLS_CERT_FILE;
  const keyFile = env.TLS_KEY_FILE;
  if (certFile === undefined && keyFile === undefined) return {};
  const cert = readFile("TLS_CERT_FILE", required("TLS_CERT_FILE", certFile));
  const key = readFile("TLS_KEY_FILE", required("TLS_KEY_FILE", keyFile));
  return { tls: { cert, key } };
}

/** Reads `NAME`, or the file that `NAME_FILE` points to, trimmed. */
function readSecret(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
  }
  if (file !== undefined) {
    return readFile(`${name}_FILE`, file).toString("utf8").trim();
  }
  return direct === "" ? undefined : direct;
}

function readFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError(key, `cannot read ${path} (${code})`);
  }
}

function required(key: string, value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new ConfigError(key, "is required outside development mode");
  }
  return value;
}

function checkProductionSecret(project: LiveKitProject): void {
  if (
    project.apiKey === devProject.apiKey ||
    project.apiSecret === devProject.apiSecret
  ) {
    throw new ConfigError(
      "LIVEKIT_API_SECRET",
      "development credentials are refused with NODE_ENV=production",
    );
  }
  if (project.apiSecret.length < minProductionSecretLength) {
    throw new ConfigError(
      "LIVEKIT_API_SECRET",
      `must be at least ${minProductionSecretLength} characters with NODE_ENV=production`,
    );
  }
}

function checkLiveKitUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new ConfigError("LIVEKIT_URL", `not a URL: ${url}`);
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(protocol)) {
    throw new ConfigError(
      "LIVEKIT_URL",
      "must be a ws, wss, http or https URL",
    );
  }
}

function integer(
  env: Env,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function durationSeconds(env: Env, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const seconds = parseDuration(raw);
  if (seconds === undefined) {
    throw new ConfigError(
      key,
      `not a duration (like 600, 90s, 10m, 6h): ${raw}`,
    );
  }
  if (seconds < minTtlSeconds) {
    throw new ConfigError(key, `must be at least ${minTtlSeconds} seconds`);
  }
  return seconds;
}
