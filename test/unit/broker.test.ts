import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, vi } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { failure, FAKE_TIMERS, inProcessBroker, settle, Stream, user } from "../support/in-process.js";

/**
 * The broker's domain driven in this process, without a transport: sessions,
 * the room index, join planning, rate limits, presence and the timers
 * (heartbeats, ack deadlines, presence grace) on vitest's fake clock.
 */

describe("broker sessions and fan-out", () => {
  let broker: Broker;
  beforeEach(() => {
    broker = inProcessBroker();
  });
  afterEach(() => broker.close());

  it("starts every stream with session_started, then subscribed, then messages in order", async () => {
    const stream = new Stream(broker.openSession(user("alice"), "laptop"));
    await broker.join(stream.session, [{ room: "general" }]);
    for (const text of ["one", "two", "three"]) await broker.publish(user("bob"), { room: "general", content: text, payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    assert.deepEqual(stream.summary().slice(0, 2), ["session_started", "subscribed:general:false"]);
    assert.deepEqual(stream.messages("general"), ["one", "two", "three"]);
    assert.equal(broker.sessionCount, 1);
  });

  it("stores every message published without attributes with one shared empty object, as protobuf-es requests bring a new one each", async () => {
    const publish = (content: string, attributes: Record<string, string>) =>
      broker.publish(user("p"), { room: "general", content, payload: new Uint8Array(), attributes, clientMessageId: "" });
    const [a, b, c] = [await publish("a", {}), await publish("b", {}), await publish("c", { lang: "en" })];
    assert.equal(a.message.attributes, b.message.attributes, "one object for both");
    assert.ok(Object.isFrozen(a.message.attributes));
    assert.deepEqual(a.message.attributes, {});
    assert.deepEqual(c.message.attributes, { lang: "en" });
    const page = await broker.history(user("p"), { room: "general", after: 0n, before: 0n, limit: 10, direction: "forward" });
    assert.deepEqual(page.messages.map((m) => [m.content, m.attributes]), [["a", {}], ["b", {}], ["c", { lang: "en" }]]);
  });

  it("fans out only to the sessions of the room (room index), by name and by pattern", async () => {
    const general = new Stream(broker.openSession(user("a"), ""));
    const sports = new Stream(broker.openSession(user("b"), ""));
    const pattern = new Stream(broker.openSession(user("c"), ""));
    await broker.join(general.session, [{ room: "general" }]);
    await broker.join(sports.session, [{ room: "sports.football" }]);
    await broker.join(pattern.session, [{ room: "sports.*" }]);
    const publish = (room: string, content: string) =>
      broker.publish(user("p"), { room, content, payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    await publish("general", "g1");
    await publish("sports.football", "goal");
    await publish("sports.tennis", "ace");
    await publish("sports.football.uk", "too deep for *");
    assert.deepEqual(general.messages(), ["g1"]);
    assert.deepEqual(sports.messages(), ["goal"]);
    assert.deepEqual(pattern.messages(), ["goal", "ace"]);
    // A pattern match announces each room once, with the pattern.
    const subscribed = pattern.events.filter((e) => e.type === "subscribed");
    assert.deepEqual(
      subscribed.map((e) => e.type === "subscribed" && [e.room, e.pattern]),
      [["sports.*", "sports.*"], ["sports.football", "sports.*"], ["sports.tennis", "sports.*"]],
    );
  });

  it("stops delivering a room after Leave, with an unsubscribed event", async () => {
    const stream = new Stream(broker.openSession(user("a"), ""));
    await broker.join(stream.session, [{ room: "r" }]);
    await broker.publish(user("p"), { room: "r", content: "before", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    await broker.leave(stream.session, ["r"]);
    await broker.publish(user("p"), { room: "r", content: "after", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    assert.deepEqual(stream.messages(), ["before"]);
    assert.equal(stream.summary().at(-1), "unsubscribed:r");
  });

  it("replays after `since` with no hole or duplicate at the seam, and says when it cannot", async () => {
    const small = inProcessBroker({ historySize: 3 });
    try {
      const publish = (content: string) =>
        small.publish(user("p"), { room: "r", content, payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
      const first = await publish("m1");
      for (const c of ["m2", "m3"]) await publish(c);
      const resumed = new Stream(small.openSession(user("a"), ""));
      await small.join(resumed.session, [{ room: "r", since: { epoch: first.message.epoch, sequence: 1n } }]);
      await publish("m4");
      const withoutPresence = (stream: Stream) => stream.summary().slice(1).filter((e) => !e.startsWith("presence"));
      assert.deepEqual(withoutPresence(resumed), ["subscribed:r:true", "message:r:m2", "message:r:m3", "message:r:m4"]);
      // m1..m2 are trimmed now (3 kept): a resume from 0 cannot be served.
      const late = new Stream(small.openSession(user("b"), ""));
      await small.join(late.session, [{ room: "r", since: { epoch: first.message.epoch, sequence: 0n } }]);
      assert.deepEqual(withoutPresence(late), ["subscribed:r:false"]);
      // Another epoch cannot be resumed either.
      const stale = new Stream(small.openSession(user("c"), ""));
      await small.join(stale.session, [{ room: "r", since: { epoch: "gone", sequence: 4n } }]);
      assert.deepEqual(withoutPresence(stale), ["subscribed:r:false"]);
    } finally {
      await small.close();
    }
  });

  it("validates sessions: empty id, unknown id, another user's session, bad subscriber names", async () => {
    const session = broker.openSession(user("alice"), "");
    assert.equal(broker.getSession(session.id, "alice"), session);
    assert.equal((await failure(() => broker.getSession("", "alice"))).reason, "INVALID_REQUEST");
    assert.equal((await failure(() => broker.getSession("nope", "alice"))).reason, "SESSION_NOT_FOUND");
    assert.equal((await failure(() => broker.getSession(session.id, "mallory"))).reason, "SESSION_FORBIDDEN");
    assert.equal((await failure(() => broker.openSession(user("a"), "", "bad name"))).code, "invalid_argument");
    assert.equal((await failure(() => broker.openSession(user("a"), "x".repeat(65)))).code, "invalid_argument");
    await broker.closeSession(session);
    assert.equal((await failure(() => broker.getSession(session.id, "alice"))).reason, "SESSION_NOT_FOUND");
  });
});

describe("presence at join", () => {
  let broker: Broker;
  beforeEach(() => {
    broker = inProcessBroker();
  });
  afterEach(() => broker.close());

  /** Presence as the client of `stream` knows it: the last `subscribed.present` of the room, then the events after it. */
  const view = (stream: Stream, room: string): string[] => {
    stream.read();
    const users = new Map<string, string>();
    // A live session gets a turn's changes as one presence_changes event: apply them one by one.
    const events = stream.events.flatMap((e) => (e.type === "presence_changes" ? e.changes.map((c) => ({ type: "presence" as const, room: e.room, ...c })) : [e]));
    for (const e of events) {
      if (e.type === "subscribed" && e.room === room) {
        users.clear();
        for (const entry of e.present ?? []) users.set(entry.sessionId, `${entry.user}:${entry.state}`);
      } else if (e.type === "presence" && e.room === room) {
        if (e.kind === "leave") assert.ok(users.delete(e.entry.sessionId), `leave of ${e.entry.user}, who was not listed`);
        else if (e.kind === "join") {
          assert.ok(!users.has(e.entry.sessionId), `second join of ${e.entry.user}`);
          users.set(e.entry.sessionId, `${e.entry.user}:${e.entry.state}`);
        } else users.set(e.entry.sessionId, `${e.entry.user}:${e.entry.state}`);
      }
    }
    return [...users.values()].sort();
  };

  it("lists who is already there in `subscribed`; later changes follow as events", async () => {
    const a = new Stream(broker.openSession(user("ann"), "phone"));
    await broker.join(a.session, [{ room: "r" }]);
    await broker.setPresence(a.session, "away");
    const b = new Stream(broker.openSession(user("bob"), ""));
    await broker.join(b.session, [{ room: "r" }, { room: "@bob" }]);
    await settle();
    b.read();
    const subscribed = b.events.filter((e) => e.type === "subscribed");
    assert.deepEqual(
      subscribed.map((e) => [e.room, (e.present ?? []).map((p) => `${p.user}/${p.device}:${p.state}`)]).sort(),
      [["@bob", []], ["r", ["ann/phone:away"]]],
    );
    assert.deepEqual(view(b, "r"), ["ann:away", "bob:online"]);
    await broker.leave(a.session, ["r"]);
    await settle(); // presence changes go out at the end of the turn
    assert.deepEqual(view(b, "r"), ["bob:online"]);
  });

  it("neither loses nor doubles a change made while the joiner reads the list", async () => {
    const [ann, bob, dan, cid] = ["ann", "bob", "dan", "cid"].map((name) => new Stream(broker.openSession(user(name), "")));
    await broker.join(ann!.session, [{ room: "busy" }]);
    await broker.join(bob!.session, [{ room: "busy" }]);
    const list = broker.engine.presenceList.bind(broker.engine);
    let reads = 0;
    // cid's read of the list races with changes, as it may on an engine across the network:
    // ann goes away and dan joins before the read, bob leaves after it.
    vi.spyOn(broker.engine, "presenceList").mockImplementation(async (room) => {
      if (reads++ > 0) return list(room);
      await broker.setPresence(ann!.session, "away");
      await broker.join(dan!.session, [{ room: "busy" }]);
      const present = await list(room);
      await broker.leave(bob!.session, ["busy"]);
      return present;
    });
    await broker.join(cid!.session, [{ room: "busy" }]);
    await settle();
    for (const s of [ann!, cid!, dan!]) assert.deepEqual(view(s, "busy"), ["ann:away", "cid:online", "dan:online"], s.session.user);
  });
});

describe("join planning", () => {
  let broker: Broker;
  beforeEach(() => {
    broker = inProcessBroker({ maxRoomsPerSession: 3 });
  });
  afterEach(() => broker.close());

  it("refuses a bad request as a whole, before anything changes", async () => {
    const session = broker.openSession(user("a"), "");
    const cases: Array<[Parameters<Broker["join"]>[1], string]> = [
      [[{ room: "ok" }, { room: "not ok" }], "INVALID_ROOM"],
      [[{ room: "sports.>.x" }], "INVALID_ROOM"],
      [[{ room: "sports.*", since: { epoch: "e", sequence: 1n } }], "INVALID_POSITION"],
      [[{ room: "r", since: { epoch: "", sequence: 5n } }], "INVALID_POSITION"],
      [[{ room: "r", filter: "content ==" }], "INVALID_FILTER"],
      [[{ room: "r", filter: "nosuchvar == 1" }], "INVALID_FILTER"],
      [[{ room: "@bob" }], "INBOX_FORBIDDEN"],
      [[{ room: "a" }, { room: "b" }, { room: "c" }, { room: "d" }], "ROOM_LIMIT"],
    ];
    for (const [rooms, reason] of cases) assert.equal((await failure(() => broker.join(session, rooms))).reason, reason, JSON.stringify(rooms, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    assert.equal(session.rooms.size + session.patterns.size, 0, "nothing was joined");
    await broker.join(session, [{ room: "a" }, { room: "a" }, { room: "@a" }]);
    assert.deepEqual([...session.rooms.keys()].sort(), ["@a", "a"], "duplicates count once; one's own inbox is allowed");
    // The limit counts what the session already holds.
    assert.equal((await failure(() => broker.join(session, [{ room: "b" }, { room: "c" }]))).reason, "ROOM_LIMIT");
  });

  it("applies the token's read patterns", async () => {
    const limited = broker.openSession(user("t", { subscribe: ["team.*"] }), "");
    await broker.join(limited, [{ room: "team.red" }]);
    assert.equal((await failure(() => broker.join(limited, [{ room: "general" }]))).reason, "ROOM_FORBIDDEN");
  });
});

describe("publishing limits", () => {
  afterEach(() => vi.useRealTimers());

  it("rate-limits per user with a retry hint, and refills with time", async () => {
    vi.useFakeTimers(FAKE_TIMERS);
    const broker = inProcessBroker({ publishRate: 10, publishBurst: 3 });
    try {
      const publish = (who: string) =>
        broker.publish(user(who), { room: "r", content: "x", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
      for (let i = 0; i < 3; i++) await publish("fast");
      const limited = await failure(() => publish("fast"));
      assert.equal(limited.reason, "RATE_LIMITED");
      assert.equal(limited.retryAfterMs, 100);
      await publish("calm"); // another user is not affected
      vi.advanceTimersByTime(100);
      await publish("fast");
    } finally {
      await broker.close();
    }
  });

  it("validates message bodies", async () => {
    const broker = inProcessBroker({ maxMessageBytes: 10 });
    try {
      const publish = (body: { content?: string; attributes?: Record<string, string>; clientMessageId?: string }) =>
        broker.publish(user("a"), { room: "r", content: "", payload: new Uint8Array(), attributes: {}, clientMessageId: "", ...body });
      assert.equal((await failure(() => publish({}))).reason, "INVALID_MESSAGE");
      assert.equal((await failure(() => publish({ content: "x", attributes: { "": "v" } }))).reason, "INVALID_MESSAGE");
      const big = await failure(() => publish({ content: "12345", attributes: { key: "value" } }));
      assert.deepEqual([big.reason, big.metadata], ["MESSAGE_TOO_LARGE", { limit_bytes: "10", size_bytes: "13" }]);
      assert.equal((await failure(() => publish({ content: "x", clientMessageId: "c".repeat(129) }))).reason, "INVALID_REQUEST");
    } finally {
      await broker.close();
    }
  });
});

describe("timers on the fake clock", () => {
  let broker: Broker;
  afterEach(async () => {
    await broker.close();
    vi.useRealTimers();
  });

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
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ presenceGraceMs: 5000, heartbeatIntervalMs: 0, ackDeadlineMs: 0 });
    const watcher = new Stream(broker.openSession(user("w"), ""));
    await broker.join(watcher.session, [{ room: "room" }]);
    const gone = broker.openSession(user("g"), "phone");
    await broker.join(gone, [{ room: "room" }]);
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
    vi.useFakeTimers(FAKE_TIMERS);
    broker = inProcessBroker({ presenceGraceMs: 5000, heartbeatIntervalMs: 0, ackDeadlineMs: 0 });
    const watcher = new Stream(broker.openSession(user("w"), ""));
    await broker.join(watcher.session, [{ room: "room" }]);
    const first = broker.openSession(user("f"), "phone");
    await broker.join(first, [{ room: "room" }]);
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

describe("admin and shutdown", () => {
  it("clears a room's history for admins only; holders get a reset", async () => {
    const broker = inProcessBroker();
    try {
      const stream = new Stream(broker.openSession(user("r"), ""));
      await broker.join(stream.session, [{ room: "r" }]);
      await broker.publish(user("p"), { room: "r", content: "old", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
      assert.equal((await failure(() => broker.clearHistory(user("p"), "r"))).reason, "ADMIN_REQUIRED");
      const position = await broker.clearHistory(user("root", { admin: true }), "r");
      assert.equal(position.sequence, 0n);
      assert.equal(stream.summary().at(-1), "reset:r");
      const page = await broker.history(user("p"), { room: "r", after: 0n, before: 0n, limit: 0, direction: "forward" });
      assert.deepEqual([page.messages.length, page.position.epoch], [0, position.epoch]);
    } finally {
      await broker.close();
    }
  });

  it("on close ends every stream with SHUTTING_DOWN, telling none of them that the others left", async () => {
    const broker = inProcessBroker();
    const engine = broker.engine;
    const a = new Stream(broker.openSession(user("a"), ""));
    const b = new Stream(broker.openSession(user("b"), ""));
    await broker.join(a.session, [{ room: "r" }]);
    await broker.join(b.session, [{ room: "r" }]);
    await broker.publish(user("a"), { room: "r", content: "last words", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
    const c = new Stream(broker.openSession(user("c"), ""));
    await broker.join(c.session, [{ room: "r" }]);
    await broker.closeSession(c.session, undefined, false, true); // vanished: its presence is held for the grace period
    await settle();
    const listed = vi.spyOn(engine, "presenceRemove");
    await broker.close();
    for (const stream of [a, b]) {
      assert.equal(stream.session.error?.reason, "SHUTTING_DOWN");
      // What was queued still goes out; no leave does.
      assert.ok(stream.messages("r").includes("last words"));
      assert.ok(!stream.summary().some((e) => e.includes(":leave:")), stream.summary().join(" "));
    }
    // The entries are gone all the same (a shared engine must keep no ghosts), held ones too.
    assert.deepEqual(listed.mock.calls.map(([room, id]) => `${room}:${id}`).sort(), [`r:${a.session.id}`, `r:${b.session.id}`, `r:${c.session.id}`].sort());
    assert.equal((await failure(() => broker.publish(user("a"), { room: "r", content: "x", payload: new Uint8Array(), attributes: {}, clientMessageId: "" }))).reason, "SHUTTING_DOWN");
  });
});

describe("history queries", () => {
  it("pages forward and backward, filters, and validates the range", async () => {
    const broker = inProcessBroker({ publishRate: 0 });
    try {
      for (let i = 1; i <= 10; i++)
        await broker.publish(user("p"), { room: "h", content: `m${i}`, payload: new Uint8Array(), attributes: { even: String(i % 2 === 0) }, clientMessageId: "" });
      const read = (q: Partial<Parameters<Broker["history"]>[1]>) =>
        broker.history(user("r"), { room: "h", after: 0n, before: 0n, limit: 0, direction: "forward", ...q });
      assert.deepEqual((await read({ limit: 3 })).messages.map((m) => m.content), ["m1", "m2", "m3"]);
      assert.deepEqual((await read({ limit: 3, direction: "backward" })).messages.map((m) => m.content), ["m8", "m9", "m10"]);
      const evens = await read({ filter: 'attributes.even == "true"', limit: 2, after: 3n });
      assert.deepEqual([evens.messages.map((m) => m.content), evens.hasMore], [["m4", "m6"], true]);
      assert.equal((await failure(() => read({ after: 5n, before: 6n }))).reason, "INVALID_POSITION");
      assert.equal((await failure(() => read({ limit: 1001 }))).reason, "INVALID_REQUEST");
      assert.equal((await failure(() => read({ room: "@someone" }))).reason, "INBOX_FORBIDDEN");
    } finally {
      await broker.close();
    }
  });
});

describe("presence in large rooms", () => {
  it("sends a turn's presence changes to each member as one event, in order with the room's messages", async () => {
    const broker = inProcessBroker({ publishRate: 0 });
    try {
      const members = Array.from({ length: 5 }, (_, i) => new Stream(broker.openSession(user(`m${i}`), "")));
      for (const m of members) await broker.join(m.session, [{ room: "big" }]);
      await settle();
      for (const m of members) m.read();
      // Ten sessions join in the same turn, a message is published among them.
      const joiners = Array.from({ length: 10 }, (_, i) => broker.openSession(user(`j${i}`), ""));
      // All within one event-loop turn (the memory engine never leaves it).
      await Promise.all(joiners.slice(0, 6).map((s) => broker.join(s, [{ room: "big" }])));
      await broker.publish(user("p"), { room: "big", content: "in between", payload: new Uint8Array(), attributes: {}, clientMessageId: "" });
      await Promise.all(joiners.slice(6).map((s) => broker.join(s, [{ room: "big" }])));
      await settle();
      const firstBatch: unknown[] = [];
      for (const m of members) {
        const fresh = m.read();
        firstBatch.push(fresh.find((e) => e.type === "presence_changes"));
        const batches = fresh.filter((e) => e.type === "presence_changes");
        const changes = batches.flatMap((e) => (e.type === "presence_changes" ? e.changes : []));
        assert.equal(changes.length, 10, "every join, once");
        assert.equal(batches.length, 2, "the joins before the message, and those after it");
        assert.ok(fresh.every((e) => e.type !== "presence"), "no single presence events to a live member");
      }
      // One shared event object per batch: encoded once for every member.
      assert.ok(firstBatch[0] && firstBatch.every((e) => e === firstBatch[0]));
      // Order with messages: the message sits between the joins before it and after it.
      const timeline = members[0]!.summary().filter((e) => e.startsWith("message") || e.includes(":join:j"));
      assert.equal(timeline.indexOf("message:big:in between"), 6, timeline.join(" "));
    } finally {
      await broker.close();
    }
  });

  it("turns presence events off in a room with more members than presenceEventsMax; GetPresence still counts them", async () => {
    const broker = inProcessBroker({ presenceEventsMax: 3 });
    try {
      const streams = Array.from({ length: 5 }, (_, i) => new Stream(broker.openSession(user(`u${i}`), "")));
      for (const s of streams) await broker.join(s.session, [{ room: "crowd" }]);
      await settle();
      const seenBy = (s: Stream) => s.summary().filter((e) => e.startsWith("presence")).length;
      // The first member saw joins while the room was small (3 members or fewer), none after.
      assert.deepEqual(streams.map(seenBy), [3, 2, 1, 0, 0]);
      const late = streams[4]!.events.find((e) => e.type === "subscribed");
      assert.deepEqual(late?.type === "subscribed" && late.present, [], "no presence list at join above the limit either");
      assert.equal((await broker.presence(user("x"), "crowd")).sessionCount, 5);
    } finally {
      await broker.close();
    }
  });
});
