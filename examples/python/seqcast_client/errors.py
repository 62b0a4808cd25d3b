"""One error type for callers: the gRPC status code and the broker's words."""

from __future__ import annotations

import grpc


class SeqcastError(Exception):
    """A failed call. `str()` is "CODE: details", e.g.
    "INVALID_ARGUMENT: room: "no good" is not a room name; ..."."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> SeqcastError:
        # Every RpcError raised by a call is also a grpc.Call with code() and details().
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return cls(code, details or "")


def invalid_argument(details: str) -> SeqcastError:
    return SeqcastError(grpc.StatusCode.INVALID_ARGUMENT, details)
