import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceConfig } from "./config.js";
import { createRequestHandler, type HandlerDeps } from "./handler.js";
import { HealthState, ServingStatus } from "./health.js";
import { type Listener, listen } from "./listen.js";
import type { Logger } from "./logger.js";
import { ServiceMetrics } from "./metrics.js";
import { createRateLimiter, type RateLimiter } from "./rate-limit.js";

/** A running token service. */
export interface RunningService {
  address: Listener["address"];
  metrics: ServiceMetrics;
  health: HealthState;
  /**
   * Swaps in a new configuration for the calls that start from now on:
   * callers, policies, limits, rate limits, CORS, the LiveKit project and
   * the TLS certificate. The address cannot change without a restart.
   */
  reload(config: ServiceConfig): Promise<void>;
  /**
   * Stops gracefully: readiness turns false at once while calls are still
   * served for `config.shutdown.drainMs`; then new connections are refused,
   * health `Watch` streams end, and in-flight calls get
   * `config.shutdown.timeoutMs` to finish before connections are cut.
   */
  stop(): Promise<void>;
  /** Stops at once, cutting open connections; for tests. */
  close(): Promise<void>;
}

/** Options for tests. */
export interface StartOptions {
  /** See `HandlerDeps.connectNodeCreateToken`. */
  connectNodeCreateToken?: boolean;
}

const tokenServiceName = "tokenservice.v1.TokenService";

/**
 * Starts the token service on the configured host and port.
 *
 * @throws the listener's error when the port cannot be bound.
 */
export async function startTokenService(
  initialConfig: ServiceConfig,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningService> {
  let config = initialConfig;
  let ready = false;
  const metrics = new ServiceMetrics();
  const health = new HealthState({ "": ServingStatus.NOT_SERVING });
  let limiter = createRateLimiter(config.rateLimits);
  const handlerFor = (next: ServiceConfig, nextLimiter: RateLimiter) => {
    const deps: HandlerDeps = {
      logger,
      metrics,
      limiter: nextLimiter,
      health,
      isReady: () => ready,
      ...options,
    };
    return createRequestHandler(next, deps);
  };

  warnIfDevelopment(config, logger);
  const listener = await listen(config, handlerFor(config, limiter));
  ready = true;
  health.setServing("", ServingStatus.SERVING);
  health.setServing(tokenServiceName, ServingStatus.SERVING);
  logger.info(
    {
      address: listener.address.address,
      port: listener.address.port,
      tls: config.tls !== undefined,
      livekitUrl: config.livekit.url,
    },
    "listening",
  );

  const stopWithin = async (drainMs: number, timeoutMs: number) => {
    ready = false;
    health.setServing("", ServingStatus.NOT_SERVING);
    health.setServing(tokenServiceName, ServingStatus.NOT_SERVING);
    if (drainMs > 0) await sleep(drainMs);
    const closed = listener.close(timeoutMs);
    health.shutdown();
    await closed;
    await limiter.close();
  };

  return {
    address: listener.address,
    metrics,
    health,
    async reload(next) {
      const previous = limiter;
      const limitsChanged =
        JSON.stringify(next.rateLimits) !== JSON.stringify(config.rateLimits);
      if (limitsChanged) limiter = createRateLimiter(next.rateLimits);
      listener.setHandler(handlerFor(next, limiter));
      if (next.tls) listener.setTls(next.tls);
      config = next;
      warnIfDevelopment(config, logger);
      if (limitsChanged) {
        // Calls that started before the swap may still consume from it.
        setTimeout(() => void previous.close(), 30_000).unref();
      }
    },
    stop: () => stopWithin(config.shutdown.drainMs, config.shutdown.timeoutMs),
    close: () => stopWithin(0, 0),
  };
}

function warnIfDevelopment(config: ServiceConfig, logger: Logger): void {
  if (!config.dev) return;
  logger.warn(
    { reason: config.devReason, livekitUrl: config.livekit.url },
    "DEVELOPMENT MODE: tokens are minted for anyone who asks; " +
      "do not expose this service",
  );
}
