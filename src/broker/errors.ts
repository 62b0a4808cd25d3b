/**
 * The one error type of the broker's domain. It carries a gRPC status code
 * (as its lower-case canonical name, so the domain does not depend on
 * Connect), a message that tells the caller what to change, and a
 * machine-readable reason (proto/seqcast/v1/errors.proto, ErrorReason)
 * that clients decide on.
 *
 * The server maps it to a ConnectError in one place (src/server/errors.ts).
 */
export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "resource_exhausted"
  | "out_of_range"
  | "failed_precondition"
  | "unavailable"
  | "internal";

/** ErrorReason of the contract, without its ERROR_REASON_ prefix. */
export type ErrorReason =
  | "INVALID_ROOM"
  | "INVALID_MESSAGE"
  | "MESSAGE_TOO_LARGE"
  | "INVALID_FILTER"
  | "INVALID_POSITION"
  | "INVALID_REQUEST"
  | "TOKEN_MISSING"
  | "TOKEN_EXPIRED"
  | "TOKEN_INVALID"
  | "ROOM_FORBIDDEN"
  | "INBOX_FORBIDDEN"
  | "ADMIN_REQUIRED"
  | "SESSION_FORBIDDEN"
  | "SESSION_NOT_FOUND"
  | "ROOM_LIMIT"
  | "RATE_LIMITED"
  | "SLOW_CONSUMER"
  | "SESSION_QUOTA"
  | "ROOM_QUOTA"
  | "BROKER_OVERLOADED"
  | "REQUEST_TOO_LARGE"
  | "NOT_DURABLE"
  | "ROOM_NOT_HELD"
  | "SHUTTING_DOWN"
  | "ENGINE_UNAVAILABLE"
  | "INTERNAL";

/** The reason of an error raised without one: the generic reason of its code. */
const DEFAULT_REASONS: Record<ErrorCode, ErrorReason> = {
  invalid_argument: "INVALID_REQUEST",
  unauthenticated: "TOKEN_INVALID",
  permission_denied: "ROOM_FORBIDDEN",
  not_found: "SESSION_NOT_FOUND",
  resource_exhausted: "RATE_LIMITED",
  out_of_range: "INVALID_POSITION",
  failed_precondition: "NOT_DURABLE",
  unavailable: "ENGINE_UNAVAILABLE",
  internal: "INTERNAL",
};

export interface BrokerErrorOptions {
  reason?: ErrorReason;
  /** Structured details for the client (ErrorInfo.metadata). */
  metadata?: Record<string, string>;
  /** The request may succeed after this long (RetryInfo). */
  retryAfterMs?: number;
  cause?: unknown;
}

export class BrokerError extends Error {
  override name = "BrokerError";
  readonly reason: ErrorReason;
  readonly metadata: Record<string, string>;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: BrokerErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options.reason ?? DEFAULT_REASONS[code];
    this.metadata = options.metadata ?? {};
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** INVALID_ARGUMENT with the reason of what was wrong (default INVALID_REQUEST). */
export const invalidArgument = (message: string, reason: ErrorReason = "INVALID_REQUEST", metadata?: Record<string, string>) =>
  new BrokerError("invalid_argument", message, { reason, metadata });

/**
 * The broker ended this stream to protect itself (its own queue, or the
 * broker-wide one): the stream is ended at once, and reset if the client
 * does not read its final status within the slow-consumer grace.
 */
export const isCutOff = (error: BrokerError | undefined): boolean =>
  error?.reason === "SLOW_CONSUMER" || error?.reason === "BROKER_OVERLOADED";
