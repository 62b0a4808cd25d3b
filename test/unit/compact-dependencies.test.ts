import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "vitest";
import { compactDependencies } from "../../src/broker/compact-dependencies.js";
import { expandDependencies, REF_EXPLICIT } from "../../src/client/dependency-refs.js";
import type { Dependency, StoredMessage } from "../../src/engine/engine.js";

/**
 * Compact causal dependencies: the broker's refs into the previous
 * message's list and the SDK's rebuilding of the whole list from them.
 */

const stored = (sequence: bigint, dependencies: Dependency[] | undefined): StoredMessage => ({
  id: `m${sequence}`,
  room: "feed",
  epoch: "e1",
  sequence,
  sender: "alice",
  content: "",
  payload: new Uint8Array(0),
  attributes: {},
  timeMs: 0,
  clientMessageId: "",
  dependencies,
});

// Few rooms and sequences, so that lists share positions often.
const position = fc.record({
  room: fc.constantFrom("a", "b", "c", "d", "@e"),
  epoch: fc.constantFrom("e1", "e2"),
  sequence: fc.bigInt({ min: 1n, max: 4n }),
}).map((d) => ({ ...d }));
const list = fc.array(position, { maxLength: 16 });
const sameDependency = (a: Dependency, b: Dependency) => a.room === b.room && a.epoch === b.epoch && a.sequence === b.sequence;

describe("compact dependencies", () => {
  it("rebuild every list exactly, in order, from the one before it", () => {
    fc.assert(
      fc.property(fc.array(list, { minLength: 1, maxLength: 12 }), (lists) => {
        const messages = lists.map((deps, i) => stored(BigInt(i + 1), deps.length > 0 ? deps : undefined));
        // What the SDK holds: the whole list of the message before.
        let before: readonly Dependency[] = [];
        for (let i = 0; i < messages.length; i++) {
          const m = messages[i]!;
          const compact = i > 0 ? compactDependencies(m, messages[i - 1]!) : undefined;
          const published = m.dependencies ?? [];
          let whole: readonly Dependency[] = published;
          if (compact) {
            const same = published.length === before.length && published.every((d, j) => sameDependency(d, before[j]!));
            assert.equal(compact.same, same, "the same list goes as one flag");
            if (same) whole = before;
            else {
              assert.equal(compact.refs.length, published.length);
              assert.ok(compact.explicit.length < published.length, "compact only when some position is named by index");
              whole = expandDependencies(compact.refs, compact.explicit, before)!;
            }
          }
          assert.deepEqual(whole, published);
          before = whole;
        }
      }),
    );
  });

  it("name a position by index only when room, epoch and sequence all match", () => {
    const previous = stored(1n, [
      { room: "a", epoch: "e1", sequence: 5n },
      { room: "b", epoch: "e1", sequence: 5n },
    ]);
    const next = stored(2n, [
      { room: "a", epoch: "e1", sequence: 4n }, // older: given
      { room: "b", epoch: "e2", sequence: 5n }, // another epoch: given
      { room: "b", epoch: "e1", sequence: 5n }, // the same: index 1
    ]);
    const compact = compactDependencies(next, previous)!;
    assert.deepEqual([...compact.refs], [REF_EXPLICIT, REF_EXPLICIT, 1]);
    assert.deepEqual(compact.explicit, next.dependencies!.slice(0, 2));
    assert.equal(compactDependencies(stored(3n, [{ room: "c", epoch: "e1", sequence: 1n }]), next), undefined, "nothing shared: whole");
    const again = compactDependencies(stored(3n, next.dependencies!.map((d) => ({ ...d }))), next)!;
    assert.deepEqual([again.same, again.refs.length, again.explicit.length], [true, 0, 0], "the same positions in the same order: one flag");
    const reordered = compactDependencies(stored(3n, [...next.dependencies!].reverse()), next)!;
    assert.deepEqual([reordered.same, [...reordered.refs]], [false, [2, 1, 0]], "in another order: refs");
  });

  it("refuse refs that do not fit the list before", () => {
    const d = { room: "a", epoch: "e1", sequence: 1n };
    assert.equal(expandDependencies(new Uint8Array([2]), [], [d, d]), undefined, "an index past the list");
    assert.equal(expandDependencies(new Uint8Array([REF_EXPLICIT]), [], [d]), undefined, "too few given");
    assert.equal(expandDependencies(new Uint8Array([0]), [d], [d]), undefined, "too many given");
    assert.deepEqual(expandDependencies(new Uint8Array([0, REF_EXPLICIT]), [d], [d]), [d, d]);
  });
});
