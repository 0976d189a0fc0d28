import { createLogger, type Logger } from "../../server/logger.js";

/** A service logger whose JSON lines are kept in memory. */
export interface CapturedLog {
  /** The service's own logger (same level, base and redaction). */
  logger: Logger;
  /** Every line written so far, as written. */
  readonly text: string;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
  /** The lines with an `audit` field: one per token decision. */
  auditLines(): Record<string, unknown>[];
}

/**
 * Creates the logger the service runs with (`createLogger`, with its
 * redaction rules), writing to memory instead of stdout.
 */
export function captureLog(): CapturedLog {
  const chunks: string[] = [];
  const logger = createLogger("info", {
    write: (chunk: string) => chunks.push(chunk),
  });
  const lines = () =>
    chunks
      .join("")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    logger,
    get text() {
      return chunks.join("");
    },
    lines,
    auditLines: () => lines().filter((line) => "audit" in line),
  };
}
