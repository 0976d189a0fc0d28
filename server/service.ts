import type { ServiceConfig } from "./config.js";
import { createRequestHandler } from "./handler.js";
import { type Listener, listen } from "./listen.js";
import type { Logger } from "./logger.js";

/**
 * Starts the token service on the configured host and port.
 *
 * @throws the listener's error when the port cannot be bound.
 */
export async function startTokenService(
  config: ServiceConfig,
  logger: Logger,
): Promise<Listener> {
  if (config.dev) {
    logger.warn(
      { reason: config.devReason, livekitUrl: config.livekit.url },
      "DEVELOPMENT MODE: tokens are minted for anyone who asks; " +
        "do not expose this service",
    );
  }
  const listener = await listen(config, createRequestHandler(config, logger));
  logger.info(
    {
      address: listener.address.address,
      port: listener.address.port,
      tls: config.tls !== undefined,
      livekitUrl: config.livekit.url,
    },
    "listening",
  );
  return listener;
}
