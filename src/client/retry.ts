import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Retry policy, decided in one place: which failures are worth another
 * attempt, and how long to wait before it.
 */

/** Codes after which the same request can succeed later. */
const RETRYABLE = new Set<Code>([
  Code.Unavailable, // broker restarting or storage down
  Code.ResourceExhausted, // slow consumer cut off, or rate limited
  Code.Aborted,
  Code.DeadlineExceeded,
  Code.Unknown, // connection reset mid-stream surfaces as unknown/internal in some runtimes
  Code.Internal,
  Code.Canceled, // a stream cancelled by the peer or a dropped connection, not by us
]);

export function isRetryable(error: unknown): boolean {
  return RETRYABLE.has(ConnectError.from(error).code);
}

export interface BackoffPolicy {
  /** First delay's upper bound, ms. */
  baseMs: number;
  /** No delay exceeds this, ms. */
  maxMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 100, maxMs: 10_000 };

/**
 * Full-jitter exponential backoff: a uniform delay in [0, min(max, base·2^n)],
 * with the exponent capped so it never overflows. Spreads reconnecting
 * clients instead of letting them stampede a restarted broker.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = defaultBackoff, random = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 0), 16);
  return Math.floor(random() * Math.min(policy.maxMs, policy.baseMs * 2 ** exponent));
}

/** Resolves after `ms`, or at once when `signal` aborts (a closed subscription stops waiting). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
