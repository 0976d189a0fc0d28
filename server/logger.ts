import { writeSync } from "node:fs";
import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";
import { TurnWriter } from "./log-destination.js";

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
 * Lines are written to stdout once per event-loop turn, the turn's lines in
 * one write, and whatever waits is written when the process exits: see
 * {@link TurnWriter} for what happens when stdout cannot keep up.
 *
 * @param level the lowest level written; default `info`
 * @param destination where lines go; default stdout as described
 */
export function createLogger(
  level = "info",
  destination: DestinationStream = boundedStdout(),
): Logger {
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
    destination,
  );
}

/** Log bytes that may wait in memory for stdout; more are dropped. */
export const maxBufferedLogBytes = 16 * 1024 * 1024;

/**
 * stdout, written once per event-loop turn (see {@link TurnWriter}), with
 * at most `maxBufferedLogBytes` waiting for a full non-blocking pipe;
 * losses are reported on stderr.
 */
function boundedStdout(): DestinationStream {
  return new TurnWriter(1, {
    maxBacklogBytes: maxBufferedLogBytes,
    report: (message) => {
      try {
        writeSync(2, `livekit-token-service: ${message}\n`);
      } catch {
        // stderr is gone too.
      }
    },
  });
}
