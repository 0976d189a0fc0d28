import { type Logger as PinoLogger, pino } from "pino";

/** The service's structured JSON logger. */
export type Logger = PinoLogger;

/**
 * Creates the service's logger, writing JSON lines to stdout.
 *
 * Levels follow one rule each:
 * - `error`: a bug or a fault the operator must fix (a handler crash, a
 *   listener that cannot bind);
 * - `warn`: the service runs but not as configured for production
 *   (development mode), or refused something worth a look;
 * - `info`: one line per request and per lifecycle step (start, stop);
 * - `debug`: detail for development only.
 *
 * Credentials are redacted wherever they might appear.
 *
 * Lines are written to stdout asynchronously: a busy service does not wait
 * for each write, and lines that pile up meanwhile go out in one write.
 * Call `logger.flush(callback)` before the process exits.
 *
 * @param level the lowest level written; default `info`
 */
export function createLogger(level = "info"): Logger {
  return pino(
    {
      level,
      base: { service: "livekit-token-service" },
      // The service never passes headers, tokens or secrets to the logger;
      // this is a second line of defence for a field added by mistake.
      redact: {
        paths: ["authorization", "headers.authorization", "apiSecret"],
        censor: "[redacted]",
      },
    },
    pino.destination({ dest: 1, sync: false }),
  );
}
