"""SeqcastClient: the unary RPCs a chat needs, and subscriptions."""

from __future__ import annotations

import threading
import uuid
from typing import Callable, Iterable, Mapping, Optional, TypeVar

import grpc

from .connection import open_channel
from .errors import SeqcastError
from .reorder_buffer import Position
from .retry import Backoff, is_retryable_error, retry_delay
from .stubs import pubsub_pb2, pubsub_pb2_grpc
from .subscription import Subscription

R = TypeVar("R")


class SeqcastClient:
    """One channel to a broker; every call carries `authorization: Bearer <token>`.
    Failed calls raise SeqcastError (code and the broker's message)."""

    def __init__(self, url: str, token: Optional[str], *, timeout: float = 10.0,
                 publish_attempts: int = 5, backoff: Backoff = Backoff()) -> None:
        self.channel = open_channel(url, token)
        # The raw generated stub, for what this class does not wrap.
        self.stub = pubsub_pb2_grpc.PubSubServiceStub(self.channel)
        self._timeout = timeout
        self._publish_attempts = publish_attempts
        self._backoff = backoff
        self._closing = threading.Event()

    def wait_ready(self, timeout: float) -> bool:
        """Whether a connection to the broker comes up within `timeout`
        seconds; False as soon as the first attempt fails (e.g. refused)."""
        settled = threading.Event()
        ready: list[bool] = []

        def watch(state: grpc.ChannelConnectivity) -> None:
            if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                         grpc.ChannelConnectivity.SHUTDOWN):
                ready.append(state is grpc.ChannelConnectivity.READY)
                settled.set()

        self.channel.subscribe(watch, try_to_connect=True)
        try:
            return settled.wait(timeout) and ready[0]
        finally:
            self.channel.unsubscribe(watch)

    def publish(self, room: str, content: str, *, payload: bytes = b"",
                attributes: Optional[Mapping[str, str]] = None,
                client_message_id: Optional[str] = None) -> pubsub_pb2.PublishResponse:
        """Appends a message to `room` (or an inbox `@user`) and returns its
        position. Retryable failures are retried with the same
        client_message_id, so the broker stores the message once
        (a retry of a stored one answers duplicate=True)."""
        request = pubsub_pb2.PublishRequest(
            room=room, content=content, payload=payload, attributes=dict(attributes or {}),
            client_message_id=client_message_id or str(uuid.uuid4()),
        )
        attempt = 0
        while True:
            try:
                return self.stub.Publish(request, timeout=self._timeout)
            except grpc.RpcError as error:
                attempt += 1
                if not is_retryable_error(error) or attempt >= self._publish_attempts:
                    raise SeqcastError.from_rpc(error) from None
                delay = retry_delay(error, attempt, self._backoff)
            if self._closing.wait(delay):
                raise SeqcastError(grpc.StatusCode.CANCELLED, "client closed")

    def history(self, room: str, *, after: int = 0, before: int = 0, limit: int = 0,
                backward: bool = False, filter: str = "") -> pubsub_pb2.GetHistoryResponse:
        """Retained messages with after < sequence < before (0: unbounded),
        ascending; `backward` keeps the newest `limit` of the range."""
        direction = pubsub_pb2.HISTORY_DIRECTION_BACKWARD if backward else pubsub_pb2.HISTORY_DIRECTION_FORWARD
        request = pubsub_pb2.GetHistoryRequest(room=room, after_sequence=after, before_sequence=before,
                                               limit=limit, direction=direction, filter=filter)
        return self._unary(self.stub.GetHistory, request)

    def presence(self, room: str) -> pubsub_pb2.GetPresenceResponse:
        return self._unary(self.stub.GetPresence, pubsub_pb2.GetPresenceRequest(room=room))

    def clear_history(self, room: str) -> Position:
        """Admin only: deletes the room's history; returns the new epoch's position."""
        response = self._unary(self.stub.ClearHistory, pubsub_pb2.ClearHistoryRequest(room=room))
        return Position(response.position.epoch, response.position.sequence)

    def subscribe(self, rooms: Iterable[str] = (), *, since: Optional[Mapping[str, Position]] = None,
                  filters: Optional[Mapping[str, str]] = None, device: str = "python",
                  gap_fill_delay: float = 0.2) -> Subscription:
        """A started Subscription on `rooms`, resuming each room in `since`
        after that position; `filters` are CEL expressions per room,
        evaluated in the broker. The subscription retries with this client's
        backoff policy."""
        return Subscription(self.stub, rooms, since=since, filters=filters, device=device,
                            gap_fill_delay=gap_fill_delay, backoff=self._backoff,
                            call_timeout=self._timeout).start()

    def close(self) -> None:
        self._closing.set()
        self.channel.close()

    def __enter__(self) -> SeqcastClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unary(self, method: Callable[..., R], request: object) -> R:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise SeqcastError.from_rpc(error) from None
