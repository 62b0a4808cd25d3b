import assert from "node:assert/strict";
import { describe, it } from "vitest";
import fc from "fast-check";
import { ReorderBuffer, type ReorderOutput } from "../../src/client/reorder-buffer.js";

interface Item {
  epoch: string;
  sequence: bigint;
}
const item = (sequence: number, epoch = "e1"): Item => ({ epoch, sequence: BigInt(sequence) });
const seqs = (outputs: ReorderOutput<Item>[]) =>
  outputs.flatMap((o) => (o.type === "deliver" ? [Number(o.item.sequence)] : []));

/**
 * Arrivals on the wire for messages 1..n: any order, any duplication, some
 * never arriving at all; plus the moments when the owner's gap timer fires.
 */
const wire = fc
  .integer({ min: 1, max: 300 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      arrivals: fc.array(fc.integer({ min: 1, max: n }), { maxLength: 3 * n }),
      fillAt: fc.array(fc.nat({ max: 3 * n }), { maxLength: 10 }),
      historyLimit: fc.integer({ min: 1, max: 50 }),
    }),
  );

/** The broker's history: all of 1..n retained. */
function historyFor(n: number, after: bigint, before: bigint, limit: number): Item[] {
  const out: Item[] = [];
  for (let s = after + 1n; s < before && s <= BigInt(n) && out.length < limit; s++) out.push(item(Number(s)));
  return out;
}

describe("ReorderBuffer", () => {
  it("delivers any interleaving, duplication and delay of 1..n as exactly 1..n", () => {
    fc.assert(
      fc.property(wire, ({ n, arrivals, fillAt, historyLimit }) => {
        const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 0n });
        const delivered: number[] = [];
        const fill = () => {
          const missing = buffer.missing();
          if (!missing) return;
          const items = historyFor(n, missing.after, missing.before, historyLimit);
          const out = buffer.fill({ items, epoch: "e1", firstSequence: 1n });
          assert.ok(out.every((o) => o.type === "deliver"), "no reset while history retains everything");
          delivered.push(...seqs(out));
        };
        const fills = new Set(fillAt);
        // The newest message always reaches the client eventually (live
        // stream or resume); without it no client could know n exists.
        [...arrivals, n].forEach((seq, i) => {
          delivered.push(...seqs(buffer.push(item(seq))));
          if (fills.has(i)) fill();
        });
        for (let guard = 0; buffer.missing() && guard < n + 1; guard++) fill();
        assert.deepEqual(delivered, Array.from({ length: n }, (_, i) => i + 1));
        assert.equal(buffer.heldCount, 0);
      }),
      { numRuns: 500 },
    );
  });

  it("never delivers a sequence twice or out of order, whatever arrives", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 200 }), (arrivals) => {
        const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 0n });
        const delivered = arrivals.flatMap((seq) => seqs(buffer.push(item(seq))));
        delivered.forEach((seq, i) => assert.equal(seq, i + 1));
      }),
    );
  });

  it("holds early messages until the hole is filled", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 0n });
    assert.deepEqual(seqs(buffer.push(item(2))), []);
    assert.deepEqual(seqs(buffer.push(item(3))), []);
    assert.deepEqual(buffer.missing(), { epoch: "e1", after: 0n, before: 2n });
    assert.deepEqual(seqs(buffer.push(item(1))), [1, 2, 3]);
    assert.equal(buffer.missing(), undefined);
  });

  it("drops duplicates and stale messages", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 5n });
    assert.deepEqual(seqs(buffer.push(item(3))), []);
    assert.deepEqual(seqs(buffer.push(item(6))), [6]);
    assert.deepEqual(seqs(buffer.push(item(6))), []);
    assert.equal(buffer.droppedCount, 2);
  });

  it("emits a reset instead of mixing lineages when the epoch changes", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 0n });
    buffer.push(item(1));
    const out = buffer.push(item(1, "e2"));
    assert.equal(out[0]?.type, "reset");
    assert.deepEqual(out[0]?.type === "reset" && out[0].reason, "epoch_changed");
    assert.deepEqual(seqs(out), [1]);
    assert.deepEqual(buffer.position, { epoch: "e2", sequence: 1n });
    // A late message of the retired epoch is ignored.
    assert.deepEqual(buffer.push(item(2, "e1")), []);
  });

  it("declares trimmed history lost, never delivering across a silent hole", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 2n });
    buffer.push(item(9));
    // The broker only retains 7.. now: 3..6 are gone.
    const out = buffer.fill({ items: [item(7), item(8)], epoch: "e1", firstSequence: 7n });
    assert.deepEqual(
      out.map((o) => (o.type === "reset" ? `reset:${o.reason}:${o.skipped}` : Number(o.item.sequence))),
      ["reset:lost:4", 7, 8, 9],
    );
  });

  it("rebase: an unrecovered resume skips with a reset, a recovered one keeps waiting for the replay", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 4n });
    assert.deepEqual(buffer.rebase({ epoch: "e1", sequence: 10n }, true), []);
    assert.deepEqual(buffer.position, { epoch: "e1", sequence: 4n });
    const lost = buffer.rebase({ epoch: "e1", sequence: 10n }, false);
    assert.equal(lost[0]?.type === "reset" && lost[0].skipped, 6n);
    const reset = buffer.rebase({ epoch: "e9", sequence: 3n }, false);
    assert.equal(reset[0]?.type === "reset" && reset[0].reason, "epoch_changed");
    assert.deepEqual(buffer.position, { epoch: "e9", sequence: 3n });
  });
  it("with watermarks, delivers exactly the kept subset in order, whatever the arrival order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            keep: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
            order: fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }),
          }),
        ),
        ({ n, keep, order }) => {
          // What the broker sends for sequence s: the message, preceded by a watermark
          // when the filter removed the ones since the previous kept message.
          const frames = new Map<number, Array<{ wm?: number; after?: number; seq?: number }>>();
          let lastKept = 0;
          for (let s = 1; s <= n; s++) {
            if (!keep[s - 1]) continue;
            frames.set(s, [...(s - 1 > lastKept ? [{ wm: s - 1, after: lastKept }] : []), { seq: s }]);
            lastKept = s;
          }
          const buffer = new ReorderBuffer<Item>({ epoch: "e1", sequence: 0n });
          const delivered: number[] = [];
          // Frames of one message stay together (one stream write); messages arrive in any order.
          for (const i of order)
            for (const f of frames.get(i + 1) ?? [])
              delivered.push(
                ...seqs(
                  f.wm !== undefined
                    ? buffer.skipThrough({ epoch: "e1", sequence: BigInt(f.wm) }, BigInt(f.after!))
                    : buffer.push(item(f.seq!)),
                ),
              );
          assert.deepEqual(delivered, [...frames.keys()].sort((a, b) => a - b));
        },
      ),
    );
  });

  it("adopts the first epoch of a room that had no lineage (epoch \"\") without a reset, and only the first", () => {
    const buffer = new ReorderBuffer<Item>({ epoch: "", sequence: 0n });
    assert.deepEqual(buffer.push(item(1, "e7")), [{ type: "deliver", item: item(1, "e7") }]);
    assert.deepEqual(buffer.position, { epoch: "e7", sequence: 1n });
    assert.deepEqual(
      buffer.push(item(1, "e8")).map((o) => (o.type === "reset" ? o.reason : "deliver")),
      ["epoch_changed", "deliver"],
    );
  });

  it("adopts the first epoch from a resume, a hole fill or a watermark too", () => {
    const resumed = new ReorderBuffer<Item>({ epoch: "", sequence: 0n });
    assert.deepEqual(resumed.rebase({ epoch: "e7", sequence: 3n }, true), []);
    assert.deepEqual(seqs(resumed.push(item(1, "e7"))), [1]);
    const late = new ReorderBuffer<Item>({ epoch: "", sequence: 0n });
    assert.deepEqual(late.push(item(2, "e7")), []);
    assert.deepEqual(seqs(late.fill({ items: [item(1, "e7")], epoch: "e7", firstSequence: 1n })), [1, 2]);
    const lost = new ReorderBuffer<Item>({ epoch: "", sequence: 0n });
    assert.deepEqual(lost.rebase({ epoch: "e7", sequence: 3n }, false), [
      { type: "reset", reason: "lost", position: { epoch: "e7", sequence: 3n }, skipped: 3n },
    ]);
    const filtered = new ReorderBuffer<Item>({ epoch: "", sequence: 0n });
    assert.deepEqual(filtered.skipThrough({ epoch: "e7", sequence: 4n }, 0n), []);
    assert.deepEqual(seqs(filtered.push(item(5, "e7"))), [5]);
  });
});
