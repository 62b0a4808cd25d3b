import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { RoomKeys } from "../../src/engine/memory-keys.js";

describe("memory engine: a room's idempotency keys", () => {
  it("remembers each key's position, id and time, forgets the expired ones oldest first, and stays right across compactions", () => {
    const keys = new RoomKeys();
    const sender = (k: number) => `user${k % 3}`;
    for (let k = 0; k < 5000; k++) keys.add(sender(k), `cm-${k}`, BigInt(k + 1), `id-${k}`, 1000 + k);
    assert.equal(keys.size, 5000);
    keys.expire(1000 + 2500); // keys 0..2499 are older
    assert.equal(keys.size, 2500);
    assert.equal(keys.find(sender(2499), "cm-2499"), undefined);
    assert.deepEqual(keys.find(sender(2500), "cm-2500"), { sequence: 2501n, id: "id-2500", timeMs: 3500 });
    // Later keys after the arrays were compacted (2,500 of 5,000 dead) are found at their own slots.
    for (let k = 5000; k < 6000; k++) keys.add(sender(k), `cm-${k}`, BigInt(k + 1), `id-${k}`, 1000 + k);
    for (const k of [2500, 4999, 5000, 5999]) assert.deepEqual(keys.find(sender(k), `cm-${k}`), { sequence: BigInt(k + 1), id: `id-${k}`, timeMs: 1000 + k });
    // Expiry stops at the first younger key, even if an older one follows (times need not be monotonic).
    keys.add("young", "cm-young", 7000n, "id-young", 99_999);
    keys.add("late", "cm-old", 7001n, "id-old", 0);
    keys.expire(1000 + 6000);
    assert.equal(keys.size, 2);
    assert.equal(keys.find(sender(5999), "cm-5999"), undefined);
    assert.deepEqual(keys.find("late", "cm-old"), { sequence: 7001n, id: "id-old", timeMs: 0 });
    keys.expire(100_000);
    assert.equal(keys.size, 0);
    assert.equal(keys.find("young", "cm-young"), undefined);
    assert.equal(keys.find("late", "cm-old"), undefined);
  });

  it("keeps senders apart: the same client_message_id of two senders, and ids that would join alike", () => {
    const keys = new RoomKeys();
    keys.add("alice", "m1", 1n, "id-a", 10);
    keys.add("bob", "m1", 2n, "id-b", 11);
    keys.add("a\nb", "c", 3n, "id-ab", 12);
    assert.equal(keys.find("alice", "m1")?.id, "id-a");
    assert.equal(keys.find("bob", "m1")?.id, "id-b");
    assert.equal(keys.find("a", "b\nc"), undefined);
    assert.equal(keys.find("a\nb", "c")?.sequence, 3n);
  });
});
