import { defaultLimits, type ServiceConfig } from "../../server/config.js";
import { createLogger } from "../../server/logger.js";
import { startTokenService } from "../../server/service.js";

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
 * to a development-mode configuration.
 */
export async function startTestService(
  overrides: Partial<ServiceConfig> = {},
): Promise<TestService> {
  const config: ServiceConfig = {
    dev: true,
    devReason: "test",
    livekit: testProject,
    host: "127.0.0.1",
    port: 0,
    ttl: { defaultSeconds: 600, maxSeconds: 3600 },
    limits: defaultLimits,
    ...overrides,
  };
  const listener = await startTokenService(config, createLogger("silent"));
  const { port } = listener.address;
  return {
    config,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    close: () => listener.close(),
  };
}
