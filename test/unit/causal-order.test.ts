import assert from "node:assert/strict";
import { describe, it } from "vitest";
import fc from "fast-check";
import { CausalGate, CausalPlaces, type CausalItem, type Dependency, type GateClock, type GateRelease } from "../../src/client/causal-gate.js";
import { CausalContext } from "../../src/client/causal-context.js";
import { ReorderBuffer, type ReorderOutput } from "../../src/client/reorder-buffer.js";

/**
 * Causal order across rooms in the SDK: the causal gate behind the per-room
 * reorder buffers, driven by a simulated network on a simulated clock, wired
 * the way src/client/subscription.ts wires them (gap fills and dependency
 * fetches from history, replays on reconnect).
 */

interface Item extends CausalItem {
  id: string;
}

/** Timers on a simulated clock, run in time order. */
class SimClock implements GateClock {
  time = 0;
  private timers: Array<{ at: number; order: number; run: () => void; cancelled: boolean }> = [];
  private order = 0;
  now = () => this.time;
  setTimeout(run: () => void, ms: number): () => void {
    const timer = { at: this.time + Math.max(0, ms), order: this.order++, run, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  /** Runs every timer due up to `until` (all of them when omitted). */
  run(until = Infinity): void {
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.timers.sort((a, b) => a.at - b.at || a.order - b.order);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.time = Math.max(this.time, next.at);
      next.run();
    }
    if (until !== Infinity) this.time = Math.max(this.time, until);
  }
}

const item = (room: string, sequence: number, dependencies: Dependency[] = [], epoch = "e"): Item => ({
  id: `${room}#${sequence}`,
  room,
  epoch,
  sequence: BigInt(sequence),
  dependencies,
});
const dep = (room: string, sequence: number, epoch = "e"): Dependency => ({ room, epoch, sequence: BigInt(sequence) });
const deliver = (x: Item): ReorderOutput<Item> => ({ type: "deliver", item: x });

function gate(held: string[], maxWaitMs = 1000, starts: Record<string, number> = {}) {
  const clock = new SimClock();
  const out: Array<{ id: string; unmet: string[] }> = [];
  const needs: string[] = [];
  const g = new CausalGate<Item>({
    maxWaitMs,
    clock,
    need: (d) => needs.push(`${d.room}#${d.sequence}`),
    release: (_room, o) => {
      if (o.type === "deliver") out.push({ id: o.item.id, unmet: o.unmet.map((d) => `${d.room}#${d.sequence}`) });
    },
  });
  for (const room of held) g.track(room, { epoch: "e", sequence: BigInt(starts[room] ?? 0) });
  return { g, clock, out, needs, ids: () => out.map((o) => o.id) };
}

describe("causal gate", () => {
  it("holds a message until its dependency in a held room is delivered, then releases both in causal order, unmarked", () => {
    const { g, out, needs, ids } = gate(["general", "@carol"]);
    g.push("@carol", [deliver(item("@carol", 1, [dep("general", 1)]))]);
    assert.deepEqual(ids(), []);
    assert.deepEqual(needs, ["general#1"], "the lagging room is asked to fetch it");
    g.push("general", [deliver(item("general", 1))]);
    assert.deepEqual(ids(), ["general#1", "@carol#1"]);
    assert.deepEqual(out.map((o) => o.unmet), [[], []]);
  });

  it("keeps a room's order behind a waiting message, and lets other rooms pass", () => {
    const { g, ids } = gate(["a", "b", "c"]);
    g.push("a", [deliver(item("a", 1, [dep("b", 2)])), deliver(item("a", 2))]);
    g.push("c", [deliver(item("c", 1))]);
    g.push("b", [deliver(item("b", 1))]);
    assert.deepEqual(ids(), ["c#1", "b#1"]);
    g.push("b", [deliver(item("b", 2))]);
    assert.deepEqual(ids(), ["c#1", "b#1", "b#2", "a#1", "a#2"]);
  });

  it("ignores dependencies in rooms not held, in its own room, and those already passed", () => {
    const { g, ids } = gate(["a", "b"], 1000, { b: 5 });
    g.push("a", [deliver(item("a", 1, [dep("secret", 9), dep("a", 7), dep("b", 5)]))]);
    assert.deepEqual(ids(), ["a#1"]);
  });

  it("releases after the bound, marked with what is still missing (a cleared epoch), and never before", () => {
    const { g, clock, out } = gate(["a", "b"], 1000);
    g.push("a", [deliver(item("a", 1, [dep("b", 3, "old-epoch"), dep("b", 1)]))]);
    g.push("b", [deliver(item("b", 1))]);
    clock.run(999);
    assert.deepEqual(out.map((o) => o.id), ["b#1"]);
    clock.run(1000);
    assert.deepEqual(out, [
      { id: "b#1", unmet: [] },
      { id: "a#1", unmet: ["b#3"] },
    ]);
  });

  it("a dependency a filter removed counts as passed once the room's buffer moved past it, in the room's order", () => {
    const { g, ids } = gate(["a", "b", "c"]);
    g.push("a", [deliver(item("a", 1, [dep("b", 3)]))]);
    assert.deepEqual(ids(), []);
    g.reached("b", { epoch: "e", sequence: 3n }); // b#1..3 filtered out
    assert.deepEqual(ids(), ["a#1"]);
    g.push("b", [deliver(item("b", 4, [dep("c", 1)]))]);
    g.reached("b", { epoch: "e", sequence: 6n }); // b#5..6 filtered out, but behind the waiting b#4
    g.push("a", [deliver(item("a", 2, [dep("b", 6)]))]);
    assert.deepEqual(ids(), ["a#1"], "b#6 is not passed while b#4 waits");
    g.push("c", [deliver(item("c", 1))]);
    assert.deepEqual(ids(), ["a#1", "c#1", "b#4", "a#2"]);
    assert.equal(g.waitingCount, 0);
  });

  it("a room left while something waits on it releases the waiting message unmarked", () => {
    const { g, out } = gate(["a", "b"]);
    g.push("a", [deliver(item("a", 1, [dep("b", 1)]))]);
    assert.equal(g.waitingCount, 1);
    g.forget("b");
    assert.deepEqual(out, [{ id: "a#1", unmet: [] }]);
    assert.equal(g.waitingCount, 0);
  });

  it("gates of one client wait on each other's rooms (an inbox subscription and a rooms subscription)", () => {
    const places = new CausalPlaces();
    const clock = new SimClock();
    const seen: string[] = [];
    const open = () =>
      new CausalGate<Item>({ maxWaitMs: 1000, clock, places, need: () => {}, release: (_r, o) => o.type === "deliver" && seen.push(o.item.id) });
    const rooms = open();
    const inbox = open();
    rooms.track("general", { epoch: "e", sequence: 0n });
    inbox.track("@carol", { epoch: "e", sequence: 0n });
    inbox.push("@carol", [deliver(item("@carol", 1, [dep("general", 1)]))]);
    assert.deepEqual(seen, []);
    rooms.push("general", [deliver(item("general", 1))]);
    assert.deepEqual(seen, ["general#1", "@carol#1"]);
    // Once the rooms subscription is gone, general is no longer held: nothing waits for it.
    rooms.close();
    inbox.push("@carol", [deliver(item("@carol", 2, [dep("general", 5)]))]);
    assert.deepEqual(seen, ["general#1", "@carol#1", "@carol#2"]);
  });
});

describe("causal context (what a publish depends on)", () => {
  it("keeps the last position of the most recent rooms, skips the target room and inboxes, adds replyTo", () => {
    const context = new CausalContext(2);
    context.observe("general", "e", 3n);
    context.observe("general", "e", 2n); // a late acknowledgement never moves back
    context.observe("@bob", "e", 9n);
    context.observe("random", "e", 1n);
    context.observe("sports", "e", 4n); // evicts general, the least recently active
    assert.deepEqual(context.dependenciesFor("@carol").map((d) => `${d.room}#${d.sequence}`), ["random#1", "sports#4"]);
    context.observe("random", "e", 5n);
    assert.deepEqual(
      context.dependenciesFor("random", { room: "@bob", epoch: "e", sequence: 9n }).map((d) => `${d.room}#${d.sequence}`),
      ["sports#4", "@bob#9"],
    );
    context.observe("sports", "e2", 1n); // a new epoch replaces the old position
    assert.deepEqual(context.dependenciesFor("x").map((d) => `${d.room}:${d.epoch}#${d.sequence}`), ["random:e#5", "sports:e2#1"]);
    assert.deepEqual(new CausalContext(0).dependenciesFor("x"), []);
  });
});

// ---- property ------------------------------------------------------------------

const ROOMS = ["r0", "r1", "r2", "r3"];
const MAX_WAIT = 5000;
const GAP_FILL_DELAY = 200;
const HISTORY_DELAY = 50;

const world = fc.record({
  roomCount: fc.integer({ min: 2, max: 4 }),
  messages: fc.array(
    fc.record({
      room: fc.nat(3),
      links: fc.array(fc.nat(), { maxLength: 3 }),
      bogus: fc.boolean(), // a dependency that will never be delivered (a cleared epoch)
      delay: fc.integer({ min: 0, max: 1500 }),
      duplicate: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
      drop: fc.boolean(),
    }),
    { minLength: 1, maxLength: 40 },
  ),
  reconnects: fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 3 }),
  /** The last room is not held when true: dependencies there must be ignored. */
  unheldLast: fc.boolean(),
});

describe("causal order over the SDK's pipeline (property)", () => {
  it("respects every dependency in held rooms, delivers each message once, and never stalls past the bound", () => {
    fc.assert(
      fc.property(world, ({ roomCount, messages: specs, reconnects, unheldLast }) => {
        const rooms = ROOMS.slice(0, roomCount);
        const held = new Set(unheldLast ? rooms.slice(0, -1) : rooms);
        const clock = new SimClock();

        // The broker's history: message i is published at 10·i, each room numbered 1, 2, 3…
        const counts = new Map<string, number>();
        const published: Array<Item & { at: number; real: Dependency[] }> = specs.map((spec, i) => {
          const room = rooms[spec.room % roomCount]!;
          const sequence = (counts.get(room) ?? 0) + 1;
          counts.set(room, sequence);
          return { ...item(room, sequence), at: i * 10, real: [] };
        });
        specs.forEach((spec, i) => {
          const m = published[i]!;
          const real = i === 0 ? [] : [...new Set(spec.links.map((l) => l % i))].map((j) => dep(published[j]!.room, Number(published[j]!.sequence)));
          m.real = real;
          m.dependencies = spec.bogus ? [...real, dep(rooms[(spec.room + 1) % roomCount]!, 1, "cleared")] : real;
        });
        const historyOf = (room: string) => published.filter((m) => m.room === room && m.at <= clock.time);

        // The subscriber: per-room buffers → gate → application, glued as in subscription.ts.
        const buffers = new Map([...held].map((room) => [room, new ReorderBuffer<Item>({ epoch: "e", sequence: 0n })]));
        const arrived = new Map<string, number>();
        const app: Array<{ id: string; at: number; unmet: Dependency[] }> = [];
        const gapTimers = new Set<string>();
        const g: CausalGate<Item> = new CausalGate<Item>({
          maxWaitMs: MAX_WAIT,
          clock,
          need: (d) => {
            clock.setTimeout(() => {
              const buffer = buffers.get(d.room)!;
              if (buffer.position.epoch !== d.epoch || buffer.position.sequence >= d.sequence) return;
              const items = historyOf(d.room).filter((m) => m.sequence > buffer.position.sequence && m.sequence <= d.sequence);
              output(d.room, buffer.fill({ items, epoch: "e", firstSequence: 1n }));
            }, HISTORY_DELAY);
          },
          release: (_room, o: GateRelease<Item>) => {
            if (o.type === "deliver") app.push({ id: o.item.id, at: clock.time, unmet: o.unmet });
            else assert.fail(`unexpected reset in ${_room}: nothing is lost in this world`);
          },
        });
        for (const room of held) g.track(room, { epoch: "e", sequence: 0n });
        function output(room: string, outs: ReorderOutput<Item>[]) {
          for (const o of outs) if (o.type === "deliver" && !arrived.has(o.item.id)) arrived.set(o.item.id, clock.time);
          g.push(room, outs);
          const buffer = buffers.get(room)!;
          if (buffer.missing() && !gapTimers.has(room)) {
            gapTimers.add(room);
            clock.setTimeout(() => {
              gapTimers.delete(room);
              const missing = buffer.missing();
              if (!missing) return;
              const items = historyOf(room).filter((m) => m.sequence > missing.after && m.sequence < missing.before);
              output(room, buffer.fill({ items, epoch: "e", firstSequence: 1n }));
            }, GAP_FILL_DELAY + HISTORY_DELAY);
          }
        }
        const wire = (m: Item) => {
          if (held.has(m.room)) output(m.room, buffers.get(m.room)!.push(m));
        };
        // A reconnect: the broker replays every room after the subscriber's position.
        const reconnect = () => {
          for (const [room, buffer] of buffers)
            for (const m of historyOf(room)) if (m.sequence > buffer.position.sequence) output(room, buffer.push(m));
        };

        specs.forEach((spec, i) => {
          const m = published[i]!;
          if (!spec.drop) clock.setTimeout(() => wire(m), m.at + spec.delay);
          if (spec.duplicate !== undefined) clock.setTimeout(() => wire(m), m.at + spec.duplicate);
        });
        for (const at of reconnects) clock.setTimeout(reconnect, at);
        // A last reconnect after everything was published: a dropped tail is only noticed so (or by a dependency).
        clock.setTimeout(reconnect, specs.length * 10 + 5000);
        clock.run();

        const position = new Map(app.map((a, k) => [a.id, k]));
        // Exactly once, everything of the held rooms.
        const expected = published.filter((m) => held.has(m.room)).map((m) => m.id).sort();
        assert.deepEqual(app.map((a) => a.id).sort(), expected);
        assert.equal(position.size, app.length, "no message twice");
        for (const m of published) {
          if (!held.has(m.room)) continue;
          const at = position.get(m.id)!;
          const delivered = app[at]!;
          // Every dependency in a held room comes first, or the message says it does not: honestly and completely.
          const late = new Set(delivered.unmet.map((u) => `${u.room}:${u.epoch}#${u.sequence}`));
          for (const d of m.dependencies) {
            if (!held.has(d.room) || d.room === m.room) continue;
            const before = d.epoch === "e" && position.get(`${d.room}#${d.sequence}`)! < at;
            assert.equal(late.has(`${d.room}:${d.epoch}#${d.sequence}`), !before, `${m.id} and its dependency ${d.room}:${d.epoch}#${d.sequence}`);
          }
          // Without a dependency that can never come, history always supplies them in time: nothing is released late.
          if (!specs.some((s) => s.bogus)) assert.equal(delivered.unmet.length, 0, `${m.id} released late`);
          // Nothing waits in the gate past the bound.
          assert.ok(delivered.at - arrived.get(m.id)! <= MAX_WAIT, `${m.id} waited ${delivered.at - arrived.get(m.id)!} ms`);
        }
        // Per-room order.
        for (const room of held) {
          const seqs = app.filter((a) => a.id.startsWith(`${room}#`)).map((a) => Number(a.id.split("#")[1]));
          assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
        }
        assert.equal(g.waitingCount, 0);
      }),
      { numRuns: 300 },
    );
  });
});
