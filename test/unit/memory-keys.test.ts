import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { DedupeKeys, type KeyRoom } from "../../src/engine/memory-keys.js";

const room = (epoch = "e1"): KeyRoom => ({ epoch, keyCount: 0 });

describe("memory engine: idempotency keys", () => {
  it("remembers each key's position, id and time, forgets the expired ones oldest first, and stays right across compactions", () => {
    const keys = new DedupeKeys();
    const r = room();
    const sender = (k: number) => `user${k % 3}`;
    for (let k = 0; k < 5000; k++) keys.add(r, sender(k), `cm-${k}`, BigInt(k + 1), `id-${k}`, 1000 + k);
    assert.equal(keys.size, 5000);
    assert.equal(r.keyCount, 5000);
    keys.expire(1000 + 2500); // keys 0..2499 are older
    assert.equal(keys.size, 2500);
    assert.equal(r.keyCount, 2500);
    assert.equal(keys.find(r, sender(2499), "cm-2499"), undefined);
    assert.deepEqual(keys.find(r, sender(2500), "cm-2500"), { sequence: 2501n, id: "id-2500", timeMs: 3500 });
    // Later keys after the arrays were compacted (2,500 of 5,000 dead) are found at their own slots.
    for (let k = 5000; k < 6000; k++) keys.add(r, sender(k), `cm-${k}`, BigInt(k + 1), `id-${k}`, 1000 + k);
    for (const k of [2500, 4999, 5000, 5999]) assert.deepEqual(keys.find(r, sender(k), `cm-${k}`), { sequence: BigInt(k + 1), id: `id-${k}`, timeMs: 1000 + k });
    // Expiry stops at the first younger key, even if an older one follows (times need not be monotonic).
    keys.add(r, "young", "cm-young", 7000n, "id-young", 99_999);
    keys.add(r, "late", "cm-old", 7001n, "id-old", 0);
    keys.expire(1000 + 6000);
    assert.equal(keys.size, 2);
    assert.equal(keys.find(r, sender(5999), "cm-5999"), undefined);
    assert.deepEqual(keys.find(r, "late", "cm-old"), { sequence: 7001n, id: "id-old", timeMs: 0 });
    keys.expire(100_000);
    assert.equal(keys.size, 0);
    assert.equal(r.keyCount, 0);
    assert.equal(keys.find(r, "young", "cm-young"), undefined);
    assert.equal(keys.find(r, "late", "cm-old"), undefined);
  });

  it("keeps rooms, senders and epochs apart: the same client_message_id in two rooms, from two senders, and after a clear", () => {
    const keys = new DedupeKeys();
    const general = room();
    const random = room();
    keys.add(general, "alice", "m1", 1n, "id-a", 10);
    keys.add(general, "bob", "m1", 2n, "id-b", 11);
    keys.add(random, "alice", "m1", 1n, "id-ra", 12);
    keys.add(general, "a\nb", "c", 3n, "id-ab", 13);
    assert.equal(keys.find(general, "alice", "m1")?.id, "id-a");
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b");
    assert.equal(keys.find(random, "alice", "m1")?.id, "id-ra");
    assert.equal(keys.find(random, "bob", "m1"), undefined);
    assert.equal(keys.find(general, "a", "b\nc"), undefined);
    assert.equal(keys.find(general, "a\nb", "c")?.sequence, 3n);
    assert.equal(general.keyCount, 3);
    // The older keys of a chain are found until they expire, the newer ones after.
    keys.expire(11);
    assert.equal(keys.find(general, "alice", "m1"), undefined);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b");
    assert.equal(keys.find(random, "alice", "m1")?.id, "id-ra");
    // A cleared room has a new epoch: its old keys no longer match, and count until they expire.
    general.epoch = "e2";
    assert.equal(keys.find(general, "bob", "m1"), undefined);
    keys.add(general, "bob", "m1", 1n, "id-b2", 20);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b2");
    assert.equal(general.keyCount, 3);
    keys.expire(20);
    assert.equal(general.keyCount, 1);
    assert.equal(random.keyCount, 0);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b2");
  });
});
