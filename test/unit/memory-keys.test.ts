import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, it } from "vitest";
import { DedupeKeys, nextKeyId, type KeyRoom } from "../../src/engine/memory-keys.js";

const FNV_BASIS = 0x811c9dc5 | 0;
let rooms = 0;
/** A room as the engine has it: its name (ids below are made of it) and what the key table reads. */
type TestRoom = KeyRoom & { name: string };
const room = (name = `room${rooms++}`): TestRoom => ({ name, keyId: nextKeyId(), lastKeySlot: -1 });

describe("memory engine: idempotency keys", () => {
  it("remembers each key's position, id and time, forgets the expired ones oldest first, and stays right across compactions", () => {
    const keys = new DedupeKeys();
    const r = room();
    const sender = (k: number) => `user${k % 3}`;
    for (let k = 0; k < 5000; k++) keys.add(r, sender(k), `cm-${k}`, BigInt(k + 1), `id-${k}`, 1000 + k);
    assert.equal(keys.size, 5000);
    assert.equal(keys.remembers(r), true);
    keys.expire(1000 + 2500); // keys 0..2499 are older
    assert.equal(keys.size, 2500);
    assert.equal(keys.remembers(r), true);
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
    assert.equal(keys.remembers(r), false);
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
    assert.equal(keys.remembers(general), true);
    // The older keys of a chain are found until they expire, the newer ones after.
    keys.expire(11);
    assert.equal(keys.find(general, "alice", "m1"), undefined);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b");
    assert.equal(keys.find(random, "alice", "m1")?.id, "id-ra");
    // A cleared room has a new epoch, and a new keyId with it: its old keys no longer match, and count until they expire.
    general.keyId = nextKeyId();
    assert.equal(keys.find(general, "bob", "m1"), undefined);
    keys.add(general, "bob", "m1", 1n, "id-b2", 20);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b2");
    assert.equal(keys.remembers(general), true);
    keys.expire(20);
    assert.equal(keys.remembers(general), true);
    assert.equal(keys.remembers(random), false);
    assert.equal(keys.find(general, "bob", "m1")?.id, "id-b2");
  });

  it("finds the key of each room and sender when many use the same client_message_id, and forgets them one by one", () => {
    const keys = new DedupeKeys();
    const many = Array.from({ length: 500 }, () => room());
    // Clients counting per room: "1", "2", "3" in every room, from two senders.
    let t = 0;
    for (const r of many) for (const sender of ["ann", "bo"]) for (const cid of ["1", "2", "3"]) keys.add(r, sender, cid, BigInt(++t), `${r.name}/${sender}/${cid}`, t);
    for (const r of [many[0]!, many[250]!, many[499]!])
      for (const sender of ["ann", "bo"]) for (const cid of ["1", "2", "3"]) assert.equal(keys.find(r, sender, cid)?.id, `${r.name}/${sender}/${cid}`);
    assert.equal(keys.find(many[0]!, "cy", "1"), undefined);
    assert.equal(keys.find(room(), "ann", "1"), undefined);
    // The first half of the keys expire: the rooms of the second half keep theirs.
    keys.expire(1 + 1500);
    assert.equal(keys.find(many[249]!, "bo", "3"), undefined);
    assert.equal(keys.find(many[250]!, "ann", "1")?.id, `${many[250]!.name}/ann/1`);
    assert.equal(keys.remembers(many[249]!), false);
    assert.equal(keys.remembers(many[250]!), true);
    keys.expire(1 + 3000);
    assert.equal(keys.size, 0);
    // Nothing is left behind: a new user of "1" is its only one.
    const late = room();
    keys.add(late, "ann", "1", 1n, "late", 5000);
    assert.equal(keys.find(late, "ann", "1")?.id, "late");
  });

  it("keeps client_message_ids and message ids of any text: Unicode, long, empty, and alike but for their encoding", () => {
    const keys = new DedupeKeys(2, FNV_BASIS); // FNV-1a's own offset basis, for the colliding pairs below (the default is random)
    const r = room();
    const long = "é".repeat(300); // 600 bytes of UTF-8, beyond the table's first buffers
    const texts = ["", "a", "é", "e\u0301", "\u{1F600}", long, `${long}x`, "x".repeat(128), "\u00e8", "Ã©"];
    texts.forEach((cid, k) => keys.add(r, "ann", cid, BigInt(k + 1), `${cid}|id-${k}|${long.slice(0, k * 20)}`, k));
    texts.forEach((cid, k) => assert.deepEqual(keys.find(r, "ann", cid), { sequence: BigInt(k + 1), id: `${cid}|id-${k}|${long.slice(0, k * 20)}`, timeMs: k }, `client id #${k}`));
    assert.equal(keys.find(r, "ann", "e"), undefined);
    // Ids with the same hash (FNV-1a of their bytes), of one length and of two: told apart by their bytes.
    const fnv = (t: string) => [...Buffer.from(t)].reduce((h, b) => Math.imul(h ^ b, 0x01000193), 0x811c9dc5);
    for (const [a, b] of [["cm-0043zx", "cm-00bpad"], ["cm-x6mzy", "cm-x181d0"]] as const) {
      assert.equal(fnv(a), fnv(b), "the pair must collide: pick another if the hash changed");
      keys.add(r, "cy", a, 50n, `first ${a}`, 50);
      assert.equal(keys.find(r, "cy", b), undefined);
      keys.add(r, "cy", b, 51n, `second ${b}`, 51);
      assert.equal(keys.find(r, "cy", a)?.id, `first ${a}`);
      assert.equal(keys.find(r, "cy", b)?.id, `second ${b}`);
    }
    assert.equal(keys.find(r, "ann", `${long}y`), undefined);
    assert.equal(keys.find(r, "ann", "é".repeat(299)), undefined);
    // Growing to hold 10,000 keys and shrinking back as they expire keeps every answer.
    for (let k = 0; k < 10_000; k++) keys.add(r, "bo", `k${k}`, BigInt(k), `i${k}`, 100 + k);
    keys.expire(100 + 9_990);
    assert.equal(keys.size, 10);
    assert.equal(keys.remembers(r), true);
    assert.equal(keys.find(r, "bo", "k9989"), undefined);
    for (let k = 9_990; k < 10_000; k++) assert.equal(keys.find(r, "bo", `k${k}`)?.id, `i${k}`);
    keys.add(r, "bo", long, 1n, long, 20_000);
    assert.equal(keys.find(r, "bo", long)?.id, long);
  });

  it("keeps UUIDs (stored packed) apart from text that only looks like one, and gives back each id exactly", () => {
    const keys = new DedupeKeys(4);
    const r = room();
    const uuid = "0c1d2e3f-aaaa-4bbb-8ccc-00000000000f";
    // A UUID whose 16 bytes are ASCII, and those 16 bytes as text: the same bytes stored, the same hash, different ids.
    const asciiUuid = "41424344-4546-4748-494a-4b4c4d4e4f50";
    const sameBytes = "ABCDEFGHIJKLMNOP";
    const alike = [
      uuid,
      uuid.toUpperCase(), // not canonical: stored as text, found only as itself
      uuid.replace("-aaaa", "aaaa-"), // a dash out of place
      uuid.slice(0, 35), // one short
      `${uuid}0`, // one long
      uuid.replace("f", "g"), // not hex
      uuid.replace("0c", "\u{1F600}".slice(0, 2)), // a character beyond ASCII where a digit goes
      "00000000-0000-0000-0000-000000000000",
      "ffffffff-ffff-ffff-ffff-ffffffffffff",
      asciiUuid,
      sameBytes,
    ];
    const ids = ["9f8e7d6c-5b4a-4392-a180-fedcba987654", "ID-NOT-A-UUID", "9F8E7D6C-5B4A-4392-A180-FEDCBA987654", "", uuid];
    alike.forEach((cid, k) => keys.add(r, "ann", cid, BigInt(k + 1), ids[k % ids.length]!, k));
    alike.forEach((cid, k) => assert.deepEqual(keys.find(r, "ann", cid), { sequence: BigInt(k + 1), id: ids[k % ids.length]!, timeMs: k }, `client id #${k}`));
    assert.equal(keys.find(r, "bo", uuid), undefined);
    assert.equal(keys.find(r, "ann", "0c1d2e3f-aaaa-4bbb-8ccc-00000000000e"), undefined);
    // Packed, a key of two UUIDs takes 32 bytes of text, where the same keys in capitals (stored as text) take 72.
    const fill = (upper: boolean) => {
      const table = new DedupeKeys(4096);
      for (let k = 0; k < 4096; k++) {
        const cid = `${(k + 0x10000000).toString(16)}-aaaa-4bbb-8ccc-000000000000`;
        table.add(r, "cy", upper ? cid.toUpperCase() : cid, BigInt(k), upper ? ids[0]!.toUpperCase() : ids[0]!, k);
      }
      return table;
    };
    const [packed, text] = [fill(false), fill(true)];
    assert.ok(packed.bytes + 4096 * 40 <= text.bytes, `${packed.bytes} bytes packed, ${text.bytes} as text`);
    assert.equal(packed.find(r, "cy", "10000fff-aaaa-4bbb-8ccc-000000000000")?.id, ids[0]);
    assert.equal(text.find(r, "cy", "10000FFF-AAAA-4BBB-8CCC-000000000000")?.id, ids[0]!.toUpperCase());
  });

  it("reuses its memory for a window of steady size: segments and their text", () => {
    const keys = new DedupeKeys(8);
    const r = room();
    const publish = (k: number) => keys.add(r, "ann", `cm-${k}`, BigInt(k), `id-${k}`, k);
    for (let k = 0; k < 100; k++) publish(k);
    const grown = { segments: keys.segmentsAllocated, bytes: keys.bytes };
    // A window of 100 keys, 10,000 times over: nothing more is allocated.
    for (let k = 100; k < 10_100; k++) {
      keys.expire(k - 99);
      publish(k);
    }
    assert.equal(keys.size, 100);
    assert.equal(keys.remembers(r), true);
    assert.ok(keys.segmentsAllocated <= grown.segments + 2, `${keys.segmentsAllocated} segments allocated, ${grown.segments} for the first 100 keys`);
    assert.ok(keys.bytes <= grown.bytes * 2, `${keys.bytes} bytes, ${grown.bytes} for the first 100 keys`);
    for (const k of [10_000, 10_099]) assert.equal(keys.find(r, "ann", `cm-${k}`)?.id, `id-${k}`);
    assert.equal(keys.find(r, "ann", "cm-9999"), undefined);
  });

  it("doubles its buckets a few keys per add, finding every key while they move, through expiry and a shrink", () => {
    const keys = new DedupeKeys(4096); // 8,192 buckets: the 4,097th key doubles them
    const rooms = Array.from({ length: 7 }, () => room());
    let next = 0;
    const add = () => {
      const k = next++;
      keys.add(rooms[k % 7]!, `s${k % 3}`, `cm-${k}`, BigInt(k), `id-${k}`, k);
    };
    const found = (k: number) => keys.find(rooms[k % 7]!, `s${k % 3}`, `cm-${k}`)?.id;
    const allFound = (from: number, what: string) => {
      for (let k = from; k < next; k++) assert.equal(found(k), `id-${k}`, `key ${k} ${what}`);
    };
    while (next < 4096) add();
    assert.equal(keys.moving, false);
    add();
    assert.equal(keys.moving, true, "the add that doubled moved only a few keys");
    // Mid-move: old keys, keys added since (they join the old buckets) and misses all answer right.
    while (next < 4150) add();
    assert.equal(keys.moving, true);
    allFound(0, "mid-move");
    assert.equal(found(next), undefined);
    assert.equal(keys.find(rooms[1]!, "s0", "cm-0"), undefined, "another room's key");
    // Expiry passes keys not moved yet; the move goes on from the oldest kept.
    keys.expire(3000);
    assert.equal(keys.size, next - 3000);
    for (let k = 0; k < 3000; k += 97) assert.equal(found(k), undefined, `expired key ${k}`);
    allFound(3000, "after expiry mid-move");
    while (keys.moving) add();
    allFound(3000, "after the move");
    // Doubling again, then all but 10 keys expire mid-move: the shrink ends the move first.
    while (!keys.moving) add();
    keys.expire(next - 10);
    assert.equal(keys.moving, false);
    assert.equal(keys.size, 10);
    allFound(next - 10, "after the shrink");
    assert.equal(found(next - 11), undefined);
    add();
    allFound(next - 11, "added after the shrink");
  });

  it("answers as a list of every key would, for random publishes, clears and expiry (fast-check)", () => {
    type Op = { kind: "publish"; room: number; sender: number; cid: number } | { kind: "clear"; room: number } | { kind: "expire"; back: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("publish" as const), room: fc.nat(3), sender: fc.nat(2), cid: fc.nat(3) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), room: fc.nat(3) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire" as const), back: fc.nat(30) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.constantFrom(2, 8, 4096), (ops, entries) => {
        // Small tables grow, shrink and share buckets between keys (a table of 2 entries has 4 buckets).
        const keys = new DedupeKeys(entries);
        const rs = Array.from({ length: 4 }, (_, i) => room(`r${i}`));
        const model: Array<{ room: KeyRoom; keyId: number; sender: string; cid: string; time: number; id: string }> = [];
        let oldest = 0;
        let now = 0;
        const expected = (r: KeyRoom, sender: string, cid: string) =>
          [...model].reverse().find((k) => k.time >= oldest && k.room === r && k.keyId === r.keyId && k.sender === sender && k.cid === cid)?.id;
        for (const o of ops) {
          now++;
          if (o.kind === "clear") rs[o.room]!.keyId = nextKeyId();
          else if (o.kind === "expire") {
            oldest = Math.max(oldest, now - o.back);
            keys.expire(oldest);
          } else {
            const r = rs[o.room]!;
            const sender = `s${o.sender}`;
            const cid = `${o.cid}`;
            assert.equal(keys.find(r, sender, cid)?.id, expected(r, sender, cid));
            if (expected(r, sender, cid) === undefined) {
              keys.add(r, sender, cid, BigInt(now), `id${now}`, now);
              model.push({ room: r, keyId: r.keyId, sender, cid, time: now, id: `id${now}` });
            }
          }
          for (const r of rs) assert.equal(keys.remembers(r), model.some((k) => k.time >= oldest && k.room === r));
        }
        for (const r of rs) for (const sender of ["s0", "s1", "s2"]) for (const cid of ["0", "1", "2", "3"]) assert.equal(keys.find(r, sender, cid)?.id, expected(r, sender, cid));
        keys.expire(now + 1);
        assert.equal(keys.size, 0);
      }),
      { numRuns: 300 },
    );
  });
});
