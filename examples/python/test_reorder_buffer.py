"""The reorder buffer as a pure unit: no broker, no threads, no clock."""

from __future__ import annotations

import unittest
from dataclasses import dataclass

from seqcast_client.reorder_buffer import Deliver, Hole, Output, Position, ReorderBuffer, Reset


@dataclass(frozen=True)
class Msg:
    epoch: str
    sequence: int


def m(sequence: int, epoch: str = "e1") -> Msg:
    return Msg(epoch, sequence)


def delivered(outputs: list[Output[Msg]]) -> list[int]:
    return [out.item.sequence for out in outputs if isinstance(out, Deliver)]


def resets(outputs: list[Output[Msg]]) -> list[Reset]:
    return [out for out in outputs if isinstance(out, Reset)]


class ReorderBufferTest(unittest.TestCase):
    def setUp(self) -> None:
        self.buffer: ReorderBuffer[Msg] = ReorderBuffer(Position("e1", 0))

    def test_delivers_in_order_what_arrives_in_order(self) -> None:
        self.assertEqual(delivered(self.buffer.push(m(1))), [1])
        self.assertEqual(delivered(self.buffer.push(m(2))), [2])
        self.assertEqual(self.buffer.position, Position("e1", 2))

    def test_holds_early_messages_until_the_hole_closes(self) -> None:
        self.assertEqual(self.buffer.push(m(3)), [])
        self.assertEqual(self.buffer.push(m(2)), [])
        self.assertEqual(self.buffer.missing(), Hole("e1", 0, 2))
        self.assertEqual(delivered(self.buffer.push(m(1))), [1, 2, 3])
        self.assertIsNone(self.buffer.missing())

    def test_drops_duplicates_delivered_or_held(self) -> None:
        self.buffer.push(m(1))
        self.buffer.push(m(3))
        self.assertEqual(self.buffer.push(m(1)), [])
        self.assertEqual(self.buffer.push(m(3)), [])
        self.assertEqual(delivered(self.buffer.push(m(2))), [2, 3])
        self.assertEqual(self.buffer.dropped, 2)

    def test_fills_a_hole_from_history_in_any_order(self) -> None:
        self.buffer.push(m(1))
        self.buffer.push(m(5))
        hole = self.buffer.missing()
        self.assertEqual(hole, Hole("e1", 1, 5))
        outputs = self.buffer.fill([m(4), m(2), m(3)], "e1", first_sequence=1)
        self.assertEqual(delivered(outputs), [2, 3, 4, 5])
        self.assertEqual(resets(outputs), [])

    def test_declares_loss_for_what_history_no_longer_has(self) -> None:
        self.buffer.push(m(1))
        self.buffer.push(m(10))
        # The broker trimmed 2..6; 7..9 are still retained.
        outputs = self.buffer.fill([m(7), m(8), m(9)], "e1", first_sequence=7)
        self.assertEqual(resets(outputs), [Reset("lost", Position("e1", 6), 5)])
        self.assertEqual(delivered(outputs), [7, 8, 9, 10])
        self.assertIsInstance(outputs[0], Reset, "the loss is declared before what follows it")

    def test_a_message_of_a_new_epoch_resets_and_old_epochs_are_ignored(self) -> None:
        self.buffer.push(m(1))
        outputs = self.buffer.push(m(1, "e2"))
        self.assertEqual(resets(outputs), [Reset("epoch_changed", Position("e2", 0), 0)])
        self.assertEqual(delivered(outputs), [1])
        self.assertEqual(self.buffer.push(m(2, "e1")), [], "a late message of the old lineage is stale")
        self.assertEqual(self.buffer.position, Position("e2", 1))

    def test_a_new_epoch_starting_late_leaves_a_hole_to_fill(self) -> None:
        outputs = self.buffer.push(m(3, "e2"))
        self.assertEqual([r.reason for r in resets(outputs)], ["epoch_changed"])
        self.assertEqual(self.buffer.missing(), Hole("e2", 0, 3))
        self.assertEqual(delivered(self.buffer.fill([m(1, "e2"), m(2, "e2")], "e2", 1)), [1, 2, 3])

    def test_rebase_recovered_keeps_the_place(self) -> None:
        self.buffer.push(m(1))
        self.assertEqual(self.buffer.rebase(Position("e1", 4), recovered=True), [])
        self.assertEqual(delivered(self.buffer.push(m(2))), [2])

    def test_rebase_not_recovered_reports_what_was_skipped(self) -> None:
        self.buffer.push(m(1))
        outputs = self.buffer.rebase(Position("e1", 4), recovered=False)
        self.assertEqual(outputs, [Reset("lost", Position("e1", 4), 3)])
        self.assertEqual(delivered(self.buffer.push(m(5))), [5])

    def test_rebase_to_another_epoch_is_an_epoch_change(self) -> None:
        self.buffer.push(m(1))
        outputs = self.buffer.rebase(Position("e2", 7), recovered=False)
        self.assertEqual(outputs, [Reset("epoch_changed", Position("e2", 7), 0)])
        self.assertEqual(delivered(self.buffer.push(m(8, "e2"))), [8])

    def test_watermark_skips_filtered_sequences_without_a_reset(self) -> None:
        self.buffer.push(m(1))
        self.buffer.push(m(5))
        outputs = self.buffer.skip_through(Position("e1", 4), after=1)
        self.assertEqual(outputs, [Deliver(m(5))])

    def test_watermark_ahead_of_delivery_waits_for_its_start(self) -> None:
        self.buffer.push(m(5))
        # 3..4 were filtered out, but 1..2 are still on their way.
        self.assertEqual(self.buffer.skip_through(Position("e1", 4), after=2), [])
        self.buffer.push(m(1))
        self.assertEqual(delivered(self.buffer.push(m(2))), [2, 5])

    def test_a_room_without_lineage_adopts_its_first_epoch_without_a_reset(self) -> None:
        buffer: ReorderBuffer[Msg] = ReorderBuffer(Position("", 0))
        self.assertEqual(buffer.push(m(1, "e7")), [Deliver(m(1, "e7"))])
        self.assertEqual(buffer.position, Position("e7", 1))
        # Only the first lineage is adopted: another one after it is a change.
        self.assertEqual([r.reason for r in resets(buffer.push(m(1, "e8")))], ["epoch_changed"])

    def test_a_room_without_lineage_adopts_the_epoch_of_a_resume_or_a_hole_fill(self) -> None:
        resumed: ReorderBuffer[Msg] = ReorderBuffer(Position("", 0))
        self.assertEqual(resumed.rebase(Position("e7", 3), recovered=True), [])
        self.assertEqual(delivered(resumed.push(m(1, "e7"))), [1])
        late: ReorderBuffer[Msg] = ReorderBuffer(Position("", 0))
        self.assertEqual(late.push(m(2, "e7")), [])
        self.assertEqual(delivered(late.fill([m(1, "e7")], "e7", 1)), [1, 2])
        lost: ReorderBuffer[Msg] = ReorderBuffer(Position("", 0))
        self.assertEqual(lost.rebase(Position("e7", 3), recovered=False), [Reset("lost", Position("e7", 3), 3)])


if __name__ == "__main__":
    unittest.main()
