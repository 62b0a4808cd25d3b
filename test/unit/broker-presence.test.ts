import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, vi } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { inProcessBroker, settle, Stream, user } from "../support/in-process.js";

/**
 * Presence as the broker tells it, in this process without a transport: the list a
 * joiner gets in `subscribed` must agree with the events around it, and large rooms
 * batch or stop presence events. Apart from broker.test.ts because presence has its
 * own invariants (no lost or doubled change, one event per turn) and its own helper.
 * Presence grace, which needs the fake clock, is in broker-timers.test.ts.
 */

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

/** `count` sessions (users prefix0, prefix1, …), each joined to `room` in turn, once their joins settled. */
async function joinedStreams(broker: Broker, prefix: string, count: number, room: string): Promise<Stream[]> {
  const streams = Array.from({ length: count }, (_, i) => new Stream(broker.openSession(user(`${prefix}${i}`), "")));
  for (const s of streams) await broker.join(s.session, [{ room }]);
  await settle();
  return streams;
}

describe("presence in large rooms", () => {
  it("sends a turn's presence changes to each member as one event, in order with the room's messages", async () => {
    const broker = inProcessBroker({ publishRate: 0 });
    try {
      const members = await joinedStreams(broker, "m", 5, "big");
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
      const streams = await joinedStreams(broker, "u", 5, "crowd");
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
