from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
PRESENCE_STATE_AWAY: PresenceState
PRESENCE_STATE_OFFLINE: PresenceState
PRESENCE_STATE_ONLINE: PresenceState
PRESENCE_STATE_UNSPECIFIED: PresenceState

class Message(_message.Message):
    __slots__ = ["attributes", "client_message_id", "content", "dependencies", "dependency_refs", "epoch", "id", "payload", "room", "same_dependencies", "sender", "sequence", "time"]
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
    DEPENDENCY_REFS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    SAME_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.ScalarMap[str, str]
    client_message_id: str
    content: str
    dependencies: _containers.RepeatedCompositeFieldContainer[RoomPosition]
    dependency_refs: bytes
    epoch: str
    id: str
    payload: bytes
    room: str
    same_dependencies: bool
    sender: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., room: _Optional[str] = ..., epoch: _Optional[str] = ..., sequence: _Optional[int] = ..., sender: _Optional[str] = ..., content: _Optional[str] = ..., payload: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., client_message_id: _Optional[str] = ..., dependencies: _Optional[_Iterable[_Union[RoomPosition, _Mapping]]] = ..., dependency_refs: _Optional[bytes] = ..., same_dependencies: bool = ...) -> None: ...

class PresenceEntry(_message.Message):
    __slots__ = ["device", "joined_at", "last_active", "session_id", "since", "state", "user"]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    device: str
    joined_at: _timestamp_pb2.Timestamp
    last_active: _timestamp_pb2.Timestamp
    session_id: str
    since: _timestamp_pb2.Timestamp
    state: PresenceState
    user: str
    def __init__(self, user: _Optional[str] = ..., session_id: _Optional[str] = ..., device: _Optional[str] = ..., state: _Optional[_Union[PresenceState, str]] = ..., joined_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_active: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RoomPosition(_message.Message):
    __slots__ = ["epoch", "room", "sequence"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    room: str
    sequence: int
    def __init__(self, room: _Optional[str] = ..., epoch: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class StreamPosition(_message.Message):
    __slots__ = ["epoch", "sequence"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    sequence: int
    def __init__(self, epoch: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class PresenceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
