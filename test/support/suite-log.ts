import { join } from "node:path";
import { pino } from "pino";
import { createLogger, type Logger } from "../../server/logger.js";

let loggers = 0;

/**
 * The logger of a service a test starts (the service's own, with its
 * redaction rules): silent, unless the suite collects
 * every log line (`LKTS_SUITE_LOG_DIR`, set by `test/support/log-scan.ts`),
 * in which case it logs everything to a file of its own there, so that the
 * scan after the suite can read every line any test made the service
 * write.
 */
export function suiteLogger(): Logger {
  const dir = process.env.LKTS_SUITE_LOG_DIR;
  if (!dir) return createLogger("silent", { write: () => {} });
  loggers += 1;
  const file = join(dir, `${process.pid}-${loggers}.log`);
  return createLogger(
    "debug",
    pino.destination({ dest: file, sync: true, mkdir: true }),
  );
}
