/**
 * Token buckets in process memory, one per key: each holds up to `burst`
 * tokens, gains `ratePerSecond` tokens a second, and a request takes one.
 *
 * Exact and synchronous, unlike the fixed windows that rate-limiter-flexible
 * offers (it has no in-memory token bucket): a key refills steadily, and no
 * window boundary lets twice the burst through.
 *
 * Memory is bounded: at most `maxKeys` buckets are kept. A bucket that has
 * refilled is the same as no bucket, so full ones are dropped first; if
 * every bucket is still refilling, the oldest are dropped. Note that a
 * caller dropped that way starts again with a full bucket: under a flood of
 * distinct keys, the limit is approximate for the keys pushed out.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {
    this.perMs = ratePerSecond / 1000;
  }

  /**
   * Takes one token from `key`'s bucket.
   *
   * @returns 0 when a token was taken, else the milliseconds until one is
   *   there (at least 1).
   */
  take(key: string, nowMs = performance.now()): number {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(nowMs);
      bucket = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + (nowMs - bucket.at) * this.perMs,
      );
      bucket.at = nowMs;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs));
  }

  /** Gives one token back to `key`'s bucket, as if it was never taken. */
  give(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket !== undefined) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + 1);
    }
  }

  /** How many buckets are kept. */
  get size(): number {
    return this.buckets.size;
  }

  private evict(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      const tokens = bucket.tokens + (nowMs - bucket.at) * this.perMs;
      if (tokens >= this.burst) this.buckets.delete(key);
    }
    const target = Math.floor(this.maxKeys * 0.9);
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(key);
    }
  }
}
