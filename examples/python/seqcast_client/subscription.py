"""A live session over one Subscribe stream, kept alive across failures.

Mirrors src/client/subscription.ts. Per room it runs a ReorderBuffer, so the
application sees each room's messages in order and exactly once; holes are
filled from GetHistory after a short delay; loss and lineage changes surface
as RoomReset events, never as silent gaps. When the stream fails with a
retryable code it reconnects with full-jitter backoff and resumes every room
with `since` = the last position it delivered; a terminal code closes it.

Threads: one reads the stream, short-lived timers fill holes. Events go to
a queue the application reads with get() or events(), in order per room.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, Mapping, Optional

import grpc

from .errors import SeqcastError
from .events import (Delivered, Event, PresenceChanged, PresenceKind, RoomReset, State, StateChanged, Subscribed,
                     TransientError, Unsubscribed)
from .reorder_buffer import Deliver, Output, Position, ReorderBuffer
from .errors import error_details
from .retry import Backoff, backoff_delay, is_retryable
from .rooms import validate_room
from .stubs import pubsub_pb2, pubsub_pb2_grpc, types_pb2
from .watchdog import HeartbeatWatchdog

Buffer = ReorderBuffer[types_pb2.Message]

_PRESENCE_KINDS: dict[int, PresenceKind] = {
    pubsub_pb2.PRESENCE_EVENT_KIND_JOIN: "join",
    pubsub_pb2.PRESENCE_EVENT_KIND_LEAVE: "leave",
    pubsub_pb2.PRESENCE_EVENT_KIND_UPDATE: "update",
}


class Subscription:
    def __init__(
        self,
        stub: pubsub_pb2_grpc.PubSubServiceStub,
        rooms: Iterable[str] = (),
        *,
        since: Optional[Mapping[str, Position]] = None,
        filters: Optional[Mapping[str, str]] = None,
        device: str = "python",
        gap_fill_delay: float = 0.2,
        backoff: Backoff = Backoff(),
        missed_heartbeats: int = 3,
        call_timeout: float = 10.0,
    ) -> None:
        self._stub = stub
        # Insertion-ordered set of the rooms held (also across reconnects).
        self._rooms: dict[str, None] = {validate_room(room): None for room in rooms}
        self._filters = dict(filters or {})
        self._buffers: dict[str, Buffer] = {room: ReorderBuffer(pos) for room, pos in (since or {}).items()}
        self._device = device
        self._gap_fill_delay = gap_fill_delay
        self._backoff = backoff
        self._missed_heartbeats = missed_heartbeats
        self._call_timeout = call_timeout

        self._lock = threading.RLock()
        self._events: queue.Queue[Event] = queue.Queue()
        self._state = State.CONNECTING
        self._closed = threading.Event()
        self._call: Optional[grpc.Call] = None
        self._session_id: Optional[str] = None
        self._previous_session_id = ""
        self._user: Optional[str] = None
        # Rooms named in the Subscribe request of the current stream.
        self._requested: set[str] = set()
        self._gap_timers: dict[str, threading.Timer] = {}
        self._filling: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="seqcast-subscription", daemon=True)

    # ---- for the application --------------------------------------------

    def start(self) -> Subscription:
        self._thread.start()
        return self

    @property
    def state(self) -> State:
        return self._state

    @property
    def session_id(self) -> Optional[str]:
        """The live session's id, while connected."""
        return self._session_id

    @property
    def user(self) -> Optional[str]:
        """The identity the broker attached to the session (the token's subject)."""
        return self._user

    def positions(self) -> dict[str, Position]:
        """Last delivered position per room: what a resume starts from."""
        with self._lock:
            return {room: buffer.position for room, buffer in self._buffers.items()}

    def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None when none came within `timeout` seconds."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self) -> Iterator[Event]:
        """Every event until (and including) the change to CLOSED."""
        while True:
            event = self._events.get()
            yield event
            if isinstance(event, StateChanged) and event.new is State.CLOSED:
                return

    def join(self, room: str, filter: Optional[str] = None) -> None:
        """Adds a room to the live session and every future reconnect. A
        Subscribed event, then its messages, follow on the stream."""
        validate_room(room)
        with self._lock:
            self._rooms[room] = None
            if filter is not None:
                self._filters[room] = filter
            session_id = self._session_id
            wanted = self._room_subscription(room)
        if session_id is None:
            return  # the next Subscribe (or the session start) takes it
        try:
            self._stub.Join(pubsub_pb2.JoinRequest(session_id=session_id, rooms=[wanted]), timeout=self._call_timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return  # the session ended meanwhile; the reconnect subscribes the room
            with self._lock:
                self._rooms.pop(room, None)
                self._filters.pop(room, None)
            raise SeqcastError.from_rpc(error) from None

    def leave(self, room: str) -> None:
        """Removes a room; none of its messages is delivered afterwards."""
        with self._lock:
            self._rooms.pop(room, None)
            self._filters.pop(room, None)
            self._buffers.pop(room, None)
            timer = self._gap_timers.pop(room, None)
            session_id = self._session_id
        if timer:
            timer.cancel()
        if session_id is None:
            return
        try:
            self._stub.Leave(pubsub_pb2.LeaveRequest(session_id=session_id, rooms=[room]), timeout=self._call_timeout)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise SeqcastError.from_rpc(error) from None

    def close(self, timeout: float = 2.0) -> None:
        """Ends the session for good; the broker sends presence leaves at once."""
        with self._lock:
            session_id, rooms = self._session_id, list(self._rooms)
        if session_id and rooms:
            # Say goodbye, so the leaves are not held back for the reconnect grace period.
            try:
                self._stub.Leave(pubsub_pb2.LeaveRequest(session_id=session_id, rooms=rooms), timeout=1.0)
            except grpc.RpcError:
                pass
        with self._lock:
            self._closed.set()
            for timer in self._gap_timers.values():
                timer.cancel()
            self._gap_timers.clear()
            call = self._call
            self._set_state(State.CLOSED, "closed by the application")
        if call is not None:
            call.cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- the connection loop ----------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._lock:
                if self._closed.is_set():
                    return
                requested = list(self._rooms)
                self._requested = set(requested)
                request = pubsub_pb2.SubscribeRequest(
                    rooms=[self._room_subscription(room) for room in requested],
                    device=self._device,
                    previous_session_id=self._previous_session_id,
                )
                # wait_for_ready: while the broker is down the call waits for the
                # channel to connect again (grpcio keeps trying), rather than failing
                # at once with the last connection error. Found by restarting a broker
                # under a live subscription.
                call = self._stub.Subscribe(request, wait_for_ready=True)
                self._call = call
            watchdog = HeartbeatWatchdog(call.cancel, self._missed_heartbeats)
            try:
                for response in call:
                    watchdog.feed()
                    for event in response.events:
                        if event.WhichOneof("event") == "session_started":
                            attempt = 0
                            watchdog.arm(event.session_started.heartbeat_interval_ms / 1000)
                        self._handle(event)
                code, details = grpc.StatusCode.UNAVAILABLE, "the broker ended the stream"
                broker_reason: Optional[str] = None
                wait_at_least = 0.0
            except grpc.RpcError as error:
                code, details = error.code(), error.details() or ""
                said = error_details(error)
                broker_reason, wait_at_least = said.reason, said.retry_after or 0.0
            finally:
                watchdog.stop()
            with self._lock:
                self._session_id = None
                self._call = None
                if self._closed.is_set():
                    return
                if watchdog.fired:
                    # Our own cancel of a silent stream: a dead connection, retried like any other.
                    code, details, broker_reason = grpc.StatusCode.UNAVAILABLE, "no heartbeat from the broker", None
                # The broker's reason decides: a room limit is RESOURCE_EXHAUSTED like a
                # slow consumer, but reconnecting would be refused the same way forever.
                if not is_retryable(code, broker_reason):
                    self._closed.set()
                    self._set_state(State.CLOSED, f"{code.name}: {details}", code, broker_reason)
                    return
                self._set_state(State.RECONNECTING, f"{code.name}: {details}", code, broker_reason)
            self._closed.wait(max(backoff_delay(attempt, self._backoff), wait_at_least))
            attempt += 1

    def _room_subscription(self, room: str) -> pubsub_pb2.RoomSubscription:
        buffer = self._buffers.get(room)
        wanted = pubsub_pb2.RoomSubscription(room=room, filter=self._filters.get(room, ""))
        if buffer is not None:
            wanted.since.epoch = buffer.position.epoch
            wanted.since.sequence = buffer.position.sequence
        return wanted

    # ---- stream events ------------------------------------------------------

    def _handle(self, event: pubsub_pb2.SubscribeEvent) -> None:
        kind = event.WhichOneof("event")
        with self._lock:
            if kind == "session_started":
                started = event.session_started
                self._session_id = self._previous_session_id = started.session_id
                self._user = started.user
                self._set_state(State.CONNECTED, "session started")
                late = [room for room in self._rooms if room not in self._requested]
                if late:
                    # Joined while this stream's request was on its way. Not on the
                    # reader thread: a blocking call here would stall the stream.
                    threading.Thread(target=self._join_late, args=(late,), daemon=True).start()
            elif kind == "subscribed":
                self._on_subscribed(event.subscribed)
            elif kind == "message":
                message = event.message
                buffer = self._buffers.get(message.room)
                if buffer is not None:  # buffers exist exactly for the rooms held
                    self._output(message.room, buffer.push(message))
                    self._schedule_gap_fill(message.room)
            elif kind == "presence":
                self._presence(event.presence)
            elif kind == "presence_changes":
                # Several changes of one room at once (a busy turn of the broker): each in order.
                for change in event.presence_changes.changes:
                    self._presence(change)
            elif kind == "unsubscribed":
                self._emit(Unsubscribed(event.unsubscribed.room))
            elif kind == "watermark":
                mark = event.watermark
                buffer = self._buffers.get(mark.room)
                if buffer is not None:
                    self._output(mark.room, buffer.skip_through(Position(mark.epoch, mark.sequence), mark.after_sequence))
            elif kind == "reset":
                reset = event.reset
                buffer = self._buffers.get(reset.room)
                if buffer is not None:
                    self._output(reset.room, buffer.rebase(_position(reset.position), False))
            # heartbeat: only feeds the watchdog

    def _on_subscribed(self, subscribed: pubsub_pb2.Subscribed) -> None:
        room = subscribed.room
        if room not in self._rooms or not subscribed.HasField("position"):
            return
        position = _position(subscribed.position)
        buffer = self._buffers.get(room)
        if buffer is None:
            # A first subscription starts where the replay (if any) starts, else live.
            start = _position(subscribed.resumed_from) if subscribed.recovered else position
            self._buffers[room] = ReorderBuffer(start)
        self._emit(Subscribed(room, position, subscribed.recovered))
        if buffer is not None:
            self._output(room, buffer.rebase(position, subscribed.recovered))

    def _join_late(self, rooms: list[str]) -> None:
        for room in rooms:
            try:
                self.join(room)
            except SeqcastError as error:
                self._emit(TransientError(error.code, f"join {room}: {error.details}"))

    # ---- gap filling --------------------------------------------------------

    def _schedule_gap_fill(self, room: str) -> None:
        buffer = self._buffers.get(room)
        if buffer is None or buffer.missing() is None or room in self._gap_timers or room in self._filling:
            return
        if self._closed.is_set():
            return
        # A short delay: most holes are reordering on the wire and close by themselves.
        timer = threading.Timer(self._gap_fill_delay, self._fill_gap, args=(room,))
        timer.daemon = True
        self._gap_timers[room] = timer
        timer.start()

    def _fill_gap(self, room: str) -> None:
        with self._lock:
            self._gap_timers.pop(room, None)
            buffer = self._buffers.get(room)
            hole = buffer.missing() if buffer is not None else None
            if buffer is None or hole is None or self._closed.is_set():
                return
            self._filling.add(room)
            filter = self._filters.get(room, "")
        page: Optional[pubsub_pb2.GetHistoryResponse] = None
        try:
            page = self._stub.GetHistory(
                pubsub_pb2.GetHistoryRequest(
                    room=room, after_sequence=hole.after, before_sequence=hole.before, limit=1000, filter=filter
                ),
                timeout=self._call_timeout,
            )
        except grpc.RpcError as error:
            self._emit(TransientError(error.code(), f"filling a gap in {room}: {error.details()}"))
        with self._lock:
            self._filling.discard(room)
            if page is not None and self._buffers.get(room) is buffer:
                self._output(room, buffer.fill(page.messages, page.position.epoch, page.first_sequence))
                # With a filter the broker returned only matches: the rest of a
                # fully covered range was filtered, not lost.
                covered = not page.has_more and page.position.epoch == hole.epoch and page.first_sequence <= hole.after + 1
                if filter and covered:
                    self._output(room, buffer.skip_through(Position(hole.epoch, hole.before - 1)))
            self._schedule_gap_fill(room)

    # ---- events ---------------------------------------------------------------

    def _output(self, room: str, outputs: list[Output[types_pb2.Message]]) -> None:
        for out in outputs:
            if isinstance(out, Deliver):
                self._emit(Delivered(room, out.item))
            else:
                self._emit(RoomReset(room, out.reason, out.position, out.skipped))

    def _set_state(self, new: State, reason: str, code: Optional[grpc.StatusCode] = None,
                   error_reason: Optional[str] = None) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._emit(StateChanged(old, new, reason, code, error_reason))

    def _presence(self, presence: pubsub_pb2.PresenceEvent) -> None:
        name = _PRESENCE_KINDS.get(presence.kind)
        if name and presence.room in self._rooms:
            self._emit(PresenceChanged(presence.room, name, presence.entry))

    def _emit(self, event: Event) -> None:
        self._events.put(event)


def _position(position: types_pb2.StreamPosition) -> Position:
    return Position(position.epoch, position.sequence)
