import assert from "node:assert/strict";
import { afterEach, describe, it, vi } from "vitest";
import type { Broker, PublishInput } from "../../src/broker/broker.js";
import { failure, FAKE_TIMERS, inProcessBroker, settle, Stream, user } from "../support/in-process.js";

/**
 * Issue 10 §3 in the broker's domain: rooms are not created by reads, a
 * room's first epoch is adopted by those who joined it before, per-user
 * quotas (sessions, rooms touched per second) and the bound on bytes queued
 * for all subscribers together, which cuts the largest first.
 */

const message = (room: string, content: string, payloadBytes = 0): PublishInput => ({
  room,
  content,
  payload: new Uint8Array(payloadBytes),
  attributes: {},
  clientMessageId: "",
});

const NONE = { epoch: "", sequence: 0n };

let broker: Broker;
afterEach(async () => {
  await broker.close();
  vi.useRealTimers();
});

describe("rooms are created by writes, not reads", () => {
  it("leaves no room behind after history, presence, join, leave and a closed session on unknown rooms", async () => {
    broker = inProcessBroker();
    for (let i = 0; i < 20; i++) await broker.history(user("u"), { room: `read-${i}`, after: 0n, before: 0n, limit: 0, direction: "forward" });
    for (let i = 0; i < 20; i++) await broker.presence(user("u"), `presence-${i}`);
    const stream = new Stream(broker.openSession(user("u"), ""));
    await broker.join(stream.session, [{ room: "joined-left" }, { room: "joined-closed" }]);
    await broker.leave(stream.session, ["joined-left"]);
    await broker.closeSession(stream.session);
    const rooms = [
      ...Array.from({ length: 20 }, (_, i) => `read-${i}`),
      ...Array.from({ length: 20 }, (_, i) => `presence-${i}`),
      "joined-left",
      "joined-closed",
    ];
    for (const room of rooms) assert.deepEqual(await broker.engine.position(room), NONE, `${room} was not created`);
    // The observable above can fail: a publish does create its room.
    await broker.publish(user("u"), message("read-0", "now it exists"));
    assert.equal((await broker.engine.position("read-0")).sequence, 1n);
  });

  it("announces an unknown room at (\"\", 0) and adopts its first epoch: messages and acks of it count", async () => {
    broker = inProcessBroker();
    const stream = new Stream(broker.openSession(user("alice"), "", "phone"));
    await broker.join(stream.session, [{ room: "fresh" }]);
    const first = await broker.publish(user("bob"), message("fresh", "one"));
    assert.notEqual(first.message.epoch, "");
    const events = stream.read();
    const subscribed = events.find((e) => e.type === "subscribed");
    assert.deepEqual(subscribed?.type === "subscribed" && subscribed.position, NONE);
    assert.deepEqual(stream.messages("fresh"), ["one"]);
    // The durable subscriber's ack of the adopted epoch is kept (an ack of another epoch would be ignored).
    await broker.ack(stream.session, [{ room: "fresh", position: { epoch: first.message.epoch, sequence: 1n } }]);
    assert.deepEqual(await broker.engine.ackGet("alice/phone", "fresh"), { epoch: first.message.epoch, sequence: 1n });
  });

  it("replays a room's lineage from its start to a resume from (\"\", 0)", async () => {
    broker = inProcessBroker();
    for (const content of ["m1", "m2"]) await broker.publish(user("bob"), message("later", content));
    const resumed = new Stream(broker.openSession(user("alice"), ""));
    await broker.join(resumed.session, [{ room: "later", since: NONE }]);
    assert.deepEqual(resumed.summary().slice(1, 2), ["subscribed:later:true"]);
    assert.deepEqual(resumed.messages("later"), ["m1", "m2"]);
  });
});

describe("idle rooms are forgotten", () => {
  it("drops a room whose history expired and that nobody holds within a minute or so, keeping held ones", async () => {
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ historyTtlMs: 1000, dedupeWindowMs: 1000, publishRate: 0 });
    const first = await broker.publish(user("p"), message("gone", "old"));
    await broker.publish(user("p"), message("held", "old"));
    const holder = broker.openSession(user("h"), "");
    await broker.join(holder, [{ room: "held" }]);
    vi.advanceTimersByTime(30_000);
    await settle();
    assert.equal((await broker.engine.position("gone")).epoch, first.message.epoch, "not swept yet");
    vi.advanceTimersByTime(40_000);
    await settle();
    assert.deepEqual(await broker.engine.position("gone"), NONE);
    assert.equal((await broker.engine.position("held")).sequence, 1n, "a room someone holds is kept");
    // A reader resuming from the forgotten lineage is told it cannot be recovered.
    const resumed = new Stream(broker.openSession(user("r"), ""));
    await broker.join(resumed.session, [{ room: "gone", since: { epoch: first.message.epoch, sequence: 1n } }]);
    assert.deepEqual(resumed.summary().slice(1, 2), ["subscribed:gone:false"]);
  });
});

describe("per-user quotas", () => {
  it("refuses a session over --user-sessions-max with SESSION_QUOTA, frees the slot on close, exempts admins", async () => {
    broker = inProcessBroker({ userSessionsMax: 2 });
    const a = broker.openSession(user("u"), "");
    broker.openSession(user("u"), "");
    const refused = await failure(() => broker.openSession(user("u"), ""));
    assert.deepEqual([refused.code, refused.reason, refused.metadata.limit], ["resource_exhausted", "SESSION_QUOTA", "2"]);
    broker.openSession(user("other"), "");
    for (let i = 0; i < 3; i++) broker.openSession(user("root", { admin: true }), "");
    await broker.closeSession(a);
    broker.openSession(user("u"), "");
    assert.equal((await failure(() => broker.openSession(user("u"), ""))).reason, "SESSION_QUOTA");
  });

  it("refuses touching more distinct rooms per second than --user-rooms-per-second with ROOM_QUOTA and a retry hint", async () => {
    vi.useFakeTimers(FAKE_TIMERS);
    // 5/s, burst max(2 × 5, 4 rooms per session) = 10.
    broker = inProcessBroker({ userRoomsPerSecond: 5, maxRoomsPerSession: 4, publishRate: 0 });
    const read = (who: string, room: string, admin = false) =>
      broker.history(user(who, { admin }), { room, after: 0n, before: 0n, limit: 0, direction: "forward" });
    for (let i = 0; i < 10; i++) await read("u", `r${i}`);
    const refused = await failure(() => read("u", "r10"));
    assert.deepEqual([refused.code, refused.reason, refused.metadata.rooms_per_second], ["resource_exhausted", "ROOM_QUOTA", "5"]);
    assert.ok(refused.retryAfterMs !== undefined && refused.retryAfterMs > 0 && refused.retryAfterMs <= 200);
    // Rooms touched within the last second again cost nothing; other users and admins have their own (or no) quota.
    for (let round = 0; round < 3; round++) await read("u", "r3");
    await read("v", "r10");
    for (let i = 0; i < 30; i++) await read("root", `admin-${i}`, true);
    // Joins and publishes count like reads.
    const session = broker.openSession(user("u"), "");
    assert.equal((await failure(() => broker.join(session, [{ room: "j1" }]))).reason, "ROOM_QUOTA");
    assert.equal((await failure(() => broker.publish(user("u"), message("p1", "x")))).reason, "ROOM_QUOTA");
    // A second refills 5 rooms.
    vi.advanceTimersByTime(1000);
    await broker.join(session, [{ room: "j1" }, { room: "j2" }]);
    await broker.publish(user("u"), message("p1", "x"));
    await read("u", "r11");
    await read("u", "r12");
    assert.equal((await failure(() => read("u", "r13"))).reason, "ROOM_QUOTA");
  });
});

describe("slow consumers are gone at once", () => {
  it("removes a consumer cut off for its own queue from presence and the room at once", async () => {
    broker = inProcessBroker({ sessionQueueLimit: 20, publishRate: 0, presenceGraceMs: 60_000 });
    const watcher = new Stream(broker.openSession(user("watcher"), ""));
    const slow = broker.openSession(user("slow"), "");
    await broker.join(watcher.session, [{ room: "r" }]);
    await broker.join(slow, [{ room: "r" }]);
    assert.equal((await broker.presence(user("x"), "r")).sessionCount, 2);
    for (let i = 0; i < 30; i++) {
      await broker.publish(user("p"), message("r", `m${i}`));
      watcher.read();
    }
    assert.equal(slow.error?.reason, "SLOW_CONSUMER");
    await settle();
    broker.flusher.run();
    // No grace period: the broker cut it, the client did not vanish.
    assert.deepEqual((await broker.presence(user("x"), "r")).entries.map((e) => e.user), ["watcher"]);
    assert.ok(watcher.summary().includes("presence:r:leave:slow"), "the others see it leave");
    assert.equal(broker.sessionCount, 1);
  });

  it("cuts the consumers holding the most when all queues together pass --queue-bytes-total, never the publish", async () => {
    // Each message is ~10 KB queued per session; the limit is 4.5 of them.
    broker = inProcessBroker({ queueBytesTotal: 45_000, sessionQueueBytes: 1 << 20, publishRate: 0 });
    const reader = new Stream(broker.openSession(user("reader"), ""));
    const hoarder = new Stream(broker.openSession(user("hoarder"), ""));
    const bystander = new Stream(broker.openSession(user("bystander"), ""));
    await broker.join(reader.session, [{ room: "big" }]);
    await broker.join(hoarder.session, [{ room: "big" }]);
    await broker.join(bystander.session, [{ room: "quiet" }]);
    reader.read();
    for (let i = 0; i < 3; i++) {
      await broker.publish(user("p"), message("big", `m${i}`, 10_000));
      reader.read(); // the reader keeps up, the hoarder does not read at all
    }
    assert.equal(hoarder.session.isEnded, false, "under the limit: nobody is cut");
    const last = await broker.publish(user("p"), message("big", "m3", 10_000));
    assert.equal(last.duplicate, false, "the publish that crossed the limit is committed and acknowledged");
    assert.equal(hoarder.session.error?.reason, "BROKER_OVERLOADED");
    assert.equal(hoarder.session.error?.code, "resource_exhausted");
    assert.equal(reader.session.isEnded, false);
    assert.equal(bystander.session.isEnded, false);
    assert.ok(broker.queueBudget.total <= 45_000, `total ${broker.queueBudget.total} back under the limit`);
    assert.deepEqual(reader.messages("big"), ["m0", "m1", "m2", "m3"]);
    await settle();
    broker.flusher.run();
    assert.deepEqual((await broker.presence(user("x"), "big")).entries.map((e) => e.user), ["reader"]);
    assert.equal(broker.queueBudget.cuts, 1);
  });
});
