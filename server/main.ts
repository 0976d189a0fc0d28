#!/usr/bin/env node
import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { ConfigError, type ConfigFlags, loadConfig } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { type RunningService, startTokenService } from "./service.js";

const usage = `Usage: livekit-token-service [options]

Mints LiveKit participant tokens over Connect, gRPC and gRPC-Web, on one
port for HTTP/1.1 and HTTP/2.

Options:
  --config FILE   config file (YAML or JSON) with callers, policies, rate
                  limits, trusted proxies and CORS origins
                  (default: CONFIG_FILE, else none)
  --dev           development mode: livekit-server --dev credentials
                  (devkey / secret, ws://localhost:7880), anonymous callers,
                  CORS *, the playground page at /; also on when no LiveKit
                  credentials are set and NODE_ENV is not production
                  (default: off)
  --host HOST     address to bind (default: HOST, else 127.0.0.1 in
                  development mode and 0.0.0.0 otherwise)
  --port PORT     port to bind, 0 for any free port (default: PORT, else 8080)
  --workers N     processes serving the port, for more than one core; note
                  that in-memory rate limits are then per process
                  (default: WORKERS, else 1)
  -h, --help      show this help and exit

Signals: SIGTERM and SIGINT stop gracefully; SIGHUP re-reads the
configuration and secrets, keeping the old ones if the new are invalid.

Environment: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET (each also as
*_FILE), TOKEN_TTL, TOKEN_MAX_TTL, TLS_CERT_FILE, TLS_KEY_FILE, LOG_LEVEL,
the MAX_* limits, the *_TIMEOUT_SECONDS and SHUTDOWN_* times: see README.md.
`;

type Flags = ConfigFlags & { workers: number };

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags === "help") {
    process.stdout.write(usage);
    return;
  }
  const logger = createLogger(logLevel(process.env.LOG_LEVEL));
  const config = loadConfig(flags, process.env);
  if (flags.workers > 1 && cluster.isPrimary) {
    runPrimary(flags.workers, logger);
    return;
  }
  keepHeapNearLiveSize();
  // Signals are handled from the start, so that one arriving while the
  // port is being bound still stops the service gracefully.
  const service = startTokenService(config, logger);
  handleSignals(service, flags, logger);
  await service;
}

/**
 * Lets V8's heap grow to at most 1.2 times the memory still in use after a
 * full collection, where V8 would otherwise let it reach up to 4 times.
 * Each call leaves short-lived garbage (HTTP/2 streams most of all) that
 * reaches the old generation; under load the heap then swells to 110 MB
 * and more over a live set near 30 MB. With the limit, full collections
 * come sooner, each as cheap (the live set is small), and the process
 * stays near 130 MB under the benchmark's HTTP/2 load instead of 200 MB.
 */
function keepHeapNearLiveSize(): void {
  setFlagsFromString("--heap-growing-percent=20");
}

/**
 * Forks the workers, restarts one that dies after it started listening,
 * and forwards signals to them. A worker that dies before it ever listened
 * (a port that is taken, say) would fail again: then all stop, exit 1.
 */
function runPrimary(workers: number, logger: Logger): void {
  logger.info({ workers }, "starting workers");
  for (let i = 0; i < workers; i++) cluster.fork();
  let stopping = false;
  const forward = (signal: NodeJS.Signals) => {
    if (signal !== "SIGHUP") stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) {
      worker?.process.kill(signal);
    }
  };
  const listened = new Set<number>();
  cluster.on("listening", (worker) => listened.add(worker.id));
  cluster.on("exit", (worker, code) => {
    const pid = worker.process.pid;
    if (!stopping && !listened.has(worker.id)) {
      logger.error({ pid, code }, "worker failed to start; stopping");
      process.exitCode = 1;
      forward("SIGTERM");
    } else if (!stopping) {
      logger.error({ pid, code }, "worker died; restarting");
      cluster.fork();
    }
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) {
      process.exit();
    }
  });
  process.on("SIGTERM", () => forward("SIGTERM"));
  process.on("SIGINT", () => forward("SIGINT"));
  process.on("SIGHUP", () => forward("SIGHUP"));
}

function handleSignals(
  starting: Promise<RunningService>,
  flags: ConfigFlags,
  logger: Logger,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    // A second SIGTERM or SIGINT (a terminal's Ctrl-C reaches every process
    // of the group) must not cut the drain short.
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: draining, then closing");
    starting
      .then((service) => service.stop())
      .then(
        () => {
          logger.info("stopped");
          exitAfterFlush(logger, 0);
        },
        (error: unknown) => {
          logger.error({ err: error }, "stop failed");
          exitAfterFlush(logger, 1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", () => {
    try {
      const next = loadConfig(flags, process.env);
      starting
        .then((service) => service.reload(next))
        .then(
          () => logger.info("configuration reloaded"),
          (error: unknown) => logger.error({ err: error }, "reload failed"),
        );
    } catch (error) {
      logger.error(
        { err: error instanceof ConfigError ? error.message : error },
        "reload refused: the new configuration is invalid; keeping the old",
      );
    }
  });
}

/** Exits once the log's buffered lines are written. */
function exitAfterFlush(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
  // Should the flush never call back (stdout is a pipe nobody reads),
  // exit all the same.
  setTimeout(() => process.exit(code), 1000);
}

const logLevels = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

/** `LOG_LEVEL`, checked; default `info`. */
function logLevel(value: string | undefined): string {
  if (value === undefined || value === "") return "info";
  if (!logLevels.includes(value)) {
    throw new ConfigError(
      "LOG_LEVEL",
      `must be one of ${logLevels.join(", ")}`,
    );
  }
  return value;
}

function parseFlags(args: string[]): Flags | "help" {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      dev: { type: "boolean" },
      host: { type: "string" },
      port: { type: "string" },
      workers: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const port = integerFlag("--port", values.port, 0, 65_535);
  const workers =
    (values.workers !== undefined
      ? integerFlag("--workers", values.workers, 1, 64)
      : integerFlag("WORKERS", process.env.WORKERS, 1, 64)) ?? 1;
  return {
    workers,
    ...(values.dev && { dev: true }),
    ...(values.config !== undefined && { config: values.config }),
    ...(values.host !== undefined && { host: values.host }),
    ...(port !== undefined && { port }),
  };
}

function integerFlag(
  name: string,
  raw: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const invalid = error instanceof ConfigError || error instanceof TypeError;
  process.stderr.write(
    invalid
      ? `livekit-token-service: invalid configuration: ${message}\n` +
          "Run with --help for the options.\n"
      : `livekit-token-service: ${message}\n`,
  );
  process.exit(invalid ? 2 : 1);
});
