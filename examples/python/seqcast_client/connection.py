"""A gRPC channel to a seqcast broker that authenticates every call."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import grpc

_CHANNEL_OPTIONS = [
    # Half-open connections (a broker host that vanished) are found by HTTP/2
    # PINGs instead of waiting for TCP to give up. Node answers PINGs by itself.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # After a failed connection attempt grpcio fails calls at once until its
    # own reconnect backoff expires, which grows to 2 minutes by default: a
    # broker back after a restart could look down that long. Bounded like our
    # retry policy (retry.Backoff).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 10_000),
]


def parse_target(url: str) -> tuple[str, bool]:
    """`127.0.0.1:8080`, `http://127.0.0.1:8080` or `https://host` -> (gRPC target, TLS?)."""
    tls = url.startswith("https://")
    target = url.split("://", 1)[1] if "://" in url else url
    target = target.rstrip("/")
    if ":" not in target.rsplit("]", 1)[-1]:
        target += ":443" if tls else ":8080"
    return target, tls


class _CallDetails(NamedTuple):
    method: str
    timeout: Optional[float]
    metadata: Optional[Sequence[Tuple[str, str]]]
    credentials: Optional[grpc.CallCredentials]
    wait_for_ready: Optional[bool]
    compression: Any


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call, unary and streaming.
    (An interceptor rather than access_token_call_credentials, which grpcio
    only allows on TLS channels; local brokers speak h2c.)"""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [m for m in (details.metadata or []) if m[0] != "authorization"]
        return _CallDetails(
            details.method,
            details.timeout,
            [*metadata, self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)


def open_channel(url: str, token: str | None) -> grpc.Channel:
    """A channel to the broker at `url`; with a token, every call carries it."""
    target, tls = parse_target(url)
    if tls:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=_CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
    if token is None:
        return channel
    return grpc.intercept_channel(channel, _BearerToken(token))
