import assert from "node:assert/strict";
import { it } from "vitest";
import { draft, freshRoom, publishMessage, settle, type ConformanceSuite } from "./conformance-harness.js";

/** Numbers the inbox of the pattern test: an inbox (`@name`) cannot come from freshRoom, whose names are dotted rooms. */
let roomCounter = 0;

/**
 * The conformance of what subscribers hold in an engine: watches by name and
 * by pattern (live fan-out), presence entries in order with the messages,
 * and acks.
 */
export function subscriberConformance({ h }: ConformanceSuite): void {
  it("fans out to watchers only, in sequence order, exactly once", async () => {
    const room = freshRoom("watch");
    await publishMessage(h.engine, draft(room, "before", 1));
    await h.engine.watch(room);
    for (let i = 0; i < 20; i++) await publishMessage(h.engine, draft(room, `live${i}`, 1));
    await settle(() => h.events.filter((e) => e.room === room).length >= 20);
    const seen = h.events.filter((e) => e.room === room).map((e) => (e.event.type === "message" ? e.event.message.sequence : -1n));
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => BigInt(i + 2)));
    await h.engine.unwatch(room);
    await publishMessage(h.engine, draft(room, "after", 1));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.events.filter((e) => e.room === room).length, 20);
  });

  it("watches patterns: every matching room, including ones created later, never inboxes", async () => {
    const base = freshRoom("pattern");
    await h.engine.watch(`${base}.*`);
    await publishMessage(h.engine, draft(`${base}.a`, "a1", 1));
    await publishMessage(h.engine, draft(`${base}.b`, "b1", 1));
    await publishMessage(h.engine, draft(`${base}.a.deeper`, "no", 1));
    await publishMessage(h.engine, draft(base, "no", 1));
    await settle(() => h.events.filter((e) => e.room.startsWith(base)).length >= 2);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(
      h.events.filter((e) => e.room.startsWith(base)).map((e) => e.room),
      [`${base}.a`, `${base}.b`],
    );
    await h.engine.unwatch(`${base}.*`);
    await h.engine.watch(">");
    const inbox = `@conf${roomCounter++}`;
    await publishMessage(h.engine, draft(inbox, "private", 1));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h.events.filter((e) => e.room === inbox).length, 0, "'>' does not match an inbox");
    await h.engine.unwatch(">");
  });

  it("counts watches, and delivers a room watched by name and by pattern once", async () => {
    const base = freshRoom("counted");
    const room = `${base}.a`;
    await h.engine.watch(room);
    await h.engine.watch(room);
    await h.engine.watch(`${base}.*`);
    await h.engine.watch(`${base}.>`);
    await h.engine.unwatch(room);
    await publishMessage(h.engine, draft(room, "once", 1));
    await h.engine.presenceSet(room, { user: "dan", sessionId: "s-c", device: "d", state: "online", joinedAtMs: 1, sinceMs: 1, lastActiveMs: 1 }, "join");
    await settle(() => h.events.filter((e) => e.room === room).length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      h.events.filter((e) => e.room === room).map((e) => e.event.type),
      ["message", "presence"],
      "still watched after one of two unwatches; one event per publish despite three matching watches",
    );
    await h.engine.unwatch(room);
    await h.engine.unwatch(`${base}.*`);
    await h.engine.unwatch(`${base}.>`);
    await publishMessage(h.engine, draft(room, "unwatched", 1));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.events.filter((e) => e.room === room).length, 2);
  });

  it("stores presence entries, lists them by join time, and fans out join and leave", async () => {
    const room = freshRoom("presence");
    await h.engine.watch(room);
    const entry = (sessionId: string, user: string, joinedAtMs: number) => ({
      user,
      sessionId,
      device: "cli",
      state: "online" as const,
      joinedAtMs,
      sinceMs: joinedAtMs,
      lastActiveMs: joinedAtMs,
    });
    await h.engine.presenceSet(room, entry("s2", "bob", 20), "join");
    await h.engine.presenceSet(room, entry("s1", "alice", 10), "join");
    assert.deepEqual((await h.engine.presenceList(room)).map((e) => e.sessionId), ["s1", "s2"]);
    assert.equal(await h.engine.presenceRemove(room, "s2"), true);
    assert.equal(await h.engine.presenceRemove(room, "s2"), false);
    assert.deepEqual((await h.engine.presenceList(room)).map((e) => e.user), ["alice"]);
    await settle(() => h.events.filter((e) => e.room === room).length >= 3);
    assert.deepEqual(
      h.events.filter((e) => e.room === room).map((e) => (e.event.type === "presence" ? `${e.event.kind}:${e.event.entry.user}` : "")),
      ["join:bob", "join:alice", "leave:bob"],
    );
    await h.engine.unwatch(room);
  });

  it("keeps presence events in order with the room's messages", async () => {
    const room = freshRoom("interleave");
    await h.engine.watch(room);
    const entry = { user: "carol", sessionId: "s-int", device: "cli", state: "online" as const, joinedAtMs: 1, sinceMs: 1, lastActiveMs: 1 };
    // Each settles before the next starts, so this is the order the engine committed them in.
    await publishMessage(h.engine, draft(room, "m1", 1));
    await h.engine.presenceSet(room, entry, "join");
    await publishMessage(h.engine, draft(room, "m2", 1));
    await h.engine.presenceSet(room, { ...entry, state: "away" }, "update");
    await publishMessage(h.engine, draft(room, "m3", 1));
    await h.engine.presenceRemove(room, "s-int");
    await settle(() => h.events.filter((e) => e.room === room).length >= 6);
    assert.deepEqual(
      h.events.filter((e) => e.room === room).map((e) => (e.event.type === "message" ? e.event.message.content : e.event.type === "presence" ? e.event.kind : "?")),
      ["m1", "join", "m2", "update", "m3", "leave"],
    );
    await h.engine.unwatch(room);
  });

  it("keeps the highest ack per subscriber and room; another epoch replaces it", async () => {
    const room = freshRoom("acks");
    assert.equal(await h.engine.ackGet("alice/phone", room), undefined);
    await h.engine.ackSet("alice/phone", room, { epoch: "e1", sequence: 5n });
    await h.engine.ackSet("alice/phone", room, { epoch: "e1", sequence: 3n });
    assert.deepEqual(await h.engine.ackGet("alice/phone", room), { epoch: "e1", sequence: 5n });
    assert.equal(await h.engine.ackGet("alice/laptop", room), undefined);
    await h.engine.ackSet("alice/phone", room, { epoch: "e2", sequence: 1n });
    assert.deepEqual(await h.engine.ackGet("alice/phone", room), { epoch: "e2", sequence: 1n });
  });
}
