import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { BrokerError, type ErrorReason } from "../../src/broker/errors.js";
import { backoffDelay, errorReason, isRetryable, retryAfterMs, retryDelay } from "../../src/client/retry.js";
import { errorDetails, toConnectError } from "../../src/server/errors.js";

/** An error as the broker sends it (the same mapping the server uses). */
const brokerError = (code: BrokerError["code"], reason: ErrorReason, retryAfter?: number) =>
  toConnectError(new BrokerError(code, `${reason} happened`, { reason, retryAfterMs: retryAfter }));

describe("retry policy", () => {
  it("decides on the reason, not on the code alone", () => {
    // The same code, RESOURCE_EXHAUSTED, means opposite things.
    assert.equal(isRetryable(brokerError("resource_exhausted", "SLOW_CONSUMER")), true);
    assert.equal(isRetryable(brokerError("resource_exhausted", "RATE_LIMITED", 250)), true);
    assert.equal(isRetryable(brokerError("resource_exhausted", "ROOM_LIMIT")), false);
    assert.equal(isRetryable(brokerError("resource_exhausted", "REQUEST_TOO_LARGE")), false);
    for (const reason of ["SHUTTING_DOWN", "ENGINE_UNAVAILABLE"] as const) assert.equal(isRetryable(brokerError("unavailable", reason)), true);
    for (const reason of ["INVALID_ROOM", "INVALID_FILTER", "MESSAGE_TOO_LARGE"] as const)
      assert.equal(isRetryable(brokerError("invalid_argument", reason)), false);
    assert.equal(isRetryable(brokerError("permission_denied", "INBOX_FORBIDDEN")), false);
  });

  it("retries an expired token only when the client can fetch a fresh one", () => {
    const expired = brokerError("unauthenticated", "TOKEN_EXPIRED");
    assert.equal(isRetryable(expired), false);
    assert.equal(isRetryable(expired, { tokenRefreshable: true }), true);
    assert.equal(isRetryable(brokerError("unauthenticated", "TOKEN_INVALID"), { tokenRefreshable: true }), false);
  });

  it("judges errors without a reason (network failures, unknown reasons of a newer broker) by their code", () => {
    assert.equal(isRetryable(new ConnectError("connection reset", Code.Unavailable)), true);
    assert.equal(isRetryable(new ConnectError("bad", Code.InvalidArgument)), false);
    const future = "SOMETHING_NEW" as ErrorReason;
    assert.equal(isRetryable(new ConnectError("from the future", Code.Unavailable, undefined, errorDetails(future))), true);
    assert.equal(isRetryable(new ConnectError("from the future", Code.InvalidArgument, undefined, errorDetails(future))), false);
    assert.equal(errorReason(new ConnectError("plain", Code.Internal)), undefined);
  });

  it("waits at least as long as the broker's RetryInfo asks", () => {
    const limited = brokerError("resource_exhausted", "RATE_LIMITED", 1500);
    assert.equal(errorReason(limited), "RATE_LIMITED");
    assert.equal(retryAfterMs(limited), 1500);
    for (let attempt = 0; attempt < 5; attempt++) assert.ok(retryDelay(limited, attempt, { baseMs: 10, maxMs: 100 }) >= 1500);
    assert.equal(retryAfterMs(brokerError("unavailable", "SHUTTING_DOWN")), undefined);
  });

  it("backs off with full jitter under a capped exponent", () => {
    assert.equal(backoffDelay(0, { baseMs: 100, maxMs: 10_000 }, () => 0.999), 99);
    assert.equal(backoffDelay(3, { baseMs: 100, maxMs: 10_000 }, () => 0.5), 400);
    assert.equal(backoffDelay(1000, { baseMs: 100, maxMs: 10_000 }, () => 0.999), 9990);
    assert.equal(backoffDelay(-1, { baseMs: 100, maxMs: 10_000 }, () => 0), 0);
  });
});
