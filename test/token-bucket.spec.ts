import { describe, expect, it } from "vitest";
import { TokenBuckets } from "../server/token-bucket.js";

describe("TokenBuckets", () => {
  it("admits a burst at once, then one token per 1/rate", () => {
    const buckets = new TokenBuckets(10, 3);
    expect([0, 0, 0].map(() => buckets.take("k", 0))).toEqual([0, 0, 0]);
    expect(buckets.take("k", 0)).toBe(100);
    expect(buckets.take("k", 60)).toBe(40);
    expect(buckets.take("k", 100)).toBe(0);
    expect(buckets.take("k", 100)).toBe(100);
  });

  it("never holds more than the burst, however long it rests", () => {
    const buckets = new TokenBuckets(10, 2);
    buckets.take("k", 0);
    const taken = [0, 0, 0].map(() => buckets.take("k", 60_000));
    expect(taken).toEqual([0, 0, 100]);
  });

  it("keeps keys apart", () => {
    const buckets = new TokenBuckets(1, 1);
    expect(buckets.take("a", 0)).toBe(0);
    expect(buckets.take("b", 0)).toBe(0);
    expect(buckets.take("a", 0)).toBe(1000);
  });

  it("gives a token back, up to the burst", () => {
    const buckets = new TokenBuckets(1, 1);
    buckets.take("k", 0);
    buckets.give("k");
    buckets.give("k");
    expect(buckets.take("k", 0)).toBe(0);
    expect(buckets.take("k", 0)).toBe(1000);
  });

  it("keeps at most maxKeys buckets, dropping full ones first", () => {
    const buckets = new TokenBuckets(1, 1, 10);
    for (let i = 0; i < 10; i++) buckets.take(`old-${i}`, 0);
    buckets.take("busy", 5_000);
    buckets.take("busy", 5_000);
    for (let i = 0; i < 100; i++) buckets.take(`new-${i}`, 5_000);
    expect(buckets.size).toBeLessThanOrEqual(10);
  });
});
