import { writeSync } from "node:fs";
import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";
import {
  exitWriteBudgetMs,
  TurnBatchedDestination,
} from "./log-destination.js";

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
 * for each write, and the lines of one event-loop turn go out together.
 * Note that at most 16 MiB may wait: past that, lines are dropped (and the
 * loss reported on stderr) rather than held in memory without bound.
 * Call `logger.flush(callback)` before the process exits; at exit, lines
 * still waiting are written synchronously, and a full pipe gets 2 s to
 * take them (one write already in flight, at most 16 KiB, may be lost, as
 * with any asynchronous destination).
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
 * stdout, written asynchronously with at most `maxBufferedLogBytes`
 * waiting. When stdout cannot keep up for long (a slow disk or log
 * shipper under sustained overload), lines past that are dropped rather
 * than held without bound, and the loss is reported on stderr, at most
 * once every 10 seconds.
 */
function boundedStdout(): DestinationStream {
  // Once the process is exiting, a full pipe gets exitWriteBudgetMs to take
  // the last lines; until then, a write that would block is retried.
  let exitingSince: number | undefined;
  const destination = pino.destination({
    dest: 1,
    sync: false,
    maxLength: maxBufferedLogBytes,
    retryEAGAIN: () =>
      exitingSince === undefined ||
      Date.now() - exitingSince < exitWriteBudgetMs,
  });
  let dropped = 0;
  let reported = 0;
  destination.on("drop", (data: string | Buffer) => {
    dropped += Buffer.byteLength(data);
    const now = Date.now();
    if (now - reported < 10_000) return;
    reported = now;
    process.stderr.write(
      `livekit-token-service: stdout cannot keep up; ${dropped} bytes of log lines dropped so far\n`,
    );
  });
  return new TurnBatchedDestination(destination, {
    fd: 1,
    onSyncWrite: () => {
      exitingSince ??= Date.now();
    },
    onGiveUp: (error) => {
      // Nothing is left to retry at exit (pino would try again and throw).
      destination.destroy();
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      writeSync(
        2,
        `livekit-token-service: stdout did not take the last log lines (${code}); they are lost\n`,
      );
    },
  });
}
