import assert from "node:assert/strict";
import { it } from "vitest";
import { draft, freshRoom, presenceEntry, publishMessage, type ConformanceSuite } from "./conformance-harness.js";

/**
 * The conformance of history and retention: paging, the size and TTL limits,
 * and sweep() forgetting rooms that keep nothing.
 */
export function historyConformance({ h, open }: ConformanceSuite): void {
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
}
