"""Per-room reorder buffer: at-least-once, possibly reordered delivery on the
wire becomes "in order, exactly once" for the application.

A mirror of the TypeScript SDK's src/client/reorder-buffer.ts, and as pure:
no threads, no timers, no I/O. The owner feeds it messages as they arrive
(push), asks which hole to fill (missing), feeds it the history it fetched
(fill) and re-anchors it where the broker says a (re)subscription starts
(rebase). Every call returns what became deliverable, in order.

Guarantees, per buffer:
- items are delivered in increasing sequence, each sequence at most once, and
  without a hole: between two delivered items of one epoch there is either
  nothing or a Reset that says why;
- items of another epoch are never mixed into the current lineage: a new
  epoch first produces a Reset("epoch_changed"), and epochs once left are
  ignored;
- epoch "" means the room had no lineage yet (read or joined before its first
  publish): the first real epoch after it is adopted without a Reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Iterable, Literal, Protocol, TypeVar, Union


class Sequenced(Protocol):
    """What the buffer needs of a message (seqcast.v1.Message has both)."""

    @property
    def epoch(self) -> str: ...

    @property
    def sequence(self) -> int: ...


T = TypeVar("T", bound=Sequenced)

ResetReason = Literal["epoch_changed", "lost"]
"""epoch_changed: the room's lineage changed (history cleared, store reset).
lost: messages existed that can no longer be fetched (history trimmed)."""


@dataclass(frozen=True)
class Position:
    """A point in a room's lineage; sequence 0 is before the first message."""

    epoch: str
    sequence: int


@dataclass(frozen=True)
class Hole:
    """Sequences in (after, before) are missing while `before` is held."""

    epoch: str
    after: int
    before: int


@dataclass(frozen=True)
class Deliver(Generic[T]):
    item: T


@dataclass(frozen=True)
class Reset:
    reason: ResetReason
    # Delivery continues after this position; everything before is stale or gone.
    position: Position
    # For "lost" within one epoch: how many sequences were skipped (0 for an epoch change).
    skipped: int


Output = Union[Deliver[T], Reset]


class ReorderBuffer(Generic[T]):
    def __init__(self, start: Position) -> None:
        self._epoch = start.epoch
        self._delivered = start.sequence
        self._held: dict[int, T] = {}
        # Filtered runs announced ahead of time: once k is delivered, skip to v.
        self._skips: dict[int, int] = {}
        self._retired_epochs: set[str] = set()
        # Items dropped as duplicates or stale, for tests and metrics.
        self.dropped = 0

    @property
    def position(self) -> Position:
        """Last delivered (or skipped) position: where a resume starts from."""
        return Position(self._epoch, self._delivered)

    @property
    def held_count(self) -> int:
        return len(self._held)

    def missing(self) -> Hole | None:
        """The hole that holds delivery back, or None when nothing is held."""
        if not self._held:
            return None
        return Hole(self._epoch, self._delivered, min(self._held))

    def push(self, item: T) -> list[Output[T]]:
        """A message arrived from the stream (or anywhere else)."""
        out: list[Output[T]] = []
        self._accept(item, out)
        return out

    def fill(self, items: Iterable[T], epoch: str, first_sequence: int) -> list[Output[T]]:
        """History fetched for missing() arrived (GetHistory's messages, epoch
        of its position and first_sequence). Whatever it can no longer supply
        (older than first_sequence) is declared lost with a Reset, and delivery
        continues after it."""
        out: list[Output[T]] = []
        self._adopt_first_epoch(epoch)
        if epoch != self._epoch:
            if epoch in self._retired_epochs:
                return out
            self._switch_epoch(epoch, 0, out)
        for item in sorted(items, key=lambda m: m.sequence):
            self._accept(item, out)
        if self._held:
            lowest_held = min(self._held)
            retained = lowest_held if first_sequence == 0 else first_sequence
            if retained > self._delivered + 1:
                resume_after = min(retained, lowest_held) - 1
                skipped = resume_after - self._delivered
                self._delivered = resume_after
                out.append(Reset("lost", self.position, skipped))
                self._drain(out)
        return out

    def rebase(self, position: Position, recovered: bool) -> list[Output[T]]:
        """The broker (re)started this room's subscription at `position`.
        `recovered` says whether it replays everything after our own
        position; if not, what lies between is lost and a Reset says so."""
        out: list[Output[T]] = []
        self._adopt_first_epoch(position.epoch)
        if recovered and position.epoch == self._epoch:
            return out
        if position.epoch != self._epoch:
            self._switch_epoch(position.epoch, position.sequence, out)
        elif position.sequence > self._delivered:
            skipped = position.sequence - self._delivered
            self._skip_to(position.sequence)
            out.append(Reset("lost", self.position, skipped))
        self._drain(out)
        return out

    def skip_through(self, position: Position, after: int | None = None) -> list[Output[T]]:
        """Nothing up to position.sequence is missing (a filter removed what
        was not delivered; `after` is the last sequence the stream carried
        before the filtered run): move past it without a Reset."""
        out: list[Output[T]] = []
        self._adopt_first_epoch(position.epoch)
        if position.epoch != self._epoch or position.sequence <= self._delivered:
            return out
        if after is not None and after > self._delivered:
            # We still miss `after` itself: the skip applies once it is delivered.
            if self._skips.get(after, -1) < position.sequence:
                self._skips[after] = position.sequence
            return out
        self._skip_to(position.sequence)
        self._drain(out)
        return out

    def _skip_to(self, sequence: int) -> None:
        self._delivered = sequence
        for seq in [s for s in self._held if s <= sequence]:
            del self._held[seq]

    def _accept(self, item: T, out: list[Output[T]]) -> None:
        self._adopt_first_epoch(item.epoch)
        if item.epoch != self._epoch:
            if item.epoch in self._retired_epochs:
                self.dropped += 1
                return
            # A new lineage: nothing of the old one may follow. Its history
            # starts at 1, so anything before this item is a hole like any other.
            self._switch_epoch(item.epoch, 0, out)
        if item.sequence <= self._delivered or item.sequence in self._held:
            self.dropped += 1
            return
        if item.sequence != self._delivered + 1:
            self._held[item.sequence] = item
            return
        self._delivered = item.sequence
        out.append(Deliver(item))
        self._drain(out)

    def _adopt_first_epoch(self, epoch: str) -> None:
        # Epoch "" = the room had no lineage yet (read or joined before its
        # first publish): its first lineage starts at 1, so taking it on loses
        # nothing and is no reset.
        if self._epoch == "" and self._delivered == 0 and epoch != "":
            self._epoch = epoch

    def _switch_epoch(self, epoch: str, sequence: int, out: list[Output[T]]) -> None:
        self._retired_epochs.add(self._epoch)
        self._epoch = epoch
        self._delivered = sequence
        self._held.clear()
        self._skips.clear()
        out.append(Reset("epoch_changed", self.position, 0))

    def _drain(self, out: list[Output[T]]) -> None:
        while True:
            skip = self._skips.pop(self._delivered, None)
            if skip is not None:
                if skip > self._delivered:
                    self._skip_to(skip)
                continue
            following = self._held.pop(self._delivered + 1, None)
            if following is None:
                return
            self._delivered = following.sequence
            out.append(Deliver(following))
