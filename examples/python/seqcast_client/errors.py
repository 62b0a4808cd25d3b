"""One error type for callers: the gRPC status code, the broker's words and
its machine-readable reason (google.rpc.ErrorInfo, as every seqcast error
carries in the `grpc-status-details-bin` trailer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import grpc

# ErrorInfo.domain of the broker's errors.
ERROR_DOMAIN = "seqcast.v1"
_STATUS_DETAILS = "grpc-status-details-bin"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@dataclass(frozen=True)
class ErrorDetails:
    """What the broker said about a failure beyond its code."""

    reason: Optional[str] = None
    # RetryInfo.retry_delay, seconds: wait at least this long before retrying.
    retry_after: Optional[float] = None


class SeqcastError(Exception):
    """A failed call. `str()` is "CODE: details", e.g.
    "INVALID_ARGUMENT: room: "no good" is not a room name; ..."; `reason` is
    the broker's reason (e.g. "ROOM_LIMIT") when it gave one."""

    def __init__(self, code: grpc.StatusCode, details: str, reason: Optional[str] = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.reason = reason

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> SeqcastError:
        # Every RpcError raised by a call is also a grpc.Call with code() and details().
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return cls(code, details or "", error_details(error).reason)


def invalid_argument(details: str) -> SeqcastError:
    return SeqcastError(grpc.StatusCode.INVALID_ARGUMENT, details)


def error_details(error: Any) -> ErrorDetails:
    """The broker's ErrorInfo reason and RetryInfo delay of a failed call,
    read from its trailers (google.rpc.Status); empty for errors without them
    (a dropped connection, another server)."""
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # not a call, or no trailers yet
        return ErrorDetails()
    status = next((value for key, value in trailers if key == _STATUS_DETAILS), None)
    if not isinstance(status, bytes):
        return ErrorDetails()
    reason: Optional[str] = None
    retry_after: Optional[float] = None
    try:
        for field, detail in _fields(status):
            if field != 3 or not isinstance(detail, bytes):  # Status.details: repeated Any
                continue
            any_fields = dict(_fields(detail))
            type_url, value = any_fields.get(1), any_fields.get(2, b"")
            if not isinstance(value, bytes):
                continue
            if type_url == _ERROR_INFO.encode():
                info = dict(_fields(value))  # reason = 1, domain = 2
                if info.get(2) == ERROR_DOMAIN.encode() and isinstance(info.get(1), bytes):
                    reason = info[1].decode() or None  # type: ignore[union-attr]
            elif type_url == _RETRY_INFO.encode():
                delay = dict(_fields(dict(_fields(value)).get(1, b"")))  # Duration: seconds = 1, nanos = 2
                retry_after = int(delay.get(1, 0)) + int(delay.get(2, 0)) / 1e9
    except ValueError:
        return ErrorDetails()
    return ErrorDetails(reason, retry_after)


def _fields(data: Any) -> Iterator[tuple[int, Any]]:
    """The fields of one protobuf message: (number, int for varints, bytes
    for length-delimited). Enough for google.rpc.Status and its details,
    without generating google/rpc stubs (a generated `google` package would
    shadow protobuf's own)."""
    if not isinstance(data, bytes):
        raise ValueError("not a message")
    at = 0

    def varint() -> int:
        nonlocal at
        value, shift = 0, 0
        while True:
            if at >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while at < len(data):
        key = varint()
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            yield field, varint()
        elif wire_type == 2:
            length = varint()
            if at + length > len(data):
                raise ValueError("truncated field")
            yield field, data[at:at + length]
            at += length
        elif wire_type in (1, 5):
            at += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"wire type {wire_type}")
