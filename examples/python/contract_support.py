"""What test_contract.py needs around the client: the broker's address and
tokens from the environment, a recorder of subscription events, and a TCP
proxy whose connections can be cut."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Type, TypeVar

from seqcast_client import Delivered, Event, Subscribed, Subscription, types_pb2

ROLES = ("alice", "bob", "carol", "admin")

E = TypeVar("E")


@dataclass(frozen=True)
class Broker:
    url: str
    # Role (alice, bob, carol, admin) -> token; alice, bob and carol are three users.
    tokens: dict[str, str]

    def user(self, role: str) -> str:
        """The identity a token names (its `sub`; read, not verified)."""
        payload = self.tokens[role].split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


HOW_TO = """set SEQCAST_URL (e.g. 127.0.0.1:8080) and either
  SEQCAST_TEST_TOKENS='{"alice": "<jwt>", "bob": "<jwt>", "carol": "<jwt>", "admin": "<admin jwt>"}'
  (three users; admin optional) or SEQCAST_JWT_SECRET (the broker's HS256 secret) to mint them"""


def broker_from_env() -> Optional[Broker]:
    url = os.environ.get("SEQCAST_URL")
    if not url:
        return None
    if "SEQCAST_TEST_TOKENS" in os.environ:
        tokens = json.loads(os.environ["SEQCAST_TEST_TOKENS"])
        missing = [role for role in ROLES[:3] if role not in tokens]
        if missing:
            raise SystemExit(f"SEQCAST_TEST_TOKENS lacks {', '.join(missing)}; {HOW_TO}")
        return Broker(url, tokens)
    secret = os.environ.get("SEQCAST_JWT_SECRET")
    if not secret:
        raise SystemExit(HOW_TO)
    run = secrets.token_hex(3)  # fresh users per run: a re-run against the same broker starts clean
    tokens = {role: mint_token(f"py-{role}-{run}", secret, admin=role == "admin") for role in ROLES}
    return Broker(url, tokens)


def mint_token(user: str, secret: str, *, admin: bool = False, ttl: int = 3600) -> str:
    """An HS256 JWT as `seqcast token` makes it (claims: sub, iat, exp, seqcast)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": user, "iat": now, "exp": now + ttl, "seqcast": {"admin": True} if admin else {}}
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


class Recorder:
    """Collects what a subscription tells its application; waits with a deadline."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: list[Event] = []

    def until(self, predicate: Callable[[Recorder], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; saw {self.summary()}")
            event = self.subscription.get(timeout=remaining)
            if event is not None:
                self.events.append(event)

    def of_type(self, kind: Type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    def messages(self, room: Optional[str] = None) -> list[types_pb2.Message]:
        return [e.message for e in self.of_type(Delivered) if room is None or e.room == room]

    def contents(self, room: Optional[str] = None) -> list[str]:
        return [message.content for message in self.messages(room)]

    def subscribed_to(self, room: str) -> None:
        self.until(lambda r: any(e.room == room for e in r.of_type(Subscribed)), f"subscribed to {room}")

    def summary(self) -> str:
        return ", ".join(_describe(event) for event in self.events[-12:]) or "nothing"


def _describe(event: Event) -> str:
    if isinstance(event, Delivered):
        return f"Delivered({event.room}#{event.message.sequence} {event.message.content!r})"
    return repr(event)


class CuttableProxy:
    """Forwards TCP connections to the broker; cut() drops them all, as a
    network failure under a live client would. While `blocked`, new
    connections are dropped at once (the broker is unreachable); `attempts`
    counts connections tried."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.blocked = False
        self.attempts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _drop(sock)

    def close(self) -> None:
        self.cut()
        _drop(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                self.attempts += 1
                if self.blocked:
                    _drop(client)
                    continue
                upstream = socket.create_connection(self._target)
            except OSError:
                return
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _drop(source)
    _drop(sink)


def _drop(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
