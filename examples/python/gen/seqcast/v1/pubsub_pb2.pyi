from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seqcast.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
HISTORY_DIRECTION_BACKWARD: HistoryDirection
HISTORY_DIRECTION_FORWARD: HistoryDirection
HISTORY_DIRECTION_UNSPECIFIED: HistoryDirection
PRESENCE_EVENT_KIND_JOIN: PresenceEventKind
PRESENCE_EVENT_KIND_LEAVE: PresenceEventKind
PRESENCE_EVENT_KIND_UNSPECIFIED: PresenceEventKind
PRESENCE_EVENT_KIND_UPDATE: PresenceEventKind

class AckPosition(_message.Message):
    __slots__ = ["position", "room"]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    position: _types_pb2.StreamPosition
    room: str
    def __init__(self, room: _Optional[str] = ..., position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ["acks", "session_id"]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[AckPosition]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., acks: _Optional[_Iterable[_Union[AckPosition, _Mapping]]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ClearHistoryRequest(_message.Message):
    __slots__ = ["room"]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: str
    def __init__(self, room: _Optional[str] = ...) -> None: ...

class ClearHistoryResponse(_message.Message):
    __slots__ = ["position"]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: _types_pb2.StreamPosition
    def __init__(self, position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ["after_sequence", "before_sequence", "direction", "filter", "limit", "room"]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    before_sequence: int
    direction: HistoryDirection
    filter: str
    limit: int
    room: str
    def __init__(self, room: _Optional[str] = ..., after_sequence: _Optional[int] = ..., before_sequence: _Optional[int] = ..., limit: _Optional[int] = ..., direction: _Optional[_Union[HistoryDirection, str]] = ..., filter: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ["first_sequence", "has_more", "messages", "position"]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    first_sequence: int
    has_more: bool
    messages: _containers.RepeatedCompositeFieldContainer[_types_pb2.Message]
    position: _types_pb2.StreamPosition
    def __init__(self, messages: _Optional[_Iterable[_Union[_types_pb2.Message, _Mapping]]] = ..., position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ..., first_sequence: _Optional[int] = ..., has_more: bool = ...) -> None: ...

class GetPresenceRequest(_message.Message):
    __slots__ = ["room"]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: str
    def __init__(self, room: _Optional[str] = ...) -> None: ...

class GetPresenceResponse(_message.Message):
    __slots__ = ["entries", "session_count", "user_count"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SESSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    USER_COUNT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.PresenceEntry]
    session_count: int
    user_count: int
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.PresenceEntry, _Mapping]]] = ..., user_count: _Optional[int] = ..., session_count: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["time"]
    TIME_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    def __init__(self, time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ["rooms", "session_id"]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    rooms: _containers.RepeatedCompositeFieldContainer[RoomSubscription]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., rooms: _Optional[_Iterable[_Union[RoomSubscription, _Mapping]]] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ["rooms", "session_id"]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    rooms: _containers.RepeatedScalarFieldContainer[str]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ...) -> None: ...

class LeaveResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class PresenceChanges(_message.Message):
    __slots__ = ["changes", "room"]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[PresenceEvent]
    room: str
    def __init__(self, room: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[PresenceEvent, _Mapping]]] = ...) -> None: ...

class PresenceEvent(_message.Message):
    __slots__ = ["entry", "kind", "room"]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    entry: _types_pb2.PresenceEntry
    kind: PresenceEventKind
    room: str
    def __init__(self, room: _Optional[str] = ..., kind: _Optional[_Union[PresenceEventKind, str]] = ..., entry: _Optional[_Union[_types_pb2.PresenceEntry, _Mapping]] = ...) -> None: ...

class PublishBatchRequest(_message.Message):
    __slots__ = ["messages"]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[PublishRequest]
    def __init__(self, messages: _Optional[_Iterable[_Union[PublishRequest, _Mapping]]] = ...) -> None: ...

class PublishBatchResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PublishResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PublishResult, _Mapping]]] = ...) -> None: ...

class PublishError(_message.Message):
    __slots__ = ["code", "message", "metadata", "reason", "retry_after_ms"]
    class MetadataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    metadata: _containers.ScalarMap[str, str]
    reason: str
    retry_after_ms: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ["attributes", "client_message_id", "content", "dependencies", "payload", "room"]
    class AttributesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.ScalarMap[str, str]
    client_message_id: str
    content: str
    dependencies: _containers.RepeatedCompositeFieldContainer[_types_pb2.RoomPosition]
    payload: bytes
    room: str
    def __init__(self, room: _Optional[str] = ..., content: _Optional[str] = ..., payload: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ..., client_message_id: _Optional[str] = ..., dependencies: _Optional[_Iterable[_Union[_types_pb2.RoomPosition, _Mapping]]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ["duplicate", "id", "position", "time"]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    id: str
    position: _types_pb2.StreamPosition
    time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., duplicate: bool = ...) -> None: ...

class PublishResult(_message.Message):
    __slots__ = ["client_message_id", "error", "published"]
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    client_message_id: str
    error: PublishError
    published: PublishResponse
    def __init__(self, client_message_id: _Optional[str] = ..., published: _Optional[_Union[PublishResponse, _Mapping]] = ..., error: _Optional[_Union[PublishError, _Mapping]] = ...) -> None: ...

class PublishStreamRequest(_message.Message):
    __slots__ = ["messages"]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[PublishRequest]
    def __init__(self, messages: _Optional[_Iterable[_Union[PublishRequest, _Mapping]]] = ...) -> None: ...

class PublishStreamResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PublishResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PublishResult, _Mapping]]] = ...) -> None: ...

class RoomReset(_message.Message):
    __slots__ = ["position", "room"]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    position: _types_pb2.StreamPosition
    room: str
    def __init__(self, room: _Optional[str] = ..., position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ...) -> None: ...

class RoomSubscription(_message.Message):
    __slots__ = ["filter", "room", "since"]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    filter: str
    room: str
    since: _types_pb2.StreamPosition
    def __init__(self, room: _Optional[str] = ..., since: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ..., filter: _Optional[str] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ["heartbeat_interval_ms", "session_id", "user"]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_ms: int
    session_id: str
    user: str
    def __init__(self, session_id: _Optional[str] = ..., user: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ["session_id", "state"]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: _types_pb2.PresenceState
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.PresenceState, str]] = ...) -> None: ...

class SetPresenceResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SubscribeEvent(_message.Message):
    __slots__ = ["heartbeat", "message", "presence", "presence_changes", "reset", "session_started", "subscribed", "unsubscribed", "watermark"]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_CHANGES_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    SESSION_STARTED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    heartbeat: Heartbeat
    message: _types_pb2.Message
    presence: PresenceEvent
    presence_changes: PresenceChanges
    reset: RoomReset
    session_started: SessionStarted
    subscribed: Subscribed
    unsubscribed: Unsubscribed
    watermark: Watermark
    def __init__(self, session_started: _Optional[_Union[SessionStarted, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., message: _Optional[_Union[_types_pb2.Message, _Mapping]] = ..., presence: _Optional[_Union[PresenceEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., unsubscribed: _Optional[_Union[Unsubscribed, _Mapping]] = ..., reset: _Optional[_Union[RoomReset, _Mapping]] = ..., watermark: _Optional[_Union[Watermark, _Mapping]] = ..., presence_changes: _Optional[_Union[PresenceChanges, _Mapping]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ["compact_dependencies", "device", "previous_session_id", "rooms", "subscriber"]
    COMPACT_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    compact_dependencies: bool
    device: str
    previous_session_id: str
    rooms: _containers.RepeatedCompositeFieldContainer[RoomSubscription]
    subscriber: str
    def __init__(self, rooms: _Optional[_Iterable[_Union[RoomSubscription, _Mapping]]] = ..., device: _Optional[str] = ..., subscriber: _Optional[str] = ..., previous_session_id: _Optional[str] = ..., compact_dependencies: bool = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ["events"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SubscribeEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[SubscribeEvent, _Mapping]]] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ["pattern", "position", "present", "recovered", "resumed_from", "room"]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    position: _types_pb2.StreamPosition
    present: _containers.RepeatedCompositeFieldContainer[_types_pb2.PresenceEntry]
    recovered: bool
    resumed_from: _types_pb2.StreamPosition
    room: str
    def __init__(self, room: _Optional[str] = ..., position: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ..., recovered: bool = ..., resumed_from: _Optional[_Union[_types_pb2.StreamPosition, _Mapping]] = ..., pattern: _Optional[str] = ..., present: _Optional[_Iterable[_Union[_types_pb2.PresenceEntry, _Mapping]]] = ...) -> None: ...

class Unsubscribed(_message.Message):
    __slots__ = ["room"]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: str
    def __init__(self, room: _Optional[str] = ...) -> None: ...

class Watermark(_message.Message):
    __slots__ = ["after_sequence", "epoch", "room", "sequence"]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    epoch: str
    room: str
    sequence: int
    def __init__(self, room: _Optional[str] = ..., epoch: _Optional[str] = ..., sequence: _Optional[int] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class PresenceEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class HistoryDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
