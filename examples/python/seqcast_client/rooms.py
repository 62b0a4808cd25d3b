"""Room names, checked on the client with the broker's rules (src/broker/validate.ts).

A bad room a Subscription accepted would go into the Subscribe request of
every reconnect and end the whole session each time: reject it up front.
"""

from __future__ import annotations

import re

from .errors import invalid_argument

MAX_ROOM_LENGTH = 128
_ROOM_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_USER_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def is_inbox(room: str) -> bool:
    """`@alice` is Alice's private inbox."""
    return room.startswith("@")


def inbox_of(user: str) -> str:
    return f"@{user}"


def validate_room(room: str) -> str:
    """Returns the room, or raises SeqcastError(INVALID_ARGUMENT) saying why not."""
    if not room:
        raise invalid_argument("room: must not be empty")
    if len(room) > MAX_ROOM_LENGTH:
        raise invalid_argument(f"room: {len(room)} characters, at most {MAX_ROOM_LENGTH} allowed")
    if is_inbox(room):
        if not _USER_RE.fullmatch(room[1:]):
            raise invalid_argument(f'room: "{room}" is not an inbox; use \'@\' and a user name (e.g. "@alice")')
    elif not _ROOM_RE.fullmatch(room):
        raise invalid_argument(
            f'room: "{room}" is not a room name; use letters, digits, \'_\' and \'-\' '
            'in dot-separated segments (e.g. "sports.football")'
        )
    return room
