import assert from "node:assert/strict";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { Engine, EngineOptions, MessageDraft, RoomEvent } from "../../src/engine/engine.js";

/**
 * The engine conformance suite: the contract of src/engine/engine.ts, run
 * against every engine. Call it from one test file per engine with a factory
 * that builds a fresh, empty engine.
 */
export interface EngineHarness {
  engine: Engine;
  events: Array<{ room: string; event: RoomEvent }>;
  clock: { now: number };
}

export type EngineFactory = (options: EngineOptions) => Promise<Engine> | Engine;

/** What a multi-node engine promises beyond one node (see the "several nodes" tests). */
export interface SharedStore {
  /**
   * Engines from the factory share one store, as broker nodes on one Redis
   * do. A node that stops (closes without removing its presence entries, as
   * a killed process would) loses them within this many ms of the nodes' clock.
   */
  presenceTtlMs: number;
}

let roomCounter = 0;
/** Unique room names, so engines with shared storage (Redis) need no flush between tests. */
const freshRoom = (label: string) => `conf.${label}.${process.pid}.${Date.now()}.${roomCounter++}`;

const draft = (room: string, content: string, timeMs: number, sender = "alice"): MessageDraft => ({
  room,
  sender,
  content,
  payload: new Uint8Array([1, 2, 3]),
  attributes: { kind: "test" },
  timeMs,
  clientMessageId: `cm-${content}`,
});

const presenceEntry = (sessionId: string, joinedAtMs: number) => ({
  user: "zoe",
  sessionId,
  device: "d",
  state: "online" as const,
  joinedAtMs,
  sinceMs: joinedAtMs,
  lastActiveMs: joinedAtMs,
});

/** The stored message of a publish (these tests never repeat a clientMessageId unless they say so). */
async function publishMessage(engine: Engine, d: MessageDraft) {
  return (await engine.publish(d)).message;
}

export function engineConformance(name: string, factory: EngineFactory, shared?: SharedStore): void {
  describe(`engine conformance: ${name}`, () => {
    const harnesses: EngineHarness[] = [];
    async function open(retention = { historySize: 100, historyTtlMs: 0, dedupeWindowMs: 120_000 }): Promise<EngineHarness> {
      const events: EngineHarness["events"] = [];
      const clock = { now: 1_700_000_000_000 };
      const engine = await factory({
        retention,
        listener: (room, event) => events.push({ room, event }),
        now: () => clock.now,
      });
      const harness = { engine, events, clock };
      harnesses.push(harness);
      return harness;
    }
    afterAll(async () => {
      await Promise.allSettled(harnesses.map((h) => h.engine.close()));
    });

    let h: EngineHarness;
    beforeAll(async () => {
      h = await open();
    });

    it("reads of a room never written create nothing: epoch \"\", sequence 0, until the first publish", async () => {
      const room = freshRoom("pos");
      const empty = { epoch: "", sequence: 0n };
      assert.deepEqual(await h.engine.position(room), empty);
      const page = await h.engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "backward" });
      assert.deepEqual(page, { messages: [], position: empty, firstSequence: 0n, hasMore: false });
      assert.deepEqual(await h.engine.presenceList(room), []);
      assert.equal(await h.engine.presenceRemove(room, "nobody"), false);
      assert.deepEqual(await h.engine.clear(room), empty, "clearing a room never written is a no-op");
      await h.engine.watch(room);
      await h.engine.unwatch(room);
      assert.deepEqual(await h.engine.position(room), empty, "none of the reads above created the room");
      assert.equal(h.events.filter((e) => e.room === room).length, 0, "a no-op clear fans out no reset");
      // A room that only ever had presence is gone with its last entry.
      await h.engine.presenceSet(room, presenceEntry("s1", 1), "join");
      await h.engine.presenceRemove(room, "s1");
      assert.deepEqual(await h.engine.position(room), empty);
      // The first publish creates the lineage: sequence 1 of a fresh, stable epoch.
      const first = await publishMessage(h.engine, draft(room, "first", h.clock.now));
      assert.ok(first.epoch.length > 0);
      assert.equal(first.sequence, 1n);
      assert.deepEqual(await h.engine.position(room), { epoch: first.epoch, sequence: 1n });
      assert.deepEqual(await h.engine.position(room), await h.engine.position(room));
    });

    it("sweep() forgets rooms that retain nothing and nobody holds, and only those", async () => {
      const t = await open({ historySize: 100, historyTtlMs: 1000, dedupeWindowMs: 500 });
      // Optional in the interface (the broker copes without), but every engine seqcast ships has it.
      assert.ok(t.engine.sweep, "the engine forgets idle rooms (sweep)");
      const [idle, watched, present, acked, fresh] = ["idle", "watched", "present", "acked", "fresh"].map((l) => freshRoom(`sweep-${l}`)) as [string, string, string, string, string];
      const old: Record<string, string> = {};
      for (const room of [idle, watched, present, acked]) old[room] = (await publishMessage(t.engine, draft(room, `${room}-1`, t.clock.now))).epoch;
      await t.engine.watch(watched);
      await t.engine.presenceSet(present, presenceEntry("s-sweep", 1), "join");
      await t.engine.ackSet("zoe/app", acked, { epoch: old[acked]!, sequence: 1n });
      t.clock.now += 2000; // past the TTL and the dedupe window
      const kept = await publishMessage(t.engine, draft(fresh, "fresh-1", t.clock.now));
      await t.engine.sweep();
      const empty = { epoch: "", sequence: 0n };
      assert.deepEqual(await t.engine.position(idle), empty, "an idle room is forgotten");
      assert.deepEqual((await t.engine.history(idle, { after: 0n, before: 0n, limit: 10, direction: "forward" })).position, empty);
      for (const room of [watched, present, acked]) assert.deepEqual(await t.engine.position(room), { epoch: old[room], sequence: 1n }, `${room} is held`);
      assert.deepEqual(await t.engine.position(fresh), { epoch: kept.epoch, sequence: 1n }, "a room retaining a message is kept");
      // A forgotten room starts a new lineage on its next publish.
      const again = await publishMessage(t.engine, draft(idle, "idle-2", t.clock.now));
      assert.equal(again.sequence, 1n);
      assert.notEqual(again.epoch, old[idle]);
      await t.engine.unwatch(watched);
    });

    it("assigns 1, 2, 3… per room, under the room's epoch, with every field stored", async () => {
      const room = freshRoom("seq");
      const other = freshRoom("seq-other");
      const m1 = await publishMessage(h.engine, draft(room, "one", 1000));
      const { epoch } = await h.engine.position(room);
      const o1 = await publishMessage(h.engine, draft(other, "x", 1000));
      const m2 = await publishMessage(h.engine, draft(room, "two", 1001, "bob"));
      assert.deepEqual([m1.sequence, m2.sequence, o1.sequence], [1n, 2n, 1n]);
      assert.equal(m1.epoch, epoch);
      assert.notEqual(m1.id, m2.id);
      const page = await h.engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "forward" });
      assert.deepEqual(
        page.messages.map((m) => [m.sequence, m.content, m.sender, m.timeMs, m.clientMessageId, m.attributes.kind]),
        [
          [1n, "one", "alice", 1000, "cm-one", "test"],
          [2n, "two", "bob", 1001, "cm-two", "test"],
        ],
      );
      assert.deepEqual([...page.messages[0]!.payload], [1, 2, 3]);
      assert.deepEqual(page.position, { epoch, sequence: 2n });
    });

    it("keeps sequences gapless under concurrent publishes", async () => {
      const room = freshRoom("burst");
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => publishMessage(h.engine, draft(room, `m${i}`, 1))));
      const sequences = results.map((m) => m.sequence).sort((a, b) => Number(a - b));
      assert.deepEqual(sequences, Array.from({ length: 200 }, (_, i) => BigInt(i + 1)));
    });

    it("pages history forward and backward, ascending either way", async () => {
      const room = freshRoom("page");
      for (let i = 1; i <= 10; i++) await publishMessage(h.engine, draft(room, `m${i}`, i));
      const q = (after: bigint, before: bigint, limit: number, direction: "forward" | "backward") =>
        h.engine.history(room, { after, before, limit, direction });
      const fwd = await q(3n, 0n, 4, "forward");
      assert.deepEqual(fwd.messages.map((m) => m.sequence), [4n, 5n, 6n, 7n]);
      assert.equal(fwd.hasMore, true);
      const back = await q(0n, 0n, 3, "backward");
      assert.deepEqual(back.messages.map((m) => m.sequence), [8n, 9n, 10n]);
      const mid = await q(2n, 6n, 10, "backward");
      assert.deepEqual(mid.messages.map((m) => m.sequence), [3n, 4n, 5n]);
      assert.equal(mid.hasMore, false);
      assert.equal((await q(10n, 0n, 5, "forward")).messages.length, 0);
      assert.equal(fwd.firstSequence, 1n);
    });

    it("trims history to the size limit, oldest first, without touching sequences", async () => {
      const small = await open({ historySize: 3, historyTtlMs: 0, dedupeWindowMs: 120_000 });
      const room = freshRoom("trim");
      for (let i = 1; i <= 7; i++) await publishMessage(small.engine, draft(room, `m${i}`, i));
      const page = await small.engine.history(room, { after: 0n, before: 0n, limit: 100, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => m.sequence), [5n, 6n, 7n]);
      assert.equal(page.firstSequence, 5n);
      assert.equal(page.position.sequence, 7n);
      const old = await small.engine.history(room, { after: 1n, before: 0n, limit: 100, direction: "forward" });
      assert.equal(old.messages[0]?.sequence, 5n, "a query from before the retained range starts at the oldest kept");
    });

    it("drops messages older than the TTL", async () => {
      const ttl = await open({ historySize: 100, historyTtlMs: 60_000, dedupeWindowMs: 120_000 });
      const room = freshRoom("ttl");
      await publishMessage(ttl.engine, draft(room, "old", ttl.clock.now));
      ttl.clock.now += 30_000;
      await publishMessage(ttl.engine, draft(room, "new", ttl.clock.now));
      ttl.clock.now += 45_000; // "old" is 75 s old, "new" 45 s
      const page = await ttl.engine.history(room, { after: 0n, before: 0n, limit: 100, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => m.content), ["new"]);
      assert.equal(page.firstSequence, 2n);
      ttl.clock.now += 60_000;
      const empty = await ttl.engine.history(room, { after: 0n, before: 0n, limit: 100, direction: "forward" });
      assert.equal(empty.messages.length, 0);
      assert.equal(empty.firstSequence, 0n);
      assert.equal(empty.position.sequence, 2n, "expiry never rewinds the sequence");
    });

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

    it("stores causal dependencies with the message: publish, live delivery and history, single and batched", async () => {
      const room = freshRoom("deps");
      const dependencies = [
        { room: "general", epoch: "e-1", sequence: 7n },
        { room: "@carol", epoch: "e-2", sequence: 18_446_744_073_709_551_615n },
      ];
      await h.engine.watch(room);
      const published = await publishMessage(h.engine, { ...draft(room, "with", 1), dependencies });
      const plain = await publishMessage(h.engine, draft(room, "without", 1));
      const batched = h.engine.publishBatch
        ? (await h.engine.publishBatch([{ ...draft(room, "batched", 1), dependencies: dependencies.slice(1) }]))[0]!.message
        : await publishMessage(h.engine, { ...draft(room, "batched", 1), dependencies: dependencies.slice(1) });
      assert.deepEqual(published.dependencies, dependencies);
      assert.deepEqual(batched.dependencies, dependencies.slice(1));
      assert.equal(plain.dependencies?.length ?? 0, 0, "none stored when none published");
      await settle(() => h.events.filter((e) => e.room === room).length >= 3);
      const live = h.events.filter((e) => e.room === room).map((e) => (e.event.type === "message" ? e.event.message.dependencies ?? [] : undefined));
      assert.deepEqual(live, [dependencies, [], dependencies.slice(1)]);
      const page = await h.engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => m.dependencies ?? []), [dependencies, [], dependencies.slice(1)]);
      await h.engine.unwatch(room);
    });

    it("deduplicates a repeated (room, sender, clientMessageId) within the window, and only then", async () => {
      const room = freshRoom("dedupe");
      const first = await h.engine.publish(draft(room, "once", h.clock.now));
      const retry = await h.engine.publish(draft(room, "once", h.clock.now));
      assert.equal(first.duplicate, false);
      assert.equal(retry.duplicate, true);
      assert.equal(retry.message.sequence, first.message.sequence);
      assert.equal(retry.message.id, first.message.id);
      // Same id from another sender, or in another room, is another message.
      assert.equal((await h.engine.publish(draft(room, "once", h.clock.now, "bob"))).duplicate, false);
      assert.equal((await h.engine.publish(draft(freshRoom("dedupe-other"), "once", h.clock.now))).duplicate, false);
      // Retries in one batch: one stored, the rest duplicates of it.
      const batch = await Promise.all(Array.from({ length: 5 }, () => h.engine.publish(draft(room, "burst", h.clock.now))));
      assert.deepEqual(batch.map((r) => r.duplicate), [false, true, true, true, true]);
      assert.equal(new Set(batch.map((r) => r.message.sequence)).size, 1);
      // Each retry is answered with the message as stored, body included, even within the transaction that stored it.
      assert.deepEqual(batch.map((r) => r.message.content), ["burst", "burst", "burst", "burst", "burst"]);
      const page = await h.engine.history(room, { after: 0n, before: 0n, limit: 100, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => m.content), ["once", "once", "burst"]);
      // After the window the key is forgotten.
      h.clock.now += 121_000;
      const late = await h.engine.publish(draft(room, "once", h.clock.now));
      assert.equal(late.duplicate, false);
      assert.equal(late.message.sequence, 4n);
      // An empty clientMessageId never deduplicates.
      const anonymous = { ...draft(room, "anon", h.clock.now), clientMessageId: "" };
      assert.equal((await h.engine.publish(anonymous)).duplicate, false);
      assert.equal((await h.engine.publish(anonymous)).duplicate, false);
    });

    it("answers a retry carrying another body with the original message, not the retry's body", async () => {
      const room = freshRoom("dedupe-body");
      const original = await h.engine.publish({ ...draft(room, "original", h.clock.now), clientMessageId: "same-id" });
      h.clock.now += 1000;
      const retry = await h.engine.publish({
        ...draft(room, "a different body", h.clock.now),
        payload: new Uint8Array([9, 9]),
        attributes: { kind: "changed" },
        clientMessageId: "same-id",
      });
      assert.equal(retry.duplicate, true);
      const { message } = retry;
      assert.deepEqual(
        [message.id, message.sequence, message.epoch, message.content, [...message.payload], message.attributes, message.timeMs],
        [original.message.id, 1n, original.message.epoch, "original", [1, 2, 3], { kind: "test" }, original.message.timeMs],
      );
      const page = await h.engine.history(room, { after: 0n, before: 0n, limit: 100, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => m.content), ["original"], "the retry stored nothing");
    });

    it("clear() starts a new epoch at 0, drops history and idempotency keys, and fans out a reset", async () => {
      const room = freshRoom("clear");
      await h.engine.watch(room);
      const old = await publishMessage(h.engine, draft(room, "old", h.clock.now));
      const position = await h.engine.clear(room);
      assert.notEqual(position.epoch, old.epoch);
      assert.equal(position.sequence, 0n);
      assert.deepEqual(await h.engine.position(room), position);
      const empty = await h.engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "forward" });
      assert.equal(empty.messages.length, 0);
      assert.deepEqual(empty.position, position);
      const again = await h.engine.publish(draft(room, "old", h.clock.now)); // same clientMessageId as before the clear
      assert.equal(again.duplicate, false);
      assert.deepEqual([again.message.epoch, again.message.sequence], [position.epoch, 1n]);
      await settle(() => h.events.filter((e) => e.room === room).length >= 3);
      assert.deepEqual(
        h.events.filter((e) => e.room === room).map((e) => e.event.type),
        ["message", "reset", "message"],
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

    if (shared) sharedStoreConformance(factory, shared);
  });
}

/**
 * Several nodes on one store: what a client sees must not depend on which
 * node it is connected to.
 */
function sharedStoreConformance(factory: EngineFactory, shared: SharedStore): void {
  describe("several nodes on one store", () => {
    interface Node extends EngineHarness {
      label: string;
    }
    const clock = { now: 1_700_000_000_000 };
    const nodes: Node[] = [];
    async function node(label: string): Promise<Node> {
      const events: EngineHarness["events"] = [];
      const engine = await factory({
        retention: { historySize: 1000, historyTtlMs: 0, dedupeWindowMs: 120_000 },
        listener: (room, event) => events.push({ room, event }),
        now: () => clock.now,
      });
      const n = { engine, events, clock, label };
      nodes.push(n);
      return n;
    }
    afterAll(async () => {
      await Promise.allSettled(nodes.map((n) => n.engine.close()));
    });
    const of = (n: Node, room: string) => n.events.filter((e) => e.room === room);

    it("shows every node's watchers one gapless order of publishes made on every node", async () => {
      const [a, b, c] = await Promise.all([node("a"), node("b"), node("c")]);
      const room = freshRoom("nodes");
      await Promise.all([a, b, c].map((n) => n.engine.watch(room)));
      const perNode = 150;
      const results = await Promise.all(
        [a, b].flatMap((n) => Array.from({ length: perNode }, (_, i) => publishMessage(n.engine, draft(room, `${n.label}${i}`, 1, n.label)))),
      );
      const sequences = results.map((m) => m.sequence).sort((x, y) => Number(x - y));
      assert.deepEqual(sequences, Array.from({ length: 2 * perNode }, (_, i) => BigInt(i + 1)), "one sequence for both nodes' publishes");
      for (const n of [a, b, c]) await settle(() => of(n, room).length >= 2 * perNode, 10_000);
      const seen = (n: Node) => of(n, room).map((e) => (e.event.type === "message" ? `${e.event.message.sequence}:${e.event.message.content}` : "?"));
      const reference = seen(a);
      assert.deepEqual(
        reference.map((s) => BigInt(s.split(":")[0]!)),
        Array.from({ length: 2 * perNode }, (_, i) => BigInt(i + 1)),
        "in sequence order, each once",
      );
      assert.deepEqual(seen(b), reference);
      assert.deepEqual(seen(c), reference);
      // Publisher FIFO per node: one node's publishes are sequenced in call order.
      for (const label of ["a", "b"]) {
        const mine = reference.filter((s) => s.split(":")[1]!.startsWith(label)).map((s) => Number(s.split(":")[1]!.slice(1)));
        assert.deepEqual(mine, [...mine].sort((x, y) => x - y));
      }
    });

    it("shares history, positions, idempotency keys and acks", async () => {
      const [a, b] = await Promise.all([node("a"), node("b")]);
      const room = freshRoom("shared");
      const first = await a.engine.publish(draft(room, "hello", clock.now));
      const retry = await b.engine.publish(draft(room, "hello", clock.now));
      assert.equal(retry.duplicate, true, "a retry through another node is still a retry");
      assert.equal(retry.message.id, first.message.id);
      assert.deepEqual(await b.engine.position(room), { epoch: first.message.epoch, sequence: 1n });
      const page = await b.engine.history(room, { after: 0n, before: 0n, limit: 10, direction: "forward" });
      assert.deepEqual(page.messages.map((m) => [m.content, m.id]), [["hello", first.message.id]]);
      await a.engine.ackSet("alice/phone", room, { epoch: first.message.epoch, sequence: 1n });
      assert.deepEqual(await b.engine.ackGet("alice/phone", room), { epoch: first.message.epoch, sequence: 1n });
    });

    it("resets every node's watchers when one node clears a room", async () => {
      const [a, b] = await Promise.all([node("a"), node("b")]);
      const room = freshRoom("shared-clear");
      await b.engine.watch(room);
      await publishMessage(a.engine, draft(room, "old", 1));
      const position = await a.engine.clear(room);
      const next = await publishMessage(a.engine, draft(room, "new", 1));
      await settle(() => of(b, room).length >= 3);
      assert.deepEqual(
        of(b, room).map((e) => (e.event.type === "reset" ? `reset:${e.event.position.epoch}` : e.event.type === "message" ? `${e.event.message.sequence}` : "?")),
        ["1", `reset:${position.epoch}`, "1"],
      );
      assert.equal(next.epoch, position.epoch);
      await b.engine.unwatch(room);
    });

    it("delivers rooms first published on another node to a pattern watcher", async () => {
      const [a, b] = await Promise.all([node("a"), node("b")]);
      const base = freshRoom("shared-pattern");
      await b.engine.watch(`${base}.>`);
      await publishMessage(a.engine, draft(`${base}.x`, "x1", 1));
      await publishMessage(a.engine, draft(`${base}.y.z`, "yz1", 1));
      await publishMessage(a.engine, draft(`${base}.x`, "x2", 1));
      await settle(() => b.events.filter((e) => e.room.startsWith(base)).length >= 3);
      assert.deepEqual(
        b.events.filter((e) => e.room.startsWith(base)).map((e) => (e.event.type === "message" ? `${e.room}#${e.event.message.sequence}` : "?")),
        [`${base}.x#1`, `${base}.y.z#1`, `${base}.x#2`],
      );
      await b.engine.unwatch(`${base}.>`);
    });

    it("shares presence, and a stopped node's entries leave within the TTL", async () => {
      const [a, b] = await Promise.all([node("a"), node("b")]);
      const room = freshRoom("shared-presence");
      await b.engine.watch(room);
      const entry = { user: "erin", sessionId: "s-erin", device: "phone", state: "online" as const, joinedAtMs: 5, sinceMs: 5, lastActiveMs: 5 };
      await a.engine.presenceSet(room, entry, "join");
      assert.deepEqual((await b.engine.presenceList(room)).map((e) => e.user), ["erin"]);
      // The node dies: no goodbye, its refreshes stop.
      await a.engine.close();
      clock.now += shared.presenceTtlMs + 1;
      await settle(() => of(b, room).length >= 2, 5_000);
      assert.deepEqual(
        of(b, room).map((e) => (e.event.type === "presence" ? `${e.event.kind}:${e.event.entry.user}` : "?")),
        ["join:erin", "leave:erin"],
      );
      assert.deepEqual(await b.engine.presenceList(room), []);
      await b.engine.unwatch(room);
    });
  });
}

async function settle(done: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!done() && Date.now() - start < timeoutMs) await new Promise((r) => setTimeout(r, 5));
}
