/**
 * The one error type of the broker's domain. It carries a gRPC status code
 * (as its lower-case canonical name, so the domain does not depend on
 * Connect) and a message that tells the caller what to change.
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

export class BrokerError extends Error {
  override name = "BrokerError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidArgument = (message: string) => new BrokerError("invalid_argument", message);
