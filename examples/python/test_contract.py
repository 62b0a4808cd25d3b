"""The seqcast contract as a Python user observes it, against a REAL broker.

    SEQCAST_URL=127.0.0.1:8080 SEQCAST_JWT_SECRET=... /usr/bin/python3 -m unittest -v test_contract
(or SEQCAST_TEST_TOKENS, see contract_support.HOW_TO). Every test uses rooms
of its own, so the suite may run again against the same broker.
"""

from __future__ import annotations

import secrets
import threading
import time
import unittest
import uuid
from typing import Any, Optional

import grpc

from contract_support import CuttableProxy, HOW_TO, Recorder, broker_from_env
from seqcast_client import (PresenceChanged, Position, RoomReset, SeqcastClient, SeqcastError, State, StateChanged,
                            Subscribed, Subscription, inbox_of, pubsub_pb2)
from seqcast_client.connection import parse_target

BROKER = broker_from_env()


def setUpModule() -> None:
    if BROKER is None:
        raise unittest.SkipTest(f"no broker to test against: {HOW_TO}")


class ContractTest(unittest.TestCase):
    def setUp(self) -> None:
        assert BROKER is not None
        self.broker = BROKER
        self.prefix = f"py{secrets.token_hex(4)}"

    # ---- helpers ----------------------------------------------------------

    def room(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def client(self, role: str, url: Optional[str] = None) -> SeqcastClient:
        client = SeqcastClient(url or self.broker.url, self.broker.tokens[role])
        self.addCleanup(client.close)
        return client

    def subscribe(self, client: SeqcastClient, rooms: list[str], **options: Any) -> Recorder:
        subscription = client.subscribe(rooms, **options)
        self.addCleanup(subscription.close)
        return Recorder(subscription)

    def assert_code(self, code: grpc.StatusCode, error: BaseException) -> None:
        self.assertIsInstance(error, SeqcastError)
        assert isinstance(error, SeqcastError)
        self.assertEqual(error.code, code, str(error))

    def closed_with(self, recorder: Recorder) -> StateChanged:
        # Wait for the event, not the state: the subscription's thread sets its state to CLOSED
        # just before it queues the StateChanged that says so.
        def closing(r: Recorder) -> list[StateChanged]:
            return [e for e in r.of_type(StateChanged) if e.new is State.CLOSED]

        recorder.until(lambda r: bool(closing(r)), "the subscription to close")
        return closing(recorder)[-1]

    # ---- ordering and resume ------------------------------------------------

    def test_resume_with_since_gets_exactly_the_missed_messages_in_order(self) -> None:
        alice = self.client("alice")
        room = self.room("resume")
        alice.publish(room, "seen 1")
        seen = alice.publish(room, "seen 2").position
        for i in range(1, 6):
            alice.publish(room, f"missed {i}")

        reader = self.subscribe(self.client("bob"), [room], since={room: Position(seen.epoch, seen.sequence)})
        reader.subscribed_to(room)
        self.assertTrue(reader.of_type(Subscribed)[0].recovered)
        alice.publish(room, "live")
        reader.until(lambda r: "live" in r.contents(room), "the live message")
        self.assertEqual(reader.contents(room), [f"missed {i}" for i in range(1, 6)] + ["live"])
        self.assertEqual([m.sequence for m in reader.messages(room)], list(range(3, 9)))
        self.assertEqual(reader.of_type(RoomReset), [])

    def test_subscribers_see_one_gapless_order_of_a_burst_from_several_publishers(self) -> None:
        room = self.room("burst")
        readers = [self.subscribe(self.client(role), [room]) for role in ("alice", "bob")]
        for reader in readers:
            reader.subscribed_to(room)
        publishers = {role: self.client(role) for role in ("alice", "bob", "carol")}
        per_publisher = 20
        errors: list[BaseException] = []

        def burst(role: str) -> None:
            try:
                for i in range(per_publisher):
                    publishers[role].publish(room, f"{role} {i}")
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=burst, args=(role,)) for role in publishers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        total = per_publisher * len(publishers)
        for reader in readers:
            reader.until(lambda r: len(r.messages(room)) >= total, f"{total} messages")
        first, second = (reader.messages(room) for reader in readers)
        self.assertEqual([m.sequence for m in first], list(range(1, total + 1)), "gapless, in order, once each")
        self.assertEqual([m.id for m in first], [m.id for m in second], "the same order for every subscriber")
        for role in publishers:
            mine = [m.content for m in first if m.content.startswith(f"{role} ")]
            self.assertEqual(mine, [f"{role} {i}" for i in range(per_publisher)], f"{role}'s messages in the order sent")
            self.assertTrue(all(m.sender == self.broker.user(role) for m in first if m.content.startswith(f"{role} ")))

    def test_reconnects_after_a_cut_and_resumes_without_a_hole_or_a_duplicate(self) -> None:
        proxy = CuttableProxy(parse_target(self.broker.url)[0])
        self.addCleanup(proxy.close)
        room = self.room("cut")
        alice = self.client("alice")
        reader = self.subscribe(self.client("bob", url=proxy.url), [room])
        reader.subscribed_to(room)
        alice.publish(room, "before")
        reader.until(lambda r: r.contents(room) == ["before"], "the first message")

        proxy.cut()
        for i in range(1, 5):
            alice.publish(room, f"after {i}")
        reader.until(lambda r: len(r.contents(room)) >= 5, "the messages published around the cut")
        self.assertEqual(reader.contents(room), ["before"] + [f"after {i}" for i in range(1, 5)])
        self.assertIn(State.RECONNECTING, [e.new for e in reader.of_type(StateChanged)])
        self.assertTrue(all(e.recovered for e in reader.of_type(Subscribed)[1:]), "resumed with since")
        self.assertEqual(reader.of_type(RoomReset), [])

    def test_resumes_once_the_broker_is_reachable_again_after_an_outage(self) -> None:
        proxy = CuttableProxy(parse_target(self.broker.url)[0])
        self.addCleanup(proxy.close)
        room = self.room("outage")
        alice = self.client("alice")
        reader = self.subscribe(self.client("bob", url=proxy.url), [room])
        reader.subscribed_to(room)

        proxy.blocked = True
        proxy.cut()
        alice.publish(room, "during the outage")
        reader.until(lambda r: r.subscription.state is State.RECONNECTING, "the subscription to notice")
        failed = proxy.attempts
        deadline = time.monotonic() + 10
        while proxy.attempts < failed + 3 and time.monotonic() < deadline:  # a few refused reconnects
            time.sleep(0.05)
        self.assertGreaterEqual(proxy.attempts, failed + 3, "the client keeps trying to reconnect")
        proxy.blocked = False
        alice.publish(room, "after the outage")
        reader.until(lambda r: len(r.contents(room)) >= 2, "both messages once reachable", timeout=15)
        self.assertEqual(reader.contents(room), ["during the outage", "after the outage"])
        self.assertEqual(reader.of_type(RoomReset), [])

    # ---- publish and history -------------------------------------------------

    def test_a_repeated_client_message_id_is_a_duplicate_at_the_original_position(self) -> None:
        alice = self.client("alice")
        room = self.room("dedupe")
        message_id = str(uuid.uuid4())
        first = alice.publish(room, "once", client_message_id=message_id)
        retry = alice.publish(room, "once", client_message_id=message_id)
        self.assertFalse(first.duplicate)
        self.assertTrue(retry.duplicate)
        self.assertEqual(retry.position, first.position)
        stored = alice.history(room).messages
        self.assertEqual([(m.content, m.client_message_id) for m in stored], [("once", message_id)])

    def test_history_pages_forward_and_backward(self) -> None:
        alice = self.client("alice")
        room = self.room("history")
        for i in range(1, 26):
            alice.publish(room, f"h{i}")

        pages, after = [], 0
        while True:
            page = alice.history(room, after=after, limit=10)
            pages.append([m.sequence for m in page.messages])
            if not page.has_more:
                break
            after = page.messages[-1].sequence
        self.assertEqual(pages, [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))])

        newest = alice.history(room, limit=10, backward=True)
        self.assertEqual([m.content for m in newest.messages], [f"h{i}" for i in range(16, 26)], "ascending")
        self.assertTrue(newest.has_more)
        older = alice.history(room, before=newest.messages[0].sequence, limit=10, backward=True)
        self.assertEqual([m.sequence for m in older.messages], list(range(6, 16)))
        self.assertEqual(newest.position.sequence, 25)
        self.assertEqual(newest.first_sequence, 1)

    # ---- presence and inboxes -------------------------------------------------

    def test_presence_join_shows_in_get_presence_and_on_the_stream(self) -> None:
        room = self.room("presence")
        watcher = self.subscribe(self.client("alice"), [room])
        watcher.subscribed_to(room)
        bob_user = self.broker.user("bob")
        bob = self.subscribe(self.client("bob"), [room], device="py-contract")
        bob.subscribed_to(room)

        def bob_is(kind: str) -> bool:
            return any(e.kind == kind and e.entry.user == bob_user for e in watcher.of_type(PresenceChanged))

        watcher.until(lambda r: bob_is("join"), "bob's join event")
        present = self.client("carol").presence(room)
        self.assertIn((bob_user, "py-contract"), [(e.user, e.device) for e in present.entries])
        self.assertEqual(present.user_count, 2)

        bob.subscription.close()
        watcher.until(lambda r: bob_is("leave"), "bob's leave event")
        self.assertNotIn(bob_user, [e.user for e in self.client("carol").presence(room).entries])

    def test_a_direct_message_reaches_only_its_recipient(self) -> None:
        bob_inbox, carol_inbox = inbox_of(self.broker.user("bob")), inbox_of(self.broker.user("carol"))
        bob = self.subscribe(self.client("bob"), [bob_inbox])
        carol = self.subscribe(self.client("carol"), [carol_inbox])
        bob.subscribed_to(bob_inbox)
        carol.subscribed_to(carol_inbox)
        alice = self.client("alice")
        secret = f"psst {self.prefix}"
        alice.publish(bob_inbox, secret)
        bob.until(lambda r: secret in r.contents(bob_inbox), "the DM")
        self.assertEqual(bob.messages(bob_inbox)[-1].sender, self.broker.user("alice"))

        # Carol's own inbox carries only what was sent to her.
        alice.publish(carol_inbox, f"marker {self.prefix}")
        carol.until(lambda r: len(r.messages()) >= 1, "carol's marker")
        self.assertEqual(carol.contents(), [f"marker {self.prefix}"])
        # And she may not read Bob's: neither live nor from history.
        snoop = self.subscribe(self.client("carol"), [bob_inbox])
        denied = self.closed_with(snoop)
        self.assertEqual(denied.code, grpc.StatusCode.PERMISSION_DENIED, denied.reason)
        with self.assertRaises(SeqcastError) as history:
            self.client("carol").history(bob_inbox)
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED, history.exception)

    # ---- errors ----------------------------------------------------------------

    def test_a_bad_room_name_is_invalid_argument(self) -> None:
        alice = self.client("alice")
        for call in (lambda: alice.publish("no good", "x"), lambda: alice.history("a..b"), lambda: alice.presence("")):
            with self.assertRaises(SeqcastError) as caught:
                call()
            self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, caught.exception)
        # The raw stream, past the client's own check:
        stream = alice.stub.Subscribe(pubsub_pb2.SubscribeRequest(rooms=[pubsub_pb2.RoomSubscription(room="bad room")]))
        with self.assertRaises(grpc.RpcError) as raw:
            list(stream)
        self.assertEqual(raw.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The client refuses it before it could poison every reconnect.
        with self.assertRaises(SeqcastError) as local:
            Subscription(alice.stub, ["bad room"])
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, local.exception)

    def test_errors_carry_the_brokers_reason_and_a_room_limit_is_not_retried(self) -> None:
        alice = self.client("alice")
        with self.assertRaises(SeqcastError) as caught:
            alice.publish("no good", "x")
        self.assertEqual(caught.exception.reason, "INVALID_ROOM")
        # More rooms than a session may hold: RESOURCE_EXHAUSTED like a slow consumer,
        # but reconnecting cannot help, so the subscription closes instead.
        too_many = self.subscribe(alice, [self.room(f"r{i}") for i in range(1001)])
        closed = self.closed_with(too_many)
        self.assertEqual(closed.code, grpc.StatusCode.RESOURCE_EXHAUSTED, closed.reason)
        self.assertEqual(closed.error_reason, "ROOM_LIMIT")
        self.assertNotIn(State.RECONNECTING, [e.new for e in too_many.of_type(StateChanged)], "terminal, not retried")

    def test_a_missing_or_bad_token_is_unauthenticated(self) -> None:
        room = self.room("auth")
        for token in (None, "not-a-jwt", self.broker.tokens["alice"][:-4] + "AAAA"):
            client = SeqcastClient(self.broker.url, token)
            self.addCleanup(client.close)
            with self.assertRaises(SeqcastError) as caught:
                client.publish(room, "hello")
            self.assert_code(grpc.StatusCode.UNAUTHENTICATED, caught.exception)
            stream = self.subscribe(client, [room])
            closed = self.closed_with(stream)
            self.assertEqual(closed.code, grpc.StatusCode.UNAUTHENTICATED, closed.reason)
            self.assertNotIn(State.RECONNECTING, [e.new for e in stream.of_type(StateChanged)], "terminal, not retried")

    # ---- loss is never silent ----------------------------------------------------

    def test_resuming_from_another_epoch_is_an_epoch_reset(self) -> None:
        alice = self.client("alice")
        room = self.room("epoch")
        alice.publish(room, "old")
        reader = self.subscribe(self.client("bob"), [room], since={room: Position("no-such-epoch", 1)})
        reader.subscribed_to(room)
        alice.publish(room, "new")
        reader.until(lambda r: "new" in r.contents(room), "the live message")
        self.assertEqual([e.reason for e in reader.of_type(RoomReset)], ["epoch_changed"])
        self.assertFalse(reader.of_type(Subscribed)[0].recovered)
        self.assertEqual(reader.contents(room), ["new"])

    def test_clear_history_resets_the_room_for_its_subscribers(self) -> None:
        if "admin" not in self.broker.tokens:
            self.skipTest("no admin token given")
        alice = self.client("alice")
        room = self.room("clear")
        alice.publish(room, "before")
        reader = self.subscribe(self.client("bob"), [room])
        reader.subscribed_to(room)
        fresh = self.client("admin").clear_history(room)
        alice.publish(room, "after")
        reader.until(lambda r: "after" in r.contents(room), "the first message of the new epoch")
        self.assertEqual([(e.reason, e.position.epoch) for e in reader.of_type(RoomReset)], [("epoch_changed", fresh.epoch)])
        self.assertEqual([(m.epoch, m.sequence) for m in reader.messages(room)], [(fresh.epoch, 1)])

    def test_resuming_past_trimmed_history_reports_the_loss(self) -> None:
        alice = self.client("alice")
        room = self.room("trimmed")
        start = alice.publish(room, "first").position
        for i in range(120):
            alice.publish(room, f"filler {i}")
        retained = alice.history(room, limit=1)
        if retained.first_sequence <= start.sequence + 1:
            self.skipTest("this broker keeps more than 120 messages per room (--history-size)")
        reader = self.subscribe(self.client("bob"), [room], since={room: Position(start.epoch, start.sequence)})
        reader.subscribed_to(room)
        alice.publish(room, "live")
        reader.until(lambda r: "live" in r.contents(room), "the live message")
        lost = reader.of_type(RoomReset)
        self.assertEqual([(e.reason, e.skipped) for e in lost], [("lost", retained.position.sequence - start.sequence)])
        self.assertEqual(reader.contents(room), ["live"])

    # ---- routing -------------------------------------------------------------------

    def test_a_filter_delivers_only_matches_in_order_without_a_reset(self) -> None:
        alice = self.client("alice")
        room = self.room("filter")
        reader = self.subscribe(self.client("bob"), [room], filters={room: 'attributes.kind == "goal"'})
        reader.subscribed_to(room)
        kinds = ["miss", "goal", "miss", "miss", "goal", "miss", "goal"]
        for i, kind in enumerate(kinds, start=1):
            alice.publish(room, f"{kind} {i}", attributes={"kind": kind})
        reader.until(lambda r: len(r.messages(room)) >= 3, "three goals")
        self.assertEqual([m.sequence for m in reader.messages(room)], [2, 5, 7])
        self.assertEqual(reader.of_type(RoomReset), [])


if __name__ == "__main__":
    unittest.main()
