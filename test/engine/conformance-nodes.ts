import assert from "node:assert/strict";
import { afterAll, describe, it } from "vitest";
import { draft, freshRoom, publishMessage, settle, type EngineFactory, type EngineHarness, type SharedStore } from "./conformance-harness.js";

/**
 * Several nodes on one store: what a client sees must not depend on which
 * node it is connected to.
 */
export function sharedStoreConformance(factory: EngineFactory, shared: SharedStore): void {
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
