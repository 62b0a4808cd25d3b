import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

/** A detail as ConnectError takes it (the type is not exported by @connectrpc/connect). */
type OutgoingDetail = NonNullable<ConstructorParameters<typeof ConnectError>[3]>[number];
import { BrokerError, type ErrorCode, type ErrorReason } from "../broker/errors.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/es/google/rpc/error_details_pb.js";
import { rootLogger } from "../log/logger.js";

/** ErrorInfo.domain of every seqcast error (proto/seqcast/v1/errors.proto). */
export const ERROR_DOMAIN = "seqcast.v1";

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
 * Reasons of errors the Connect runtime raises before our code runs (a body
 * over the read limit, an undecodable message): by their code.
 */
const RUNTIME_REASONS: Partial<Record<Code, ErrorReason>> = {
  [Code.ResourceExhausted]: "REQUEST_TOO_LARGE",
  [Code.InvalidArgument]: "INVALID_REQUEST",
  [Code.Unimplemented]: "INVALID_REQUEST",
  [Code.Internal]: "INTERNAL",
  [Code.Unauthenticated]: "TOKEN_INVALID",
};

/** The google.rpc details of an error: ErrorInfo always, RetryInfo when a wait helps. */
export function errorDetails(reason: ErrorReason, metadata: Record<string, string> = {}, retryAfterMs?: number): OutgoingDetail[] {
  const details: OutgoingDetail[] = [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }) }];
  if (retryAfterMs !== undefined && retryAfterMs > 0)
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, {
        retryDelay: { seconds: BigInt(Math.floor(retryAfterMs / 1000)), nanos: (retryAfterMs % 1000) * 1_000_000 },
      }),
    });
  return details;
}

/**
 * The one mapping from anything a handler throws to what the client sees.
 * Domain errors keep their code and message and carry their reason;
 * ConnectErrors raised by the runtime (decode failures, size limits) pass
 * through with a reason added; anything else is a bug and becomes INTERNAL
 * without leaking its message.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) {
    if (error.details.length > 0) return error;
    const reason = RUNTIME_REASONS[error.code];
    if (!reason) return error;
    return new ConnectError(error.rawMessage, error.code, error.metadata, errorDetails(reason), error.cause ?? error);
  }
  if (error instanceof BrokerError)
    return new ConnectError(error.message, CODES[error.code], undefined, errorDetails(error.reason, error.metadata, error.retryAfterMs), error);
  // A bug: the one log line that carries a stack trace.
  rootLogger().error({ err: error }, "internal error");
  return new ConnectError("internal error", Code.Internal, undefined, errorDetails("INTERNAL"), error);
}
