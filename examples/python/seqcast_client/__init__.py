"""seqcast Python client: generated stubs + a reorder buffer per room, as the
TypeScript SDK does. Needs grpcio and protobuf (Debian: python3-grpcio,
python3-protobuf)."""

from .client import SeqcastClient
from .errors import SeqcastError
from .events import (Delivered, Event, PresenceChanged, RoomReset, State, StateChanged, Subscribed,
                     TransientError, Unsubscribed)
from .reorder_buffer import Deliver, Hole, Position, ReorderBuffer, Reset
from .rooms import inbox_of, is_inbox, validate_room
from .stubs import pubsub_pb2, pubsub_pb2_grpc, types_pb2
from .subscription import Subscription

__all__ = [
    "SeqcastClient", "SeqcastError", "Subscription",
    "Event", "StateChanged", "State", "Subscribed", "Delivered", "RoomReset", "PresenceChanged",
    "Unsubscribed", "TransientError",
    "ReorderBuffer", "Position", "Hole", "Deliver", "Reset",
    "validate_room", "is_inbox", "inbox_of",
    "pubsub_pb2", "pubsub_pb2_grpc", "types_pb2",
]
