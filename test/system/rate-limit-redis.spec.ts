import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRateLimiter,
  type RateLimitConfig,
  RateLimitedError,
  type RateLimiter,
} from "../../server/rate-limit.js";
import {
  type RateLimitProcessInput,
  type RateLimitProcessOutput,
  rateLimitProcessArgs,
} from "../support/rate-limit-process.js";
import {
  freePort,
  type RedisServer,
  startRedisServer,
} from "../support/redis-server.js";

const run = promisify(execFile);

/** Runs a limiter in a new Node process; its outcome per request. */
async function inOtherProcess(
  input: RateLimitProcessInput,
): Promise<RateLimitProcessOutput> {
  const { stdout } = await run(process.execPath, rateLimitProcessArgs(input), {
    cwd: new URL("../..", import.meta.url),
    timeout: 30_000,
  });
  return JSON.parse(stdout) as RateLimitProcessOutput;
}

/** Consumes once; the error if refused, `undefined` if admitted. */
async function attempt(
  limiter: RateLimiter,
  keys: { caller?: string; address: string },
): Promise<unknown> {
  try {
    await limiter.consume(keys);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("rate limits shared through a real redis-server", () => {
  let redis: RedisServer;
  /** Burst 5 in a 10 s window, long enough for two process start-ups. */
  let config: RateLimitConfig;
  beforeAll(async () => {
    redis = await startRedisServer();
    config = {
      perCaller: { ratePerSecond: 0.5, burst: 5 },
      redis: { url: redis.url, keyPrefix: `lkts-test-${randomUUID()}` },
    };
  });
  afterAll(() => redis?.stop());

  it("gives two processes one budget: A takes 3 of 5, B gets 2", async () => {
    const keys = { caller: "user:shared", address: "192.0.2.1" };
    const a = await inOtherProcess({ config, keys, count: 3 });
    expect(a).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    const b = await inOtherProcess({ config, keys, count: 3 });
    expect(b.slice(0, 2)).toEqual([{ ok: true }, { ok: true }]);
    const refused = b[2];
    expect(refused).toMatchObject({
      ok: false,
      code: Code.ResourceExhausted,
    });
    if (refused?.ok !== false) throw new Error("unreachable");
    expect(refused.message).toMatch(
      /^rate limit exceeded for caller; retry in \d+s$/,
    );
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it("admits exactly the burst when two processes race", async () => {
    const keys = { caller: "user:racing", address: "192.0.2.2" };
    const [a, b] = await Promise.all([
      inOtherProcess({ config, keys, count: 5 }),
      inOtherProcess({ config, keys, count: 5 }),
    ]);
    const admitted = [...a, ...b].filter((r) => r.ok).length;
    expect(admitted).toBe(5);
  });

  it("keeps one expiring key per bucket under the prefix", async () => {
    const limiter = createRateLimiter(config);
    try {
      await limiter.consume({ caller: "user:keys", address: "192.0.2.3" });
    } finally {
      await limiter.close();
    }
    const client = new Redis(redis.url);
    try {
      const key = `${config.redis?.keyPrefix}:caller:user:keys`;
      expect(await client.get(key)).toBe("1");
      const ttl = await client.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10_000);
    } finally {
      client.disconnect();
    }
  });
});

describe("rate limits when redis is down", () => {
  it("fail closed with unavailable, and recover when redis is back", async () => {
    const redis = await startRedisServer();
    const limiter = createRateLimiter({
      perAddress: { ratePerSecond: 1, burst: 100 },
      redis: { url: redis.url, keyPrefix: `lkts-test-${randomUUID()}` },
    });
    let restarted: RedisServer | undefined;
    try {
      const keys = { address: "192.0.2.10" };
      await limiter.consume(keys);
      await redis.stop();

      const error = await attempt(limiter, keys);
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).not.toBeInstanceOf(RateLimitedError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      expect((error as ConnectError).rawMessage).toBe(
        "rate limiter unavailable",
      );

      // ioredis reconnects on its own; requests are admitted again.
      restarted = await startRedisServer(redis.port);
      const deadline = Date.now() + 10_000;
      let last: unknown = error;
      while (last !== undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        last = await attempt(limiter, keys);
      }
      expect(last).toBeUndefined();
    } finally {
      await limiter.close();
      await redis.stop();
      await restarted?.stop();
    }
  });

  it("fail closed with unavailable when redis was never reachable", async () => {
    const port = await freePort();
    const limiter = createRateLimiter({
      perCaller: { ratePerSecond: 1, burst: 5 },
      redis: { url: `redis://127.0.0.1:${port}` },
    });
    try {
      const started = Date.now();
      const error = await attempt(limiter, {
        caller: "user:a",
        address: "192.0.2.11",
      });
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      // It waited for a first connection, but not for long.
      expect(Date.now() - started).toBeLessThan(5000);
      expect((error as ConnectError).cause).toBeInstanceOf(Error);
    } finally {
      await limiter.close();
    }
  });
});
