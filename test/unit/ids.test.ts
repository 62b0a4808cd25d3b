import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { newEpoch, newMessageId, newUuid } from "../../src/engine/ids.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("ids", () => {
  it("message ids are RFC 4122 version 4 UUIDs, all different, across many entropy batches", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const id = newMessageId();
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, 50_000);
    assert.match(newEpoch(), /^[0-9a-f]{16}$/);
  });

  it("epochs are 16 hex digits, all different, across many entropy batches, and never the bytes of an id", () => {
    const epochs = new Set<string>();
    const ids = new Set<string>();
    for (let i = 0; i < 30_000; i++) {
      const epoch = newEpoch();
      assert.match(epoch, /^[0-9a-f]{16}$/);
      epochs.add(epoch);
      // Interleaved, as the Redis engine takes them: an id's first 6 random bytes are never an epoch's.
      ids.add(newMessageId().replace(/-/g, "").slice(0, 12));
    }
    assert.equal(epochs.size, 30_000);
    assert.equal([...epochs].filter((e) => ids.has(e.slice(0, 12))).length, 0);
  });

  it("ids spread over every hex digit in every random position (no byte of the batch reused or left zero)", () => {
    // Each of the 30 random hex positions takes all 16 digits within 2,000 ids
    // (a position stuck at one value, or bytes copied between ids, would not).
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) [...newUuid()].forEach((c, at) => digits[at]!.add(c));
    const fixed = new Set([8, 13, 14, 18, 19, 23]); // dashes, the version, the variant digit
    for (let at = 0; at < 36; at++) if (!fixed.has(at)) assert.equal(digits[at]!.size, 16, `position ${at}`);
    assert.deepEqual([...digits[14]!], ["4"]);
    assert.deepEqual([...digits[19]!].sort(), ["8", "9", "a", "b"]);
  });
});
