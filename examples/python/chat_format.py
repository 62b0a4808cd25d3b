"""How chat.py prints what it receives (the same lines as `seqcast chat`)."""

from __future__ import annotations

import re

from seqcast_client import PresenceChanged, RoomReset, is_inbox, pubsub_pb2, types_pb2

STATE_NAMES = {
    types_pb2.PRESENCE_STATE_ONLINE: "online",
    types_pb2.PRESENCE_STATE_AWAY: "away",
    types_pb2.PRESENCE_STATE_OFFLINE: "offline",
}

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters from other users must not drive our terminal: show them escaped."""
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r"}.get(m[0], f"\\u{ord(m[0]):04x}"), text)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def message_line(room: str, message: types_pb2.Message, current: str | None) -> str:
    """`[seq] sender: content` in the current room, `[room#seq] ...` in another, `[dm] ...` for a DM."""
    body = printable(message.content) if message.content or not message.payload else f"<{plural(len(message.payload), 'byte')} of payload>"
    if is_inbox(room):
        return f"[dm] {printable(message.sender)}: {body}"
    where = str(message.sequence) if room == current else f"{room}#{message.sequence}"
    return f"[{where}] {printable(message.sender)}: {body}"


def reset_line(reset: RoomReset) -> str:
    if reset.reason == "lost":
        return f"! {reset.room}: {plural(reset.skipped, 'message')} lost (history trimmed)"
    return f"! {reset.room}: history was cleared (new epoch)"


def presence_line(event: PresenceChanged) -> str:
    user = printable(event.entry.user)
    if event.kind == "join":
        return f"* {user} joined {event.room}"
    if event.kind == "leave":
        return f"* {user} left {event.room}"
    return f"* {user} is {STATE_NAMES.get(event.entry.state, 'here')} in {event.room}"


def who_lines(room: str, presence: pubsub_pb2.GetPresenceResponse) -> list[str]:
    lines = [f"* {room}: {plural(presence.user_count, 'user')}, {plural(presence.session_count, 'session')}"]
    for entry in presence.entries:
        device = f"{printable(entry.device)}, " if entry.device else ""
        lines.append(f"*   {printable(entry.user)} ({device}{STATE_NAMES.get(entry.state, 'here')})")
    return lines
