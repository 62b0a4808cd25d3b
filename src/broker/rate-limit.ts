/**
 * Per-key token buckets: `rate` tokens per second, at most `burst` saved up.
 * A full bucket carries no information, so idle keys are forgotten.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Takes one token; returns 0 when allowed, else the ms until one is available. */
  take(key: string, nowMs: number): number {
    if (this.rate <= 0) return 0;
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, atMs: nowMs };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.atMs) * this.rate) / 1000);
    bucket.atMs = nowMs;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / this.rate);
  }

  /** Drops buckets that have refilled completely. */
  prune(nowMs: number): void {
    for (const [key, bucket] of this.buckets)
      if (bucket.tokens + ((nowMs - bucket.atMs) * this.rate) / 1000 >= this.burst) this.buckets.delete(key);
  }
}
