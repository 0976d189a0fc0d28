/**
 * A separate Node process that draws on a Redis-backed rate limit, for the
 * test that replicas share one budget.
 *
 * Run as `node --import tsx test/support/rate-limit-process.ts '<json>'`
 * with a {@link RateLimitProcessInput}; prints one JSON line, a
 * {@link RateLimitProcessOutput}.
 */
import { fileURLToPath } from "node:url";
import { ConnectError } from "@connectrpc/connect";
import {
  createRateLimiter,
  type RateLimitConfig,
  RateLimitedError,
} from "../../server/rate-limit.js";

/** What the process is told to do. */
export interface RateLimitProcessInput {
  config: RateLimitConfig;
  keys: { caller?: string; address: string };
  /** How many requests to make, one after another. */
  count: number;
}

/** The outcome of each request, in order. */
export type RateLimitProcessOutput = (
  | { ok: true }
  | { ok: false; code: number; message: string; retryAfterMs?: number }
)[];

const thisFile = fileURLToPath(import.meta.url);

/** The command line that runs this file in a new Node process. */
export function rateLimitProcessArgs(input: RateLimitProcessInput): string[] {
  return ["--import", "tsx", thisFile, JSON.stringify(input)];
}

async function main(json: string): Promise<void> {
  const input = JSON.parse(json) as RateLimitProcessInput;
  const limiter = createRateLimiter(input.config);
  const results: RateLimitProcessOutput = [];
  try {
    for (let i = 0; i < input.count; i++) {
      try {
        await limiter.consume(input.keys);
        results.push({ ok: true });
      } catch (error) {
        if (!(error instanceof ConnectError)) {
          throw error;
        }
        results.push({
          ok: false,
          code: error.code,
          message: error.rawMessage,
          ...(error instanceof RateLimitedError
            ? { retryAfterMs: error.retryAfterMs }
            : {}),
        });
      }
    }
  } finally {
    await limiter.close();
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

const arg = process.argv[2];
if (arg !== undefined && process.argv[1] === thisFile) {
  await main(arg);
}
