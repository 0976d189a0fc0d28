import type { ServiceConfig } from "./config.js";
import { createRequestHandler } from "./handler.js";
import { HealthState, ServingStatus } from "./health.js";
import { type Listener, listen } from "./listen.js";
import type { Logger } from "./logger.js";
import { ServiceMetrics } from "./metrics.js";
import { createRateLimiter } from "./rate-limit.js";

/** A running token service. */
export interface TokenService extends Listener {
  metrics: ServiceMetrics;
  health: HealthState;
}

/** Options for tests. */
export interface StartOptions {
  /** See `HandlerDeps.connectNodeCreateToken`. */
  connectNodeCreateToken?: boolean;
}

/**
 * Starts the token service on the configured host and port.
 *
 * @throws the listener's error when the port cannot be bound.
 */
export async function startTokenService(
  config: ServiceConfig,
  logger: Logger,
  options: StartOptions = {},
): Promise<TokenService> {
  if (config.dev) {
    logger.warn(
      { reason: config.devReason, livekitUrl: config.livekit.url },
      "DEVELOPMENT MODE: tokens are minted for anyone who asks; " +
        "do not expose this service",
    );
  }
  let ready = false;
  const metrics = new ServiceMetrics();
  const health = new HealthState({ "": ServingStatus.NOT_SERVING });
  const limiter = createRateLimiter(config.rateLimits);
  const handler = createRequestHandler(config, {
    logger,
    metrics,
    limiter,
    health,
    isReady: () => ready,
    ...options,
  });
  const listener = await listen(config, handler);
  ready = true;
  health.setServing("", ServingStatus.SERVING);
  health.setServing("tokenservice.v1.TokenService", ServingStatus.SERVING);
  logger.info(
    {
      address: listener.address.address,
      port: listener.address.port,
      tls: config.tls !== undefined,
      livekitUrl: config.livekit.url,
    },
    "listening",
  );
  return {
    ...listener,
    metrics,
    health,
    close: async () => {
      ready = false;
      health.shutdown();
      await listener.close();
      await limiter.close();
    },
  };
}
