import assert from "node:assert/strict";
import { it } from "vitest";
import { draft, freshRoom, presenceEntry, publishMessage, settle, type ConformanceSuite } from "./conformance-harness.js";

/**
 * The conformance of publish: where a room's lineage (epoch, sequence) starts,
 * sequences without gaps, what a message stores, idempotent retries, and
 * clear() starting a new lineage, and close() settling the calls made before it.
 */
export function publishConformance({ h, open }: ConformanceSuite): void {
  it("settles the calls made before close(): each publish resolves with the next sequence; a call after it rejects", async () => {
    const own = await open();
    const room = freshRoom("close");
    await own.engine.publish(draft(room, "ready", own.clock.now));
    // Made in one turn, not awaited: close() starts while they are in the engine's hands.
    const publishes = Array.from({ length: 200 }, (_, i) => own.engine.publish(draft(room, `m${i}`, own.clock.now)));
    await own.engine.close();
    const results = await Promise.allSettled(publishes);
    const rejected = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
    assert.deepEqual(rejected, [], "a publish made before close() was refused");
    const sequences = results.map((r) => (r.status === "fulfilled" ? r.value.message.sequence : 0n));
    assert.deepEqual(sequences, sequences.map((_, i) => BigInt(i + 2)), "in call order, after the first");
    await assert.rejects(own.engine.publish(draft(room, "late", own.clock.now)));
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
}
