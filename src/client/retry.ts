import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/es/google/rpc/error_details_pb.js";
import { ErrorReason } from "../../gen/es/seqcast/v1/errors_pb.js";

/** ErrorInfo.domain of the broker's errors. */
const ERROR_DOMAIN = "seqcast.v1";

/**
 * Retry policy, decided in one place: which failures are worth another
 * attempt, and how long to wait before it.
 */

/** Codes after which the same request can succeed later, for errors without a reason (network failures, other servers). */
const RETRYABLE_CODES = new Set<Code>([
  Code.Unavailable, // broker restarting or storage down
  Code.ResourceExhausted, // slow consumer cut off, or rate limited
  Code.Aborted,
  Code.DeadlineExceeded,
  Code.Unknown, // connection reset mid-stream surfaces as unknown/internal in some runtimes
  Code.Internal,
  Code.Canceled, // a stream cancelled by the peer or a dropped connection, not by us
]);

/**
 * Reasons (proto/seqcast/v1/errors.proto) after which the same request can
 * succeed later. Every other reason is terminal: retrying would fail the same
 * way (a room limit, a forbidden room, a malformed request).
 */
const RETRYABLE_REASONS = new Set([
  "SLOW_CONSUMER",
  "RATE_LIMITED",
  "SESSION_QUOTA",
  "ROOM_QUOTA",
  "BROKER_OVERLOADED",
  "SHUTTING_DOWN",
  "ENGINE_UNAVAILABLE",
  "INTERNAL",
]);

/** The broker's machine-readable reason of an error (ErrorInfo of domain seqcast.v1), if it sent one. */
export function errorReason(error: unknown): string | undefined {
  const info = ConnectError.from(error).findDetails(ErrorInfoSchema).find((i) => i.domain === ERROR_DOMAIN);
  return info?.reason || undefined;
}

/** How long the broker asked the client to wait before retrying (RetryInfo), in ms. */
export function retryAfterMs(error: unknown): number | undefined {
  const delay = ConnectError.from(error).findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) * 1000 + Math.ceil(delay.nanos / 1_000_000) : undefined;
}

export interface RetryContext {
  /** The client can present a fresh token (its token source is a function): an expired token is worth a retry. */
  tokenRefreshable?: boolean;
}

/** Whether the same request may succeed later: decided on the broker's reason, else on the code. */
export function isRetryable(error: unknown, context: RetryContext = {}): boolean {
  const reason = errorReason(error);
  if (reason === "TOKEN_EXPIRED") return context.tokenRefreshable === true;
  if (reason !== undefined && KNOWN_REASONS.has(reason)) return RETRYABLE_REASONS.has(reason);
  return RETRYABLE_CODES.has(ConnectError.from(error).code);
}

/**
 * Whether the node, not the request, failed: another node of the same
 * deployment may serve the same call (see failover.ts). A request another
 * node would refuse alike (bad argument, permission, rate limit) is not.
 */
export function isNodeFailure(error: unknown): boolean {
  const reason = errorReason(error);
  if (reason !== undefined && KNOWN_REASONS.has(reason)) return NODE_FAILURE_REASONS.has(reason);
  return NODE_FAILURE_CODES.has(ConnectError.from(error).code);
}

const NODE_FAILURE_REASONS = new Set(["SHUTTING_DOWN", "ENGINE_UNAVAILABLE"]);
/** Without a reason: what a refused, dropped or silent connection surfaces as. */
const NODE_FAILURE_CODES = new Set<Code>([Code.Unavailable, Code.Unknown, Code.Internal, Code.Canceled, Code.DeadlineExceeded]);

/** Reasons this SDK knows; an unknown one (a newer broker) is judged by its code. */
const KNOWN_REASONS = new Set(
  Object.keys(ErrorReason)
    .filter((name) => Number.isNaN(Number(name)) && name !== "UNSPECIFIED"),
);

/** The wait before the next attempt: the backoff, but never less than what the broker asked for. */
export function retryDelay(error: unknown, attempt: number, policy: BackoffPolicy = defaultBackoff): number {
  return Math.max(backoffDelay(attempt, policy), retryAfterMs(error) ?? 0);
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
