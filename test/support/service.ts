import {
  defaultConnectionLimits,
  defaultLimits,
  type ServiceConfig,
} from "../../server/config.js";
import type { Logger } from "../../server/logger.js";
import { developmentPolicy } from "../../server/policy/defaults.js";
import { type StartOptions, startTokenService } from "../../server/service.js";
import { suiteLogger } from "./suite-log.js";

/** The LiveKit project the test service mints for. */
export const testProject = {
  url: "wss://test.livekit.example",
  apiKey: "APItestkey",
  apiSecret: "test-secret-that-is-long-enough-for-production-use",
};

/** A running service on an ephemeral loopback port. */
export interface TestService {
  config: ServiceConfig;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the real service on `127.0.0.1`, port 0, with `overrides` applied
 * to a development-mode configuration. It logs nowhere unless `options`
 * gives a `logger`; the rest of `options` reaches `startTokenService`
 * (`connectNodeCreateToken: true` serves CreateToken through connect-node's
 * router instead of the unary path).
 */
export async function startTestService(
  overrides: Partial<ServiceConfig> = {},
  options: { logger?: Logger } & StartOptions = {},
): Promise<TestService> {
  const config: ServiceConfig = {
    dev: true,
    devReason: "test",
    livekit: testProject,
    host: "127.0.0.1",
    port: 0,
    ttl: { defaultSeconds: 600, maxSeconds: 3600 },
    limits: defaultLimits,
    connections: defaultConnectionLimits,
    shutdown: { drainMs: 0, timeoutMs: 1000 },
    auth: { serviceKeys: [], anonymous: developmentPolicy(3600) },
    rateLimits: {},
    trustedProxies: [],
    corsOrigins: ["*"],
    ...overrides,
  };
  const { logger = suiteLogger(), ...start } = options;
  const listener = await startTokenService(config, logger, start);
  const { port } = listener.address;
  return {
    config,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    close: () => listener.close(),
  };
}

/**
 * A service key of at least 32 characters, readable in tests as its
 * `name`: `testKey("static")` is `static` padded with `-`.
 */
export function testKey(name: string): string {
  return name.padEnd(32, "-");
}

/**
 * Auth settings of a development-mode service that also accepts the
 * service keys named, each under the development policy.
 */
export function devAuthWithKeys(...names: string[]): ServiceConfig["auth"] {
  const policy = developmentPolicy(3600);
  return {
    serviceKeys: names.map((name) => ({ name, key: testKey(name), policy })),
    anonymous: policy,
  };
}
