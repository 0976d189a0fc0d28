import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import {
  type RateLimiterAbstract,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import { TokenBuckets } from "./token-bucket.js";

/**
 * One token bucket: a sustained rate and a burst.
 *
 * Both must be positive; `burst` is a whole number of requests.
 */
export interface BucketConfig {
  /** Requests per second sustained over time; may be fractional (0.5). */
  ratePerSecond: number;
  /** Requests a fresh bucket admits at once; an integer, at least 1. */
  burst: number;
}

/**
 * Rate limits for token requests.
 *
 * Each limit is a token bucket, approximated with rate-limiter-flexible's
 * fixed windows; see {@link createRateLimiter} for how close it is.
 */
export interface RateLimitConfig {
  /** Per caller identity. Absent: no per-caller limit. */
  perCaller?: BucketConfig;
  /** Per client address. Absent: no per-address limit. */
  perAddress?: BucketConfig;
  /**
   * Keep the buckets in Redis, so that every replica of the service draws
   * on one budget. Absent: in process memory, one budget per process.
   */
  redis?: {
    /** `redis://[user:password@]host:port[/db]` or `rediss://…`. */
    url: string;
    /** Prefix of every Redis key. Default `lkts`. */
    keyPrefix?: string;
  };
}

/** Which bucket refused a request. */
export type RateLimitBucket = "caller" | "address";

/** Rate limits applied to token requests. */
export interface RateLimiter {
  /**
   * Takes one token from each applicable bucket: the address bucket, then,
   * if `caller` is given, the caller bucket. A limit not configured is not
   * applied. A request refused by the caller bucket gives its address token
   * back, so one busy caller does not use up the budget of everyone behind
   * the same address.
   *
   * @throws RateLimitedError (`Code.ResourceExhausted`) when a bucket is
   *   empty, with the delay after which a retry can succeed.
   * @throws ConnectError `Code.Unavailable` when the limits cannot be
   *   checked: Redis is unreachable or too slow, or the limiter is closed.
   *   The request is refused, not let through: see {@link createRateLimiter}.
   */
  consume(keys: { caller?: string; address: string }): Promise<void>;
  /**
   * Closes the Redis connection, if any. Idempotent. Later calls to
   * `consume` throw `Code.Unavailable`.
   */
  close(): Promise<void>;
}

/**
 * A request refused by a rate limit: a `ConnectError` with
 * `Code.ResourceExhausted` and the message
 * `rate limit exceeded for <bucket>; retry in <n>s`, which names the bucket
 * but never the caller or the address.
 *
 * The retry delay is on the error twice:
 * - {@link retryAfterMs}, in milliseconds, for the service's own use;
 * - `metadata.get("retry-after")`, in whole seconds rounded up (at least
 *   1), the value of an HTTP `Retry-After` header. Connect sends error
 *   metadata as response headers (gRPC: trailers), so it reaches clients
 *   as a `Retry-After` header without further work.
 *
 * `instanceof ConnectError` holds, and `name` stays `ConnectError`, which
 * connect-es relies on to keep the code.
 */
export class RateLimitedError extends ConnectError {
  /** The bucket that was empty. */
  readonly bucket: RateLimitBucket;
  /** Milliseconds until the bucket admits a request again; at least 1. */
  readonly retryAfterMs: number;

  /**
   * @param bucket the bucket that was empty.
   * @param retryAfterMs the wait before a retry can succeed; rounded up to
   *   a whole millisecond, at least 1.
   */
  constructor(bucket: RateLimitBucket, retryAfterMs: number) {
    const ms = Math.max(1, Math.ceil(retryAfterMs));
    const seconds = Math.ceil(ms / 1000);
    super(
      `rate limit exceeded for ${bucket}; retry in ${seconds}s`,
      Code.ResourceExhausted,
      { "retry-after": String(seconds) },
    );
    this.bucket = bucket;
    this.retryAfterMs = ms;
  }

  /**
   * ConnectError's own `instanceof` check accepts any error shaped like a
   * ConnectError; this one asks the prototype chain, so that only rate-limit
   * errors are `instanceof RateLimitedError`.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(RateLimitedError, value);
  }
}

/** Default prefix of the Redis keys. */
export const defaultRedisKeyPrefix = "lkts";

/** How long a Redis command may take before the request fails closed. */
const redisCommandTimeoutMs = 1000;

/**
 * How long `consume` waits for the first connection to Redis, so requests
 * that arrive while the service starts are not refused. Once connected,
 * a lost connection fails requests at once.
 */
const redisFirstConnectWaitMs = 2000;

/** The longest window rate-limiter-flexible can time (setTimeout's limit). */
const maxWindowSeconds = 2_147_483;

/**
 * Creates the rate limits described by `config`.
 *
 * **In memory** (no `redis`, the default): exact token buckets, checked
 * synchronously, one budget per process; see {@link TokenBuckets}.
 *
 * **In Redis, a token bucket approximated.** rate-limiter-flexible counts requests in
 * fixed windows that start at a key's first request; it has no token
 * bucket. Each bucket here is one such window of `burst` points lasting
 * `burst / ratePerSecond` seconds: a fresh key admits `burst` requests at
 * once, as a bucket does, and the long-run rate is exactly
 * `ratePerSecond`. Measured from a key's first request, no interval of
 * length T admits more than `burst + ratePerSecond × T`, the token-bucket
 * bound. Where it differs from a true token bucket:
 * - tokens come back all at once when the window ends, not one every
 *   `1 / ratePerSecond` seconds, so an emptied bucket waits up to
 *   `burst / ratePerSecond` (the retry delay reports the exact wait);
 * - a client that spends its burst at the very end of one window and again
 *   at the start of the next gets up to `2 × burst` in quick succession,
 *   where a bucket would allow `burst`.
 *
 * `BurstyRateLimiter` (a rate window plus a separate burst window) was
 * considered and not used: its burst allowance refills on its own clock
 * whether or not the rate was exceeded, so the long-run rate is the sum of
 * both windows' rates, above `ratePerSecond` unless the burst window is so
 * long that a burst, once spent, rarely comes back. For a limit that caps
 * spending, an exact long-run rate with a bounded overshoot was preferred.
 *
 * **Redis** keeps the windows in Redis (`RateLimiterRedis`, one atomic Lua
 * script per request, ioredis client), shared by every process that uses
 * the same Redis and key prefix; keys are `<prefix>:caller:<caller>` and
 * `<prefix>:address:<address>` and expire with their window. Redis timing
 * is in whole seconds, so the window is rounded up: `ceil(burst / rate)`
 * seconds of `burst` points. The burst is kept and the effective rate may
 * be lower than configured (never higher): rate 3, burst 10 gives 10 per 4
 * seconds, 2.5/s. A window under one second cannot be rounded without
 * cutting the rate by more than half, so `burst / ratePerSecond < 1` with
 * Redis is a configuration error. Over-limit keys are also remembered in
 * process memory until their window ends, so a client that keeps retrying
 * costs no Redis round trips.
 *
 * **Redis unreachable: fail closed.** When Redis cannot be reached, or does
 * not answer within 1 s, `consume` throws `Code.Unavailable` (message
 * `rate limiter unavailable`, the Redis error as `cause`) and the request
 * is refused. The limits guard a paid LiveKit project; letting requests
 * through unchecked would remove that guard exactly when something is
 * wrong. rate-limiter-flexible's `insuranceLimiter` (a per-process memory
 * limiter used while Redis is down) was considered and not used: it
 * silently multiplies the budget by the number of replicas, and again by
 * every restart, since a new process starts with full buckets, and it
 * hides the outage. Refusing affects only new tokens: tokens already
 * issued keep working, and `Unavailable` tells clients to retry with
 * backoff. ioredis keeps reconnecting, and requests succeed again as soon
 * as Redis is back. Requests that arrive before the first connection wait
 * for it, up to 2 s.
 *
 * @throws Error if a limit has a `ratePerSecond` that is not a positive
 *   number, a `burst` that is not a positive integer, a window
 *   (`burst / ratePerSecond`) over 2,147,483 s, or, with Redis, under 1 s.
 */
export function createRateLimiter(config: RateLimitConfig): RateLimiter {
  const store = config.redis;
  const caller =
    config.perCaller && checkBucket("perCaller", config.perCaller, !!store);
  const address =
    config.perAddress && checkBucket("perAddress", config.perAddress, !!store);
  if (!caller && !address) {
    let closed = false;
    return {
      async consume() {
        if (closed) {
          throw closedError();
        }
      },
      async close() {
        closed = true;
      },
    };
  }
  if (!store) {
    return memoryRateLimiter(config.perCaller, config.perAddress);
  }
  const backend = redisBackend(store);
  const limiters = {
    caller: caller && backend.limiter("caller", caller),
    address: address && backend.limiter("address", address),
  };
  let closed = false;

  async function take(
    bucket: RateLimitBucket,
    limiter: RateLimiterAbstract,
    key: string,
  ): Promise<void> {
    try {
      await limiter.consume(key, 1);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        throw new RateLimitedError(bucket, error.msBeforeNext);
      }
      throw backend.unavailable(error);
    }
  }

  return {
    async consume(keys) {
      if (closed) {
        throw closedError();
      }
      await backend.ready();
      if (limiters.address) {
        await take("address", limiters.address, keys.address);
      }
      if (limiters.caller && keys.caller !== undefined) {
        try {
          await take("caller", limiters.caller, keys.caller);
        } catch (error) {
          // Best effort: the address token is returned unless Redis failed.
          await limiters.address?.reward(keys.address, 1).catch(() => {});
          throw error;
        }
      }
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      await backend.close();
    },
  };
}

/** A window of `points` requests lasting `seconds`. */
interface Window {
  points: number;
  seconds: number;
}

/**
 * Checks a bucket's configuration and turns it into a fixed window.
 *
 * @throws Error naming the setting and the value.
 */
function checkBucket(
  name: string,
  bucket: BucketConfig,
  redis: boolean,
): Window {
  const { ratePerSecond, burst } = bucket;
  if (
    typeof ratePerSecond !== "number" ||
    !Number.isFinite(ratePerSecond) ||
    ratePerSecond <= 0
  ) {
    throw new Error(
      `${name}.ratePerSecond must be a positive number, got ${String(ratePerSecond)}`,
    );
  }
  if (!Number.isSafeInteger(burst) || burst < 1) {
    throw new Error(
      `${name}.burst must be a positive integer, got ${String(burst)}`,
    );
  }
  const seconds = burst / ratePerSecond;
  if (seconds > maxWindowSeconds) {
    throw new Error(
      `${name}: burst / ratePerSecond must be at most ${maxWindowSeconds} seconds, got ${seconds}`,
    );
  }
  if (!redis) {
    return { points: burst, seconds };
  }
  if (seconds < 1) {
    throw new Error(
      `${name}: with redis, burst / ratePerSecond must be at least 1 second (redis windows are whole seconds), got ${seconds}; raise burst to at least ratePerSecond`,
    );
  }
  return { points: burst, seconds: Math.ceil(seconds) };
}

/** Where the windows are kept. */
interface Backend {
  limiter(bucket: RateLimitBucket, window: Window): RateLimiterAbstract;
  /** Resolves when requests can be checked, or it is time to stop waiting. */
  ready(): Promise<void>;
  /** The error for a request that could not be checked. */
  unavailable(cause: unknown): ConnectError;
  close(): Promise<void>;
}

/**
 * Rate limits in process memory: exact token buckets, checked
 * synchronously (see {@link TokenBuckets}).
 */
function memoryRateLimiter(
  perCaller: BucketConfig | undefined,
  perAddress: BucketConfig | undefined,
): RateLimiter {
  const callers =
    perCaller && new TokenBuckets(perCaller.ratePerSecond, perCaller.burst);
  const addresses =
    perAddress && new TokenBuckets(perAddress.ratePerSecond, perAddress.burst);
  let closed = false;
  const admitted = Promise.resolve();
  return {
    consume(keys) {
      if (closed) return Promise.reject(closedError());
      const now = performance.now();
      const addressWait = addresses ? addresses.take(keys.address, now) : 0;
      if (addressWait > 0) {
        return Promise.reject(new RateLimitedError("address", addressWait));
      }
      if (callers && keys.caller !== undefined) {
        const callerWait = callers.take(keys.caller, now);
        if (callerWait > 0) {
          addresses?.give(keys.address);
          return Promise.reject(new RateLimitedError("caller", callerWait));
        }
      }
      return admitted;
    },
    async close() {
      closed = true;
    },
  };
}

function redisBackend(config: NonNullable<RateLimitConfig["redis"]>): Backend {
  const prefix = config.keyPrefix ?? defaultRedisKeyPrefix;
  // rate-limiter-flexible's advice: no offline queue, so commands fail at
  // once while disconnected instead of piling up until Redis returns.
  const client = new Redis(config.url, {
    enableOfflineQueue: false,
    lazyConnect: false,
    commandTimeout: redisCommandTimeoutMs,
  });
  let lastError: unknown;
  // Without a listener ioredis prints every connection error; the latest is
  // kept as the cause of the next `Unavailable` instead.
  client.on("error", (error: unknown) => {
    lastError = error;
  });
  let connected = false;
  const firstConnection = new Promise<void>((resolve) => {
    client.once("ready", () => {
      connected = true;
      resolve();
    });
  });
  return {
    limiter: (bucket, window) =>
      new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${prefix}:${bucket}`,
        points: window.points,
        duration: window.seconds,
        rejectIfRedisNotReady: true,
        inMemoryBlockOnConsumed: window.points + 1,
      }),
    async ready() {
      if (connected) {
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        firstConnection,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, redisFirstConnectWaitMs);
        }),
      ]);
      clearTimeout(timer);
    },
    unavailable: (cause) =>
      new ConnectError(
        "rate limiter unavailable",
        Code.Unavailable,
        undefined,
        undefined,
        client.status === "ready" ? cause : (lastError ?? cause),
      ),
    async close() {
      if (client.status === "ready") {
        try {
          await client.quit();
          return;
        } catch {
          // Fall through to a hard disconnect.
        }
      }
      client.disconnect();
    },
  };
}

function closedError(): ConnectError {
  return new ConnectError("rate limiter closed", Code.Unavailable);
}
