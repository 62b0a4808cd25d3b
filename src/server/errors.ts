import { Code, ConnectError } from "@connectrpc/connect";
import { BrokerError, type ErrorCode } from "../broker/errors.js";

const CODES: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  out_of_range: Code.OutOfRange,
  failed_precondition: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/**
 * The one mapping from anything a handler throws to what the client sees.
 * Domain errors keep their code and message; ConnectErrors (raised by the
 * runtime: decode failures, size limits) pass through; anything else is a bug
 * and becomes INTERNAL without leaking its message.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof BrokerError) return new ConnectError(error.message, CODES[error.code], undefined, undefined, error);
  console.error("seqcast: internal error:", error);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}
