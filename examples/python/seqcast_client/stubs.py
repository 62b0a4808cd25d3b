"""The generated stubs (../gen/seqcast/v1), importable by their proto package.

protoc's Python output imports its siblings absolutely (`from seqcast.v1
import types_pb2`), so the directory above `seqcast/` must be on sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

_GEN = str(Path(__file__).resolve().parent.parent / "gen")
if _GEN not in sys.path:
    sys.path.append(_GEN)

try:
    import grpc  # noqa: F401  (checked here so every entry point fails the same clear way)
    from seqcast.v1 import errors_pb2, pubsub_pb2, pubsub_pb2_grpc, types_pb2
except ImportError as error:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"{error}: the seqcast Python client needs grpcio and protobuf "
        "(Debian/Ubuntu: apt-get install python3-grpcio python3-protobuf)"
    ) from error

__all__ = ["errors_pb2", "pubsub_pb2", "pubsub_pb2_grpc", "types_pb2"]
