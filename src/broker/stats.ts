/**
 * What the broker counts for operators (src/server/metrics.ts exposes it as
 * Prometheus metrics). Plain numbers, bumped on the hot path at the cost of
 * an addition: a scrape reads them, nothing is labelled or looked up per
 * event.
 */
export interface BrokerStats {
  /** Publishes by outcome. */
  published: { stored: number; duplicate: number; rejected: number; rateLimited: number; failed: number };
  /** Messages handed to a subscriber's stream (one per subscriber of each message). */
  sent: number;
  /** Messages a subscription's filter removed. */
  filtered: number;
  /** Filters that failed to evaluate on a message (counted in `filtered` too). */
  filterErrors: number;
  /** Messages queued for a subscriber and dropped when its session ended with an error (a slow consumer's cut-off, mostly). */
  dropped: number;
  /** Sessions cut off as slow consumers. */
  slowConsumers: number;
  /** Engine calls that failed (each became UNAVAILABLE for its caller). */
  engineErrors: number;
}

export function newBrokerStats(): BrokerStats {
  return {
    published: { stored: 0, duplicate: 0, rejected: 0, rateLimited: 0, failed: 0 },
    sent: 0,
    filtered: 0,
    filterErrors: 0,
    dropped: 0,
    slowConsumers: 0,
    engineErrors: 0,
  };
}

/** Upper bounds (seconds) of the latency buckets: 100 µs to 10 s. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * A latency histogram as Prometheus keeps one (cumulative buckets, sum,
 * count), recorded with a loop over 16 bounds and three additions: cheap
 * enough for once per publish.
 */
export class LatencyHistogram {
  /** Observations per bucket, not cumulative; the last slot is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  /** `n` observations of `seconds` (a batch of publishes that committed together). */
  observe(seconds: number, n = 1): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]! += n;
    this.sum += seconds * n;
    this.count += n;
  }
}
