import assert from "node:assert/strict";
import { afterEach, describe, it, vi } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { failure, FAKE_TIMERS, inProcessBroker, settle, Stream, user } from "../support/in-process.js";

/**
 * The broker's timers (heartbeats, ack deadlines, presence grace) on vitest's fake
 * clock, and the slow-consumer cut-off: what a session gets, or stops getting, over
 * time. Apart from broker.test.ts because every test here builds its own broker with
 * the timings it needs, and the fake clock must be undone after each.
 */


describe("timers on the fake clock", () => {
  let broker: Broker;
  afterEach(async () => {
    await broker.close();
    vi.useRealTimers();
  });

  /** On the fake clock, a broker with 5 s of presence grace and "room" joined by a watcher ("w") and `name` on a phone. */
  const graceRoom = async (name: string) => {
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ presenceGraceMs: 5000, heartbeatIntervalMs: 0, ackDeadlineMs: 0 });
    const watcher = new Stream(broker.openSession(user("w"), ""));
    await broker.join(watcher.session, [{ room: "room" }]);
    const member = broker.openSession(user(name), "phone");
    await broker.join(member, [{ room: "room" }]);
    return { watcher, member };
  };

  it("sends a heartbeat on a stream idle for the interval, and none on a busy one", async () => {
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ heartbeatIntervalMs: 1000, ackDeadlineMs: 0 });
    const idle = new Stream(broker.openSession(user("idle"), ""));
    const busy = new Stream(broker.openSession(user("busy"), ""));
    await broker.join(busy.session, [{ room: "r" }]);
    for (let t = 0; t < 8; t++) {
      vi.advanceTimersByTime(250);
      await broker.publish(user("p"), { room: "r", content: `m${t}`, payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    }
    // 2 s of fake time: a heartbeat after each idle second.
    assert.equal(idle.summary().filter((e) => e === "heartbeat").length, 2);
    assert.equal(busy.summary().filter((e) => e === "heartbeat").length, 0);
  });

  it("redelivers to a durable subscriber what it did not acknowledge within the deadline, and stops once acked", async () => {
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ ackDeadlineMs: 1000, heartbeatIntervalMs: 0 });
    const stream = new Stream(broker.openSession(user("d"), "", "phone"));
    await broker.join(stream.session, [{ room: "r" }]);
    const sent = [];
    for (const c of ["a", "b"]) sent.push(await broker.publish(user("p"), { room: "r", content: c, payload: new Uint8Array(), attributes: {}, clientMessageId: "" }));
    assert.deepEqual(stream.messages(), ["a", "b"]);
    vi.advanceTimersByTime(999);
    assert.deepEqual(stream.messages(), ["a", "b"], "nothing before the deadline");
    vi.advanceTimersByTime(300);
    assert.deepEqual(stream.messages(), ["a", "b", "a", "b"], "redelivered after it");
    await broker.ack(stream.session, [{ room: "r", position: { epoch: sent[1]!.message.epoch, sequence: 1n } }]);
    vi.advanceTimersByTime(1300);
    assert.deepEqual(stream.messages(), ["a", "b", "a", "b", "b"], "only the unacknowledged one again");
    await broker.ack(stream.session, [{ room: "r", position: { epoch: sent[1]!.message.epoch, sequence: 2n } }]);
    vi.advanceTimersByTime(5000);
    assert.deepEqual(stream.messages(), ["a", "b", "a", "b", "b"], "nothing after the ack");
    // Acks of another epoch are ignored; acks need a durable session and a held room.
    await broker.ack(stream.session, [{ room: "r", position: { epoch: "other", sequence: 9n } }]);
    assert.equal((await failure(() => broker.ack(stream.session, [{ room: "x", position: { epoch: "e", sequence: 1n } }]))).reason, "ROOM_NOT_HELD");
    const plain = broker.openSession(user("d"), "");
    assert.equal((await failure(() => broker.ack(plain, []))).reason, "NOT_DURABLE");
  });

  it("keeps a vanished session's presence for the grace period, then sends the leave", async () => {
    const { watcher, member: gone } = await graceRoom("g");
    await settle();
    assert.deepEqual(watcher.summary().filter((e) => e.startsWith("presence")), ["presence:room:join:w", "presence:room:join:g"]);
    await broker.closeSession(gone, undefined, undefined, true); // the connection dropped: linger
    vi.advanceTimersByTime(4999);
    await settle();
    assert.equal(watcher.summary().filter((e) => e === "presence:room:leave:g").length, 0, "still there within the grace");
    assert.equal((await broker.presence(user("w"), "room")).sessionCount, 2);
    vi.advanceTimersByTime(1);
    await settle();
    assert.equal(watcher.summary().filter((e) => e === "presence:room:leave:g").length, 1);
    assert.equal((await broker.presence(user("w"), "room")).sessionCount, 1);
  });

  it("lets a reconnect within the grace take the presence over: an update, no leave, no join", async () => {
    const { watcher, member: first } = await graceRoom("f");
    await broker.closeSession(first, undefined, undefined, true);
    vi.advanceTimersByTime(2000);
    const again = broker.openSession(user("f"), "phone", "", first.id);
    await broker.join(again, [{ room: "room" }]);
    await broker.settleAdoption(again);
    // A second drop: the client names its last session, whose entries still carry the first one's id.
    await broker.closeSession(again, undefined, undefined, true);
    vi.advanceTimersByTime(2000);
    const third = broker.openSession(user("f"), "phone", "", again.id);
    await broker.join(third, [{ room: "room" }]);
    await broker.settleAdoption(third);
    vi.advanceTimersByTime(10_000);
    await settle();
    assert.deepEqual(
      watcher.summary().filter((e) => e.startsWith("presence") && e.endsWith(":f")),
      ["presence:room:join:f", "presence:room:update:f", "presence:room:update:f"],
    );
    const entries = (await broker.presence(user("w"), "room")).entries;
    assert.deepEqual(entries.map((e) => [e.user, e.sessionId]), [["w", watcher.session.presenceId], ["f", first.id]]);
    // Another user cannot take it over.
    const thief = broker.openSession(user("mallory"), "", "", first.id);
    assert.equal(thief.presenceId, thief.id);
  });

  it("ends a stream that falls too far behind with SLOW_CONSUMER and drops its backlog", async () => {
    broker = inProcessBroker({ sessionQueueLimit: 5, publishRate: 0 });
    const slow = broker.openSession(user("s"), "");
    await broker.join(slow, [{ room: "r" }]);
    for (let i = 0; i < 10; i++)
      await broker.publish(user("p"), { room: "r", content: `m${i}`, payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    assert.equal(slow.isEnded, true);
    assert.equal(slow.error?.reason, "SLOW_CONSUMER");
    assert.deepEqual(slow.drain(), []);
  });
});
