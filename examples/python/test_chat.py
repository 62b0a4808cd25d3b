"""chat.py driven like a user would, against a REAL broker (same
environment as test_contract.py): two users chat, DM, ask who is there and
for history, see a reset note; bad tokens and unreachable brokers get one
clear line, not a traceback."""

from __future__ import annotations

import os
import queue
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path
from typing import Optional

from contract_support import HOW_TO, broker_from_env
from seqcast_client import SeqcastClient

BROKER = broker_from_env()
CHAT = str(Path(__file__).resolve().parent / "chat.py")


def setUpModule() -> None:
    if BROKER is None:
        raise unittest.SkipTest(f"no broker to test against: {HOW_TO}")


class ChatProcess:
    """One chat.py process: lines in on stdin, lines out read with deadlines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, CHAT, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1", "SEQCAST_TOKEN": ""},
        )
        self.transcript: list[str] = []
        self._lines: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, pattern: str, timeout: float = 10.0) -> str:
        """The next output line matching `pattern` (earlier lines are passed over)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0)) if remaining > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r} within {timeout:g} s; transcript:\n" + "\n".join(self.transcript))
            self.transcript.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 10.0) -> int:
        """Ends the input (= /quit) and returns the exit code."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        code = self.process.wait(timeout)
        self.transcript.extend(line for line in iter(self._lines.get, None))
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(5)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class ChatTest(unittest.TestCase):
    def setUp(self) -> None:
        assert BROKER is not None
        self.broker = BROKER
        self.room = f"py{secrets.token_hex(4)}.chat"

    def chat(self, role: str, *args: str, token: Optional[str] = None) -> ChatProcess:
        token = self.broker.tokens[role] if token is None else token
        chat = ChatProcess("--url", self.broker.url, "--token", token, *args)
        self.addCleanup(chat.close)
        return chat

    def test_two_users_chat_dm_ask_who_and_read_history(self) -> None:
        alice_user, bob_user = self.broker.user("alice"), self.broker.user("bob")
        bob = self.chat("bob", "--room", self.room, "--device", "laptop")
        bob.expect(rf"^\* joined {re.escape(self.room)} \(seq 0\)$")
        alice = self.chat("alice", "--room", self.room)
        alice.expect(rf"^\* joined {re.escape(self.room)}")
        bob.expect(rf"^\* {alice_user} joined {re.escape(self.room)}$")

        alice.send("hello, bob")
        for chat in (alice, bob):
            chat.expect(rf"^\[1\] {alice_user}: hello, bob$")
        alice.send(f"@{bob_user} psst")
        alice.expect(rf"^\[dm → {bob_user}\] psst$")
        bob.expect(rf"^\[dm\] {alice_user}: psst$")

        bob.send("/who")
        bob.expect(rf"^\* {re.escape(self.room)}: 2 users, 2 sessions$")
        bob.expect(rf"^\*   {bob_user} \(laptop, online\)$")
        alice.send("/history 5")
        alice.expect(rf"^\[1\] {alice_user}: hello, bob$")
        alice.send("/join elsewhere")
        alice.expect(r"^\* joined elsewhere")
        alice.send("/leave")
        alice.expect(rf"^\* left elsewhere, now in {re.escape(self.room)}$")

        alice.send("/quit")
        self.assertEqual(alice.finish(), 0, "\n".join(alice.transcript))
        bob.expect(rf"^\* {alice_user} left {re.escape(self.room)}$")
        self.assertEqual(bob.finish(), 0, "\n".join(bob.transcript))

    def test_a_cleared_history_is_announced(self) -> None:
        if "admin" not in self.broker.tokens:
            self.skipTest("no admin token given")
        bob = self.chat("bob", "--room", self.room)
        bob.expect(r"^\* joined ")
        with SeqcastClient(self.broker.url, self.broker.tokens["admin"]) as admin:
            # A room that was never written has no history and no epoch: clearing it changes
            # nothing. One message gives it a lineage to clear.
            admin.publish(self.room, "soon gone")
            bob.expect(r"soon gone$")
            admin.clear_history(self.room)
        bob.expect(rf"^! {re.escape(self.room)}: history was cleared \(new epoch\)$")

    def test_a_bad_token_is_one_clear_line_and_exit_code_1(self) -> None:
        chat = self.chat("alice", token="not-a-jwt")
        chat.expect(r"^! UNAUTHENTICATED: ")
        self.assertEqual(chat.finish(), 1)
        self.assertNotIn("Traceback", "\n".join(chat.transcript))

    def test_an_unreachable_broker_is_one_clear_line_and_exit_code_1(self) -> None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        chat = ChatProcess("--url", f"127.0.0.1:{port}", "--token", "x")
        self.addCleanup(chat.close)
        chat.expect(r"^! UNAVAILABLE: cannot reach a broker at ")
        self.assertEqual(chat.finish(), 1)
        self.assertNotIn("Traceback", "\n".join(chat.transcript))


if __name__ == "__main__":
    unittest.main()
