#!/usr/bin/env python3
"""A small seqcast chat on the Python client.

    /usr/bin/python3 examples/python/chat.py --url 127.0.0.1:8080 --token $TOKEN --room general

Lines go to the current room. Commands: /join ROOM, /leave, /history [N],
/who, @user TEXT (a direct message), /quit. Direct messages to you arrive
because your own inbox (@you) is joined at start.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from typing import Optional, TextIO

try:
    from seqcast_client import (Delivered, PresenceChanged, RoomReset, SeqcastClient, SeqcastError, State,
                                StateChanged, Subscribed, TransientError, inbox_of, is_inbox, validate_room)
except ImportError as missing:
    sys.exit(f"! {missing}")
from chat_format import message_line, presence_line, printable, reset_line, who_lines

JOIN_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
HELP = "commands: /join ROOM, /leave [ROOM], /history [N], /who, @user TEXT, /quit"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="seqcast chat (Python client)")
    parser.add_argument("--url", default=os.environ.get("SEQCAST_URL", "127.0.0.1:8080"),
                        help="broker address, host:port or http(s)://host:port (env SEQCAST_URL)")
    parser.add_argument("--token", default=os.environ.get("SEQCAST_TOKEN"),
                        help="access token (env SEQCAST_TOKEN); on the broker's machine: node bin/seqcast.js token --user NAME")
    parser.add_argument("--room", help="room to join at start")
    parser.add_argument("--device", default="python", help="device label shown in presence")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("no token: pass --token or set SEQCAST_TOKEN (on the broker's machine: node bin/seqcast.js token --user alice)")
    return args


class Chat:
    def __init__(self, client: SeqcastClient, args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
        self.client = client
        self.args = args
        self.out = out
        self.print_lock = threading.Lock()
        self.sub = client.subscribe([], device=args.device)
        self.joined: list[str] = []  # in join order
        self.current: Optional[str] = None
        # Rooms waiting for their first Subscribed event (set by the printer thread).
        self.announced: dict[str, threading.Event] = {}
        self.own_sessions: set[str] = set()
        self.ready = threading.Event()  # connected, or closed for good
        self.inputs: queue.Queue[Optional[str]] = queue.Queue()  # lines; None = stop
        self.exit_code = 0

    def print(self, line: str) -> None:
        with self.print_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def run(self) -> int:
        threading.Thread(target=self.show_events, name="printer", daemon=True).start()
        if not self.ready.wait(JOIN_TIMEOUT) or self.sub.state is State.CLOSED:
            return self.exit_code or self.fail("! no session: the broker did not answer")
        user = self.sub.user or ""
        self.print(f"* seqcast chat: {user} at {self.args.url} ({HELP})")
        try:
            self.join(inbox_of(user), make_current=False)
            if self.args.room:
                self.join(self.args.room)
        except SeqcastError as error:
            self.print(f"! {error}")
        threading.Thread(target=self.read_input, name="stdin", daemon=True).start()
        try:
            while (line := self.inputs.get()) is not None:
                try:
                    self.handle(line.rstrip("\r\n"))
                except SeqcastError as error:
                    self.print(f"! {error}")
        except KeyboardInterrupt:
            pass
        return self.exit_code

    def fail(self, line: str) -> int:
        self.print(line)
        self.exit_code = 1
        return 1

    def read_input(self) -> None:
        for line in sys.stdin:
            self.inputs.put(line)
        self.inputs.put(None)  # end of input = /quit, after the pending lines

    # ---- input ------------------------------------------------------------

    def handle(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        if text.startswith("@"):
            user, _, body = text[1:].partition(" ")
            if not user or not body.strip():
                return self.print("! usage: @user TEXT")
            result = self.client.publish(inbox_of(user), body.strip())
            return self.print(f"[dm → {printable(user)}] {printable(body.strip())}" + (" (already sent)" if result.duplicate else ""))
        if not text.startswith("/"):
            if self.current is None:
                return self.print("! join a room first: /join ROOM")
            # Nothing printed now: the message shows when it comes back on the stream, in order.
            self.client.publish(self.current, line)
            return
        command, *args = text[1:].split()
        if command == "join" and len(args) == 1:
            self.join(args[0])
        elif command == "leave" and len(args) <= 1:
            self.leave(args[0] if args else self.current)
        elif command == "history" and len(args) <= 1:
            self.history(args[0] if args else "20")
        elif command == "who" and not args:
            self.who()
        elif command in ("quit", "exit"):
            self.inputs.put(None)
        elif command == "help":
            self.print(f"* {HELP}")
        else:
            self.print(f"! unknown command or arguments: {printable(text)} ({HELP})")

    def join(self, room: str, make_current: bool = True) -> None:
        if room in self.joined:
            self.current = room
            return self.print(f"* now in {room}")
        validate_room(room)
        subscribed = self.announced.setdefault(room, threading.Event())
        self.sub.join(room)
        self.joined.append(room)
        if make_current:
            self.current = room
        # Wait until the room is live, so a line sent right after /join comes back on the stream.
        if not subscribed.wait(JOIN_TIMEOUT):
            self.print(f"! {room}: not subscribed yet (still trying)")

    def leave(self, room: Optional[str]) -> None:
        if room is None or room not in self.joined:
            return self.print("! usage: /leave [ROOM] (a joined room)")
        self.sub.leave(room)
        self.joined.remove(room)
        self.announced.pop(room, None)
        if self.current == room:
            self.current = next((r for r in reversed(self.joined) if not is_inbox(r)), None)
        self.print(f"* left {room}" + (f", now in {self.current}" if self.current else ""))

    def history(self, count: str) -> None:
        if self.current is None:
            return self.print("! join a room first: /join ROOM")
        if not count.isdigit() or not 1 <= int(count) <= 1000:
            return self.print(f"! /history: N must be a number from 1 to 1000, not {printable(count)}")
        page = self.client.history(self.current, limit=int(count), backward=True)
        if not page.messages:
            return self.print(f"* {self.current}: no messages")
        for message in page.messages:
            self.print(message_line(self.current, message, self.current))

    def who(self) -> None:
        if self.current is None:
            return self.print("! join a room first: /join ROOM")
        for line in who_lines(self.current, self.client.presence(self.current)):
            self.print(line)

    # ---- what the subscription tells us -------------------------------------

    def show_events(self) -> None:
        for event in self.sub.events():
            if isinstance(event, Delivered):
                self.print(message_line(event.room, event.message, self.current))
            elif isinstance(event, RoomReset):
                self.print(reset_line(event))
            elif isinstance(event, PresenceChanged):
                if event.entry.session_id not in self.own_sessions:
                    self.print(presence_line(event))
            elif isinstance(event, Subscribed):
                waiter = self.announced.get(event.room)
                if waiter is not None and not waiter.is_set():  # later ones are resumes after a reconnect
                    waiter.set()
                    if not is_inbox(event.room):
                        self.print(f"* joined {event.room} (seq {event.position.sequence})")
            elif isinstance(event, StateChanged):
                self.on_state(event)
            elif isinstance(event, TransientError):
                self.print(f"! {event.code.name}: {event.details}")

    def on_state(self, event: StateChanged) -> None:
        if event.new is State.CONNECTED:
            if self.sub.session_id:
                self.own_sessions.add(self.sub.session_id)
            if self.ready.is_set():
                self.print("* reconnected")
            self.ready.set()
        elif event.new is State.RECONNECTING:
            self.print(f"* reconnecting: {event.reason}")
        elif event.new is State.CLOSED and event.code is not None:
            # A failure the client does not retry, e.g. the broker refused the token.
            self.fail(f"! {event.reason}")
            self.ready.set()
            self.inputs.put(None)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with SeqcastClient(args.url, args.token) as client:
        if not client.wait_ready(CONNECT_TIMEOUT):
            print(f"! UNAVAILABLE: cannot reach a broker at {args.url} (is it running? is --url right?)")
            return 1
        chat = Chat(client, args)
        try:
            return chat.run()
        except KeyboardInterrupt:  # Ctrl-C while joining: leave quietly like /quit
            return 0
        finally:
            chat.sub.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
