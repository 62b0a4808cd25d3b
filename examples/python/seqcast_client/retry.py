"""Retry policy, decided in one place (as src/client/retry.ts): which failures
are worth another attempt, and how long to wait before it. The broker's
reason decides (a room limit is RESOURCE_EXHAUSTED like a slow consumer, but
asking again cannot help); the code decides only for errors without one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Optional

import grpc

from .errors import error_details
from .stubs import errors_pb2

# Codes after which the same request can succeed later, for errors without a
# reason. A refused or dropped connection surfaces as UNAVAILABLE in grpcio.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,  # broker restarting, storage down, connection lost
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,  # the call may have got through: retries carry the same id
        grpc.StatusCode.ABORTED,
    }
)

# Reasons (proto/seqcast/v1/errors.proto) after which the same request can
# succeed later; every other known reason is terminal.
RETRYABLE_REASONS = frozenset({"SLOW_CONSUMER", "RATE_LIMITED", "SHUTTING_DOWN", "ENGINE_UNAVAILABLE", "INTERNAL"})

# Reasons this client knows; an unknown one (a newer broker) is judged by its code.
_PREFIX = "ERROR_REASON_"
KNOWN_REASONS = frozenset(
    name[len(_PREFIX):] for name in errors_pb2.ErrorReason.keys() if name != f"{_PREFIX}UNSPECIFIED"
)


def is_retryable(code: grpc.StatusCode, reason: Optional[str] = None) -> bool:
    if reason is not None and reason in KNOWN_REASONS:
        return reason in RETRYABLE_REASONS
    return code in RETRYABLE_CODES


def is_retryable_error(error: Any) -> bool:
    """is_retryable for a failed call (a grpc.RpcError that is a grpc.Call)."""
    return is_retryable(error.code(), error_details(error).reason)


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff bounds, in seconds."""

    base: float = 0.1
    cap: float = 10.0


def backoff_delay(attempt: int, policy: Backoff = Backoff(), rand: Callable[[], float] = random.random) -> float:
    """A uniform delay in [0, min(cap, base * 2**attempt)], the exponent capped
    so it never overflows: spreads reconnecting clients instead of letting
    them stampede a restarted broker."""
    exponent = min(max(attempt, 0), 16)
    return rand() * min(policy.cap, policy.base * 2.0**exponent)


def retry_delay(error: Any, attempt: int, policy: Backoff = Backoff()) -> float:
    """The wait before the next attempt: the backoff, but never less than what
    the broker asked for (RetryInfo, e.g. of a rate limit)."""
    return max(backoff_delay(attempt, policy), error_details(error).retry_after or 0.0)
