"""What a Subscription tells its application (mirrors src/client/subscription-types.ts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, Optional, Union

import grpc

from .reorder_buffer import Position, ResetReason
from .stubs import types_pb2


class State(str, Enum):
    """Lifecycle of a subscription (one session that survives reconnects):

    connecting --session started--> connected --stream lost--> reconnecting
         |                              ^                          |
         |                              +------session started-----+
         +------- terminal error or close() ------> closed <-------+
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class StateChanged:
    old: State
    new: State
    reason: str
    # The failure that caused the change (None for a session start or close()).
    code: Optional[grpc.StatusCode] = None
    # The broker's machine-readable reason of that failure (e.g. "ROOM_LIMIT"), if it gave one.
    error_reason: Optional[str] = None


@dataclass(frozen=True)
class Subscribed:
    """The broker (re)started the room at `position`; after a reconnect,
    `recovered` says whether it replays everything missed (else a RoomReset
    follows)."""

    room: str
    position: Position
    recovered: bool


@dataclass(frozen=True)
class Delivered:
    """The room's next message: in order, exactly once."""

    room: str
    message: types_pb2.Message


@dataclass(frozen=True)
class RoomReset:
    """Messages were lost ("lost": `skipped` of them, history trimmed) or the
    room's lineage changed ("epoch_changed": history cleared, new epoch).
    Whatever the application derived from the room before is stale; delivery
    continues after `position`."""

    room: str
    reason: ResetReason
    position: Position
    skipped: int


PresenceKind = Literal["join", "leave", "update"]


@dataclass(frozen=True)
class PresenceChanged:
    room: str
    kind: PresenceKind
    entry: types_pb2.PresenceEntry


@dataclass(frozen=True)
class Unsubscribed:
    room: str


@dataclass(frozen=True)
class TransientError:
    """A problem the subscription recovers from by itself (e.g. a failed gap fill)."""

    code: grpc.StatusCode
    details: str


Event = Union[StateChanged, Subscribed, Delivered, RoomReset, PresenceChanged, Unsubscribed, TransientError]
