import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  createRateLimiter,
  RateLimitedError,
  type RateLimiter,
} from "../server/rate-limit.js";

/** 20 per second with a burst of 3: a 150 ms window of 3 requests. */
const bucket = { ratePerSecond: 20, burst: 3 };
const windowMs = 150;

let limiter: RateLimiter | undefined;
afterEach(async () => {
  await limiter?.close();
  limiter = undefined;
});

/** Consumes once; the error if refused, `undefined` if admitted. */
async function attempt(
  rl: RateLimiter,
  keys: { caller?: string; address: string },
): Promise<unknown> {
  try {
    await rl.consume(keys);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("createRateLimiter in memory", () => {
  it("admits a burst, then refuses with resource_exhausted and a delay", async () => {
    limiter = createRateLimiter({ perCaller: bucket });
    const keys = { caller: "user:a", address: "203.0.113.7" };
    for (let i = 0; i < bucket.burst; i++) {
      await limiter.consume(keys);
    }
    const error = await attempt(limiter, keys);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toBeInstanceOf(ConnectError);
    const limited = error as RateLimitedError;
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.bucket).toBe("caller");
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(windowMs);
    expect(limited.rawMessage).toBe(
      "rate limit exceeded for caller; retry in 1s",
    );
    expect(limited.metadata.get("retry-after")).toBe("1");
    // Connect keeps the code of a ConnectError it is handed.
    expect(ConnectError.from(limited).code).toBe(Code.ResourceExhausted);
  });

  it("only rate-limit errors are instanceof RateLimitedError", () => {
    const other = new ConnectError("nope", Code.ResourceExhausted);
    expect(other).not.toBeInstanceOf(RateLimitedError);
    expect(
      new RateLimitedError("address", 2500).metadata.get("retry-after"),
    ).toBe("3");
  });

  it("refills steadily, one token per 1/rate, as a token bucket does", async () => {
    limiter = createRateLimiter({ perAddress: bucket });
    const keys = { address: "198.51.100.1" };
    for (let i = 0; i < bucket.burst; i++) {
      await limiter.consume(keys);
    }
    const refused = (await attempt(limiter, keys)) as RateLimitedError;
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused.bucket).toBe("address");
    expect(refused.retryAfterMs).toBeLessThanOrEqual(
      1000 / bucket.ratePerSecond,
    );
    await sleep(refused.retryAfterMs + 5);
    await limiter.consume(keys);
    expect(await attempt(limiter, keys)).toBeInstanceOf(RateLimitedError);
    await sleep((1000 * bucket.burst) / bucket.ratePerSecond + 10);
    for (let i = 0; i < bucket.burst; i++) {
      await limiter.consume(keys);
    }
    expect(await attempt(limiter, keys)).toBeInstanceOf(RateLimitedError);
  });

  it("keeps the long-run rate within the token-bucket bound", async () => {
    limiter = createRateLimiter({ perAddress: bucket });
    const keys = { address: "198.51.100.2" };
    const start = performance.now();
    let admitted = 0;
    while (performance.now() - start < 600) {
      if ((await attempt(limiter, keys)) === undefined) {
        admitted++;
      }
      await sleep(5);
    }
    const seconds = (performance.now() - start) / 1000;
    // A bucket admits at most burst + rate × T from a full start; timer
    // latency only lowers the count, to no less than half the rate here.
    expect(admitted).toBeLessThanOrEqual(
      bucket.burst + bucket.ratePerSecond * seconds,
    );
    expect(admitted).toBeGreaterThanOrEqual(
      (bucket.ratePerSecond * seconds) / 2,
    );
  });

  it("keeps caller and address buckets independent", async () => {
    limiter = createRateLimiter({ perCaller: bucket, perAddress: bucket });
    // One caller from three addresses uses up the caller bucket only.
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
      await limiter.consume({ caller: "user:a", address });
    }
    const byCaller = await attempt(limiter, {
      caller: "user:a",
      address: "192.0.2.4",
    });
    expect((byCaller as RateLimitedError).bucket).toBe("caller");
    // Other callers from those addresses are still admitted.
    await limiter.consume({ caller: "user:b", address: "192.0.2.1" });
    // Three callers from one address use up the address bucket only.
    for (const caller of ["user:c", "user:d", "user:e"]) {
      await limiter.consume({ caller, address: "192.0.2.9" });
    }
    const byAddress = await attempt(limiter, {
      caller: "user:f",
      address: "192.0.2.9",
    });
    expect((byAddress as RateLimitedError).bucket).toBe("address");
    await limiter.consume({ caller: "user:f", address: "192.0.2.10" });
  });

  it("gives the address token back when the caller bucket refuses", async () => {
    limiter = createRateLimiter({
      perCaller: { ratePerSecond: 1, burst: 1 },
      perAddress: { ratePerSecond: 2, burst: 2 },
    });
    const address = "192.0.2.20";
    await limiter.consume({ caller: "user:noisy", address });
    for (let i = 0; i < 5; i++) {
      const error = await attempt(limiter, { caller: "user:noisy", address });
      expect((error as RateLimitedError).bucket).toBe("caller");
    }
    // The noisy caller's refused retries did not spend the address bucket.
    await limiter.consume({ caller: "user:quiet", address });
  });

  it("applies no caller limit to requests without a caller", async () => {
    limiter = createRateLimiter({ perCaller: { ratePerSecond: 1, burst: 1 } });
    for (let i = 0; i < 10; i++) {
      await limiter.consume({ address: "192.0.2.30" });
    }
  });

  it("applies no limit when none is configured", async () => {
    limiter = createRateLimiter({});
    for (let i = 0; i < 1000; i++) {
      await limiter.consume({ caller: "user:a", address: "192.0.2.40" });
    }
  });

  it("refuses with unavailable once closed", async () => {
    limiter = createRateLimiter({ perCaller: bucket });
    await limiter.close();
    await limiter.close();
    const error = (await attempt(limiter, {
      caller: "user:a",
      address: "192.0.2.50",
    })) as ConnectError;
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.Unavailable);
  });

  it.each([
    [{ perCaller: { ratePerSecond: 0, burst: 1 } }, "perCaller.ratePerSecond"],
    [{ perCaller: { ratePerSecond: -1, burst: 1 } }, "perCaller.ratePerSecond"],
    [
      { perAddress: { ratePerSecond: Number.NaN, burst: 1 } },
      "perAddress.ratePerSecond",
    ],
    [{ perAddress: { ratePerSecond: 1, burst: 0 } }, "perAddress.burst"],
    [{ perAddress: { ratePerSecond: 1, burst: 1.5 } }, "perAddress.burst"],
    [
      { perAddress: { ratePerSecond: 1e-9, burst: 10 } },
      "perAddress: burst / ratePerSecond must be at most",
    ],
    [
      {
        perCaller: { ratePerSecond: 20, burst: 3 },
        redis: { url: "redis://127.0.0.1:1" },
      },
      "perCaller: with redis, burst / ratePerSecond must be at least 1 second",
    ],
  ])("rejects the configuration %j", (config, message) => {
    expect(() => createRateLimiter(config)).toThrow(message);
  });
});
