import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, it } from "vitest";
import Database from "better-sqlite3";
import type { MessageDraft } from "../../src/engine/engine.js";
import { createSqliteEngine } from "../../src/engine/sqlite.js";
import { SCHEMA_VERSION } from "../../src/engine/sqlite-schema.js";
import { keyHash } from "../../src/engine/sqlite-idempotency.js";
import { KeyIndex } from "../../src/engine/sqlite-key-index.js";
import { SCHEMA_V5, withoutKeysAfter } from "../support/sqlite-schemas.js";

// The SQLite engine's idempotency keys (sqlite-idempotency.ts): a log in the
// file, looked up through an index in memory. The conformance suite covers
// the window's semantics; these cases cover what that design could get
// wrong: restarts, expiry of the log, hash collisions, rolled-back batches,
// and files written by version 4.

const dir = mkdtempSync(join(tmpdir(), "seqcast-idempotency-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const tempFile = () => join(dir, `keys-${files++}.db`);

const WINDOW = 120_000;
const T0 = 1_700_000_000_000;

function open(path: string, clock = { now: T0 }) {
  const engine = createSqliteEngine({
    path,
    retention: { historySize: 1000, historyTtlMs: 0, dedupeWindowMs: WINDOW },
    listener: () => {},
    now: () => clock.now,
  });
  return { engine, clock };
}

const draft = (room: string, clientMessageId: string, content = clientMessageId, timeMs = T0, sender = "alice"): MessageDraft => ({
  room,
  sender,
  content,
  payload: new Uint8Array([1]),
  attributes: {},
  timeMs,
  clientMessageId,
});

function keyRows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return Number(db.prepare("SELECT count(*) FROM idempotency_keys").pluck().get());
  } finally {
    db.close();
  }
}

/** Two client_message_ids with the same keyHash for (room id 1, "alice"): a birthday search over short ids. */
function collidingIds(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `k${i}`;
    const hash = keyHash(1n, "alice", id);
    const other = seen.get(hash);
    if (other !== undefined) return [other, id];
    seen.set(hash, id);
  }
}

describe("sqlite engine: idempotency keys", () => {
  it("keeps a key across a restart: the retry is answered with the original", async () => {
    const path = tempFile();
    const first = open(path);
    const original = await first.engine.publish(draft("general", "key-1"));
    await first.engine.publish(draft("general", "key-2"));
    await first.engine.close();

    const second = open(path, first.clock);
    try {
      const retry = await second.engine.publish(draft("general", "key-1", "a retry"));
      assert.equal(retry.duplicate, true);
      assert.equal(retry.message.id, original.message.id);
      assert.equal(retry.message.sequence, 1n);
      assert.equal(retry.message.content, "key-1");
      const fresh = await second.engine.publish(draft("general", "key-3"));
      assert.deepEqual([fresh.duplicate, fresh.message.sequence], [false, 3n]);
    } finally {
      await second.engine.close();
    }
  });

  it("deletes keys from the file once older than the window, and then treats the id as new", async () => {
    const path = tempFile();
    const { engine, clock } = open(path);
    try {
      for (let i = 0; i < 50; i++) await engine.publish(draft("general", `old-${i}`));
      assert.equal(keyRows(path), 50);
      clock.now += WINDOW + 1;
      const late = await engine.publish(draft("general", "old-0", "again", clock.now));
      assert.deepEqual([late.duplicate, late.message.sequence], [false, 51n]);
      assert.equal(keyRows(path), 1, "only the new key is left");
      const retry = await engine.publish(draft("general", "old-0", "retry", clock.now));
      assert.deepEqual([retry.duplicate, retry.message.sequence], [true, 51n]);
    } finally {
      await engine.close();
    }
  });

  it("finds a key for its whole window while the in-memory index turns over", async () => {
    const path = tempFile();
    const { engine, clock } = open(path);
    try {
      clock.now = T0 + WINDOW / 2;
      const original = await engine.publish(draft("general", "mid", "mid", clock.now));
      // Writes while the index turns over (it does once its generation is a window old).
      for (const step of [WINDOW / 2, WINDOW / 4, WINDOW / 4 - 2]) {
        clock.now += step;
        await engine.publish(draft("general", `filler-${clock.now}`, "filler", clock.now));
      }
      assert.equal(clock.now, original.message.timeMs + WINDOW - 2);
      const retry = await engine.publish(draft("general", "mid", "retry", clock.now));
      assert.deepEqual([retry.duplicate, retry.message.sequence], [true, 1n]);
      clock.now += 3;
      const late = await engine.publish(draft("general", "mid", "late", clock.now));
      assert.equal(late.duplicate, false);
    } finally {
      await engine.close();
    }
  });

  it("tells apart two ids whose hashes collide, before and after a restart", async () => {
    const [a, b] = collidingIds();
    assert.equal(keyHash(1n, "alice", a), keyHash(1n, "alice", b));
    const path = tempFile();
    const first = open(path);
    const stored = await Promise.all([first.engine.publish(draft("general", a)), first.engine.publish(draft("general", b))]);
    assert.deepEqual(stored.map((r) => [r.duplicate, r.message.sequence]), [[false, 1n], [false, 2n]]);
    for (const [id, sequence] of [[a, 1n], [b, 2n]] as const) {
      const retry = await first.engine.publish(draft("general", id, "retry"));
      assert.deepEqual([retry.duplicate, retry.message.sequence, retry.message.content], [true, sequence, id]);
    }
    await first.engine.close();
    const second = open(path, first.clock);
    try {
      for (const [id, sequence] of [[b, 2n], [a, 1n]] as const) {
        const retry = await second.engine.publish(draft("general", id, "retry"));
        assert.deepEqual([retry.duplicate, retry.message.sequence, retry.message.content], [true, sequence, id]);
      }
    } finally {
      await second.engine.close();
    }
  });

  it("remembers no key of a publish that failed with its batch, and every key of those that were stored", async () => {
    const path = tempFile();
    const { engine } = open(path);
    try {
      const bad = { ...draft("general", "bad"), attributes: { n: 1n } as unknown as Record<string, string> };
      const settled = await Promise.allSettled([
        engine.publish(draft("general", "good-1")),
        engine.publish(bad),
        engine.publish(draft("general", "good-2")),
      ]);
      assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled"]);
      const again = await engine.publish(draft("general", "bad", "fixed"));
      assert.deepEqual([again.duplicate, again.message.content], [false, "fixed"]);
      const retries = await Promise.all(["good-1", "good-2", "bad"].map((id) => engine.publish(draft("general", id, "retry"))));
      assert.deepEqual(retries.map((r) => [r.duplicate, r.message.content]), [[true, "good-1"], [true, "good-2"], [true, "fixed"]]);
      assert.equal(keyRows(path), 3);
    } finally {
      await engine.close();
    }
  });

  it("forgets a cleared room's keys", async () => {
    const path = tempFile();
    const { engine } = open(path);
    try {
      await engine.publish(draft("general", "k"));
      await engine.publish(draft("other", "k"));
      await engine.clear("general");
      const after = await engine.publish(draft("general", "k", "after the clear"));
      assert.deepEqual([after.duplicate, after.message.sequence], [false, 1n]);
      assert.equal((await engine.publish(draft("other", "k", "retry"))).duplicate, true, "another room's key stays");
    } finally {
      await engine.close();
    }
  });

  it("keeps a cleared room's old keys void across a restart, also for a clear in the same batch", async () => {
    const path = tempFile();
    const first = open(path);
    await first.engine.publish(draft("general", "before"));
    await first.engine.clear("general");
    // One turn: a publish, a clear and a retry of that publish share a group commit.
    const [stored, , retried] = await Promise.all([
      first.engine.publish(draft("batch", "same-turn")),
      first.engine.clear("batch"),
      first.engine.publish(draft("batch", "same-turn", "after the clear")),
    ]);
    assert.deepEqual([stored.duplicate, retried.duplicate, retried.message.sequence], [false, false, 1n]);
    await first.engine.close();
    const second = open(path, first.clock);
    try {
      const again = await second.engine.publish(draft("general", "before", "after a restart"));
      assert.deepEqual([again.duplicate, again.message.sequence], [false, 1n]);
      const retry = await second.engine.publish(draft("batch", "same-turn", "retry"));
      assert.deepEqual([retry.duplicate, retry.message.content], [true, "after the clear"]);
    } finally {
      await second.engine.close();
    }
  });

  it("sweep keeps a room while a key of it is live, also after a restart, and forgets it after the window", async () => {
    const path = tempFile();
    const clock = { now: T0 };
    const settings = (p: string) =>
      createSqliteEngine({
        path: p,
        retention: { historySize: 1000, historyTtlMs: 1000, dedupeWindowMs: WINDOW },
        listener: () => {},
        now: () => clock.now,
      });
    const first = settings(path);
    const original = await first.publish(draft("keyed", "k"));
    await first.close();
    const second = settings(path);
    try {
      clock.now += 2000; // the message is past its TTL; its key is not
      await second.sweep!();
      const retry = await second.publish(draft("keyed", "k", "retry", clock.now));
      assert.deepEqual([retry.duplicate, retry.message.epoch], [true, original.message.epoch], "the room and its key were kept");
      clock.now += WINDOW;
      await second.sweep!();
      assert.deepEqual(await second.position("keyed"), { epoch: "", sequence: 0n }, "forgotten once the key expired");
    } finally {
      await second.close();
    }
  });

  it("sweep keeps a room while a key this process recorded is live, batch or not, and forgets it after the window", async () => {
    const clock = { now: T0 };
    const engine = createSqliteEngine({
      path: tempFile(),
      retention: { historySize: 1000, historyTtlMs: 1000, dedupeWindowMs: WINDOW },
      listener: () => {},
      now: () => clock.now,
    });
    try {
      const original = await engine.publish(draft("one", "k"));
      const batch = await engine.publishBatch!([draft("many", "a"), draft("many", "b")]);
      await engine.publish({ ...draft("unkeyed", "x"), clientMessageId: "" });
      clock.now += 2000; // every message is past its TTL; the keys are not
      assert.equal(await engine.sweep!(), 1, "only the room without a key is forgotten");
      assert.deepEqual(await engine.position("unkeyed"), { epoch: "", sequence: 0n });
      const retry = await engine.publish(draft("one", "k", "retry", clock.now));
      assert.deepEqual([retry.duplicate, retry.message.epoch], [true, original.message.epoch], "the room and its key were kept");
      const again = await engine.publish(draft("many", "b", "retry", clock.now));
      assert.deepEqual([again.duplicate, again.message.sequence], [true, batch[1]!.message.sequence]);
      clock.now += WINDOW + 2000;
      assert.equal(await engine.sweep!(), 2, "both forgotten once their keys expired");
    } finally {
      await engine.close();
    }
  });

  it("migrates a version 4 file: its live keys still deduplicate, its old table is gone", async () => {
    const path = tempFile();
    // The schema as version 4 wrote it: keys in "dedupe", keyed by the key.
    const v4 = withoutKeysAfter(SCHEMA_V5.replace(/-- \(since version 5;[\s\S]*?\n\);\n/, "")).concat(`
      CREATE TABLE dedupe (room_id INTEGER NOT NULL, sender TEXT NOT NULL, client_message_id TEXT NOT NULL,
        sequence INTEGER NOT NULL, id TEXT NOT NULL, time_ms INTEGER NOT NULL,
        PRIMARY KEY (room_id, sender, client_message_id)) WITHOUT ROWID;
      CREATE INDEX dedupe_time ON dedupe (time_ms);`);
    assert.ok(!/idempotency_keys|keys_after\s+INTEGER/.test(v4));
    const db = new Database(path);
    db.exec(v4);
    db.pragma("user_version = 4");
    db.prepare("INSERT INTO rooms (id, name, epoch, sequence, created_ms) VALUES (1, 'general', 'e-old', 0, 0)").run();
    db.prepare(
      `INSERT INTO messages (room_id, sequence, id, sender, content, payload, attributes, time_ms, client_message_id)
       VALUES (1, 1, 'id-1', 'alice', 'before', x'', '{}', ${T0}, 'old-key')`,
    ).run();
    db.prepare(`INSERT INTO dedupe VALUES (1, 'alice', 'old-key', 1, 'id-1', ${T0})`).run();
    db.close();

    const { engine } = open(path, { now: T0 + 1000 });
    try {
      const retry = await engine.publish(draft("general", "old-key", "retry", T0 + 1000));
      assert.deepEqual([retry.duplicate, retry.message.id, retry.message.sequence, retry.message.content], [true, "id-1", 1n, "before"]);
      const next = await engine.publish(draft("general", "new-key", "after", T0 + 1000));
      assert.deepEqual([next.duplicate, next.message.sequence], [false, 2n]);
    } finally {
      await engine.close();
    }
    const check = new Database(path, { readonly: true });
    assert.equal(Number(check.pragma("user_version", { simple: true })), SCHEMA_VERSION);
    assert.equal(check.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'dedupe'").pluck().get(), 0);
    check.close();
  });
});

describe("KeyIndex", () => {
  it("finds every key added under a hash, across growth, and nothing under another", () => {
    const index = new KeyIndex(0);
    for (let key = 1; key <= 5000; key++) index.add(key % 7, key);
    const under = (hash: number) => {
      const keys: number[] = [];
      for (let slot = index.first(hash); slot >= 0; slot = index.next(slot, hash)) keys.push(index.keyAt(slot));
      return keys.sort((x, y) => x - y);
    };
    assert.deepEqual(under(3), Array.from({ length: 5000 }, (_, i) => i + 1).filter((k) => k % 7 === 3));
    assert.deepEqual(under(8), []);
    assert.equal(index.size, 5000);
  });

  it("keeps key_ids beyond 2^32 exactly, and one below the first added", () => {
    const index = new KeyIndex(0);
    const base = 5_000_000_000;
    for (let i = 0; i < 10; i++) index.add(42, base + i * 1000);
    index.add(42, base - 7);
    const keys: number[] = [];
    for (let slot = index.first(42); slot >= 0; slot = index.next(slot, 42)) keys.push(index.keyAt(slot));
    assert.deepEqual(keys.sort((x, y) => x - y), [base - 7, ...Array.from({ length: 10 }, (_, i) => base + i * 1000)]);
  });

  it("doubles a few slots per add: every key is found once mid-move, and the move ends before the next doubling", () => {
    const index = new KeyIndex(0);
    const hashOf = (key: number) => Math.imul(key, 0x9e3779b1) | 0;
    const found = (hash: number) => {
      const keys: number[] = [];
      for (let slot = index.first(hash); slot >= 0; slot = index.next(slot, hash)) keys.push(index.keyAt(slot));
      return keys;
    };
    let moves = 0;
    let checkedMidMove = 0;
    let wasMoving = false;
    for (let key = 1; key <= 40_000; key++) {
      const before = index.bytes;
      index.add(hashOf(key), key);
      if (index.moving && !wasMoving) {
        moves++;
        // A doubling starts with both arrays held: the new ones twice the old.
        assert.equal(index.bytes, before * 3);
      }
      wasMoving = index.moving;
      if (index.moving && key % 97 === 0) {
        checkedMidMove++;
        for (let k = 1; k <= key; k += 13) {
          const keys = found(hashOf(k));
          assert.deepEqual(keys, [k], `key ${k} of ${key}`);
        }
        assert.deepEqual(found(hashOf(key + 1)), []);
      }
    }
    // 1,024 slots grow at 513 keys, then 1,025, … 32,769: seven doublings, each moved to its end before the next (or one would go uncounted).
    assert.equal(moves, 7);
    assert.ok(checkedMidMove > 10);
    for (let k = 1; k <= 40_000; k++) assert.deepEqual(found(hashOf(k)), [k]);
  });

  it("a generation that stops being added to mid-move finishes its move through migrate()", () => {
    const index = new KeyIndex(0);
    let key = 1;
    while (!index.moving) index.add(key, key++);
    for (let i = 0; i < 10_000 && index.moving; i++) index.migrate(8);
    assert.equal(index.moving, false);
    for (let k = 1; k < key; k++) assert.deepEqual([index.keyAt(index.first(k))], [k]);
  });
});
