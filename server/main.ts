#!/usr/bin/env node
import { parseArgs } from "node:util";
import { ConfigError, type ConfigFlags, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { startTokenService } from "./service.js";

const usage = `Usage: livekit-token-service [options]

Mints LiveKit participant tokens over Connect, gRPC and gRPC-Web.

Options:
  --config FILE  the config file (YAML or JSON) with callers, policies and
                 rate limits (default: CONFIG_FILE)
  --dev          development mode: livekit-server --dev credentials
                 (devkey / secret, ws://localhost:7880); also on when no
                 LiveKit credentials are set and NODE_ENV is not production
  --host HOST    address to bind (default: HOST, else 127.0.0.1 in
                 development mode and 0.0.0.0 otherwise)
  --port PORT    port to bind, 0 for any free port (default: PORT, else 8080)
  -h, --help     show this help

Environment: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET (each also as
*_FILE), TOKEN_TTL, TOKEN_MAX_TTL, TLS_CERT_FILE, TLS_KEY_FILE, and the MAX_*
limits; see the README.
`;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags === "help") {
    process.stdout.write(usage);
    return;
  }
  const logger = createLogger(process.env.LOG_LEVEL);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(flags, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(
      `livekit-token-service: invalid configuration: ${e.message}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const listener = await startTokenService(config, logger);
  const stop = (signal: string) => {
    logger.info({ signal }, "stopping");
    listener.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

function parseFlags(args: string[]): ConfigFlags | "help" {
  const { values } = parseArgs({
    args,
    options: {
      dev: { type: "boolean" },
      config: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const port = values.port === undefined ? undefined : Number(values.port);
  if (
    port !== undefined &&
    !(Number.isInteger(port) && port >= 0 && port <= 65_535)
  ) {
    throw new ConfigError("--port", "must be an integer from 0 to 65535");
  }
  return {
    ...(values.dev && { dev: true }),
    ...(values.config !== undefined && { config: values.config }),
    ...(values.host !== undefined && { host: values.host }),
    ...(port !== undefined && { port }),
  };
}

main().catch((error: unknown) => {
  process.stderr.write(
    `livekit-token-service: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
