"""Retry policy, decided in one place (as src/client/retry.ts): which failures
are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import grpc

# Codes after which the same request can succeed later. A refused or dropped
# connection surfaces as UNAVAILABLE in grpcio. Everything else is terminal:
# INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, ... will
# not change by asking again.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,  # broker restarting, storage down, connection lost
        # The contract says a subscriber cut off as too slow may resume; for
        # Publish it is the rate limit ("retry in N ms").
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,  # the call may have got through: retries carry the same id
        grpc.StatusCode.ABORTED,
    }
)


def is_retryable(code: grpc.StatusCode) -> bool:
    return code in RETRYABLE


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
