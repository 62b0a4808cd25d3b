"""Turns a silent stream into a failure: the broker sends a heartbeat on an
idle stream, so hearing nothing for several intervals means the connection
is dead even if TCP has not noticed (as the TypeScript SDK does)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class HeartbeatWatchdog:
    def __init__(self, on_silence: Callable[[], None], missed_heartbeats: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_silence = on_silence
        self._missed = missed_heartbeats
        self._clock = clock
        self._last = clock()
        self._stopped = threading.Event()
        self.fired = False

    def arm(self, heartbeat_interval: float) -> None:
        """Starts watching, once the session said how often it sends heartbeats."""
        if heartbeat_interval <= 0:
            return
        silence = heartbeat_interval * self._missed + 1.0
        threading.Thread(target=self._watch, args=(silence,), name="seqcast-watchdog", daemon=True).start()

    def feed(self) -> None:
        self._last = self._clock()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self, silence: float) -> None:
        while not self._stopped.wait(min(1.0, silence / 4)):
            if self._clock() - self._last > silence:
                self.fired = True
                self._on_silence()
                return
