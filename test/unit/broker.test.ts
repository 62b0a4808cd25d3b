import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, vi } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { failure, FAKE_TIMERS, inProcessBroker, settle, Stream, user } from "../support/in-process.js";

/**
 * The broker's domain driven in this process, without a transport: sessions,
 * fan-out through the room index, join planning, publishing limits, history,
 * admin and shutdown. Presence is in broker-presence.test.ts, the timers on
 * vitest's fake clock in broker-timers.test.ts.
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
