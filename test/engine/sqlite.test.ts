import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "vitest";
import Database from "better-sqlite3";
import type { StoredMessage } from "../../src/engine/engine.js";
import { createSqliteEngine, type SqliteEngine } from "../../src/engine/sqlite.js";
import { engineConformance } from "./conformance.js";
import { SCHEMA_VERSION } from "../../src/engine/sqlite-schema.js";
import { SCHEMA_V5, withoutKeysAfter } from "../support/sqlite-schemas.js";
import { all, draft, open, peek, publishMessage, tempDatabases } from "../support/sqlite-engine.js";

// What the file keeps under the retention limits is tested in sqlite-retention.test.ts.

const { dir, tempFile } = tempDatabases();

engineConformance("sqlite", (options) => createSqliteEngine({ ...options, path: tempFile() }));
engineConformance("sqlite (:memory:)", (options) => createSqliteEngine({ ...options, path: ":memory:" }));

describe("sqlite engine: durability", () => {
  it("keeps the epoch, sequence and every field of history across a restart", async () => {
    const path = tempFile();
    const room = "durable.room";
    const first = open(path);
    const published: StoredMessage[] = [];
    const backing = new Uint8Array([9, 9, 0, 255, 7, 9]);
    for (let i = 1; i <= 10; i++) {
      published.push(
        await publishMessage(first.engine, 
          draft(room, `héllo ${i} ✓`, 1_700_000_000_000 + i, {
            sender: i % 2 ? "alice" : "bob",
            // a view with an offset, and an empty payload, must store exactly their bytes
            payload: i === 3 ? new Uint8Array(0) : backing.subarray(1, 1 + (i % 5)),
            attributes: i === 4 ? {} : { kind: "test", n: String(i), "__proto__": "x", "emoji🙂": "ü" },
            clientMessageId: i === 5 ? "" : `cm-${i}`,
          }),
        ),
      );
    }
    const before = await first.engine.position(room);
    assert.equal(before.sequence, 10n);
    await first.engine.close();
    await assert.rejects(first.engine.position(room), /closed/);
    await assert.rejects(first.engine.publish(draft(room, "late")), /closed/);

    const second = open(path);
    try {
      const after = await second.engine.position(room);
      assert.deepEqual(after, { epoch: before.epoch, sequence: 10n });
      const page = await second.engine.history(room, all);
      assert.equal(page.messages.length, 10);
      assert.equal(page.firstSequence, 1n);
      assert.equal(page.hasMore, false);
      assert.deepEqual(page.position, after);
      assert.deepEqual(page.messages, published, "every field, payload bytes and attributes included");
      for (const m of page.messages) assert.equal(Object.getPrototypeOf(m.payload), Uint8Array.prototype);
      const next = await publishMessage(second.engine, draft(room, "eleven"));
      assert.equal(next.sequence, 11n);
      assert.equal(next.epoch, before.epoch);
    } finally {
      await second.engine.close();
    }
  });

  it("migrates a version 2 data directory: old messages read back without dependencies, new ones keep theirs", async () => {
    const path = tempFile();
    // The schema as version 2 wrote it: messages without the dependencies column.
    const v2 = withoutKeysAfter(SCHEMA_V5.replace(/,\n\s*-- \(since version 3\)[^\n]*\n\s*dependencies\s+TEXT/, ""));
    assert.ok(!/dependencies\s+TEXT/.test(v2) && !/keys_after\s+INTEGER/.test(v2));
    const db = new Database(path);
    db.exec(v2);
    db.pragma("user_version = 2");
    db.prepare("INSERT INTO rooms (id, name, epoch, sequence, created_ms) VALUES (1, 'old.room', 'e-old', 1, 0)").run();
    db.prepare(
      "INSERT INTO messages (room_id, sequence, id, sender, content, payload, attributes, time_ms, client_message_id) VALUES (1, 1, 'id-1', 'alice', 'before', x'', '{}', 5, '')",
    ).run();
    db.close();
    const { engine } = open(path);
    try {
      const dependencies = [{ room: "general", epoch: "e-1", sequence: 3n }];
      const next = await publishMessage(engine, draft("old.room", "after", 1_700_000_000_000, { dependencies }));
      assert.equal(next.sequence, 2n);
      const page = await engine.history("old.room", all);
      assert.deepEqual(page.messages.map((m) => [m.content, m.dependencies]), [["before", undefined], ["after", dependencies]]);
    } finally {
      await engine.close();
    }
    const check = new Database(path, { readonly: true });
    assert.equal(Number(check.pragma("user_version", { simple: true })), SCHEMA_VERSION);
    check.close();
  });

  it("gives a new room a new epoch, and different rooms different epochs", async () => {
    const { engine } = open(":memory:");
    const [a, b] = await Promise.all([engine.publish(draft("a", "x")), engine.publish(draft("b", "y"))]);
    assert.notEqual(a.message.epoch, b.message.epoch);
    assert.deepEqual(await engine.position("a"), { epoch: a.message.epoch, sequence: 1n });
    await engine.close();
  });

  it("a room created after an idle room was forgotten starts its own log, also under the forgotten room's id", async () => {
    const { engine, clock } = open(tempFile(), { retention: { historySize: 100, historyTtlMs: 1000, dedupeWindowMs: 0 } });
    await engine.publish(draft("gone", "old", clock.now));
    assert.equal((await engine.position("gone")).sequence, 1n);
    clock.now += 2000;
    assert.equal(await engine.sweep!(), 1);
    // SQLite gives the next room the largest id + 1: the forgotten room's.
    for (let i = 1; i <= 3; i++) await engine.publish(draft("new", `new-${i}`, clock.now));
    await engine.publish(draft("gone", "again", clock.now));
    const fresh = await engine.history("new", all);
    assert.deepEqual(fresh.messages.map((m) => [m.sequence, m.content]), [[1n, "new-1"], [2n, "new-2"], [3n, "new-3"]]);
    assert.deepEqual((await engine.history("gone", all)).messages.map((m) => [m.sequence, m.content]), [[1n, "again"]]);
    await engine.close();
  });

  it("writes no row for rooms that are only read, joined or cleared before their first publish", async () => {
    const path = tempFile();
    const { engine } = open(path);
    const entry = { user: "u", sessionId: "s", device: "", state: "online" as const, joinedAtMs: 1, sinceMs: 1, lastActiveMs: 1 };
    for (let i = 0; i < 200; i++) {
      const room = `unknown-${i}`;
      await engine.history(room, all);
      await engine.position(room);
      await engine.presenceSet(room, entry, "join");
      await engine.presenceRemove(room, "s");
      await engine.clear(room);
    }
    await engine.publish(draft("real", "x"));
    await engine.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.deepEqual(db.prepare("SELECT name FROM rooms").pluck().all(), ["real"]);
    } finally {
      db.close();
    }
  });

  it("applies a smaller historySize after a restart (in a directory it creates)", async () => {
    const path = join(dir, "nested", "data", "shrink.db");
    const big = open(path);
    for (let i = 1; i <= 20; i++) await big.engine.publish(draft("shrink", `m${i}`));
    await big.engine.close();
    const small = open(path, { retention: { historySize: 5, historyTtlMs: 0, dedupeWindowMs: 0 } });
    const page = await small.engine.history("shrink", all);
    assert.deepEqual(page.messages.map((m) => m.sequence), [16n, 17n, 18n, 19n, 20n]);
    assert.equal(page.firstSequence, 16n);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(peek(path, "shrink"), [16n, 17n, 18n, 19n, 20n], "the read scheduled a physical trim");
    await small.engine.close();
  });
});

describe("sqlite engine: group commit", () => {
  it("a clear in the same turn as publishes before it leaves none of them, and one after it starts the new epoch", async () => {
    const { engine } = open(tempFile());
    const [a, b, cleared, c] = await Promise.all([
      engine.publish(draft("cleared.burst", "a")),
      engine.publish(draft("cleared.burst", "b")),
      engine.clear("cleared.burst"),
      engine.publish(draft("cleared.burst", "c")),
    ]);
    assert.deepEqual([a.message.sequence, b.message.sequence, c.message.sequence], [1n, 2n, 1n]);
    assert.equal(c.message.epoch, cleared.epoch);
    assert.notEqual(a.message.epoch, cleared.epoch);
    const page = await engine.history("cleared.burst", all);
    assert.deepEqual(page.messages.map((m) => [m.content, m.epoch, m.sequence]), [["c", cleared.epoch, 1n]]);
    // Nothing published after the clear: the room is empty, and its next message is the new epoch's first.
    const [, , again] = await Promise.all([engine.publish(draft("cleared.quiet", "x")), engine.publish(draft("cleared.quiet", "y")), engine.clear("cleared.quiet")]);
    assert.deepEqual((await engine.history("cleared.quiet", all)).messages, []);
    const next = await engine.publish(draft("cleared.quiet", "z"));
    assert.deepEqual([next.message.epoch, next.message.sequence], [again.epoch, 1n]);
    await engine.close();
  });

  it("commits 500 publishes across 5 rooms in one turn in fewer transactions, gapless per room", async () => {
    const path = tempFile();
    const { engine, events } = open(path);
    const rooms = Array.from({ length: 5 }, (_, i) => `burst.${i}`);
    for (const room of rooms) await engine.watch(room);
    const before = (engine as SqliteEngine).stats();
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => publishMessage(engine, draft(rooms[i % 5]!, `m${i}`))),
    );
    const stats = (engine as SqliteEngine).stats();
    const transactions = stats.transactions - before.transactions;
    console.log(`# 500 publishes over 5 new rooms: ${transactions} transaction(s), largest batch ${stats.largestBatch}`);
    assert.ok(transactions < 500, `${transactions} transactions for 500 publishes`);
    assert.equal(transactions, 1, "one event-loop turn, one transaction");
    assert.equal(stats.publishes - before.publishes, 500);
    for (const room of rooms) {
      const seqs = results.filter((m) => m.room === room).map((m) => m.sequence);
      assert.deepEqual(seqs, Array.from({ length: 100 }, (_, i) => BigInt(i + 1)), `${room}: in call order, gapless`);
      assert.deepEqual(peek(path, room), seqs);
      const delivered = events
        .filter((e) => e.room === room)
        .map((e) => (e.event.type === "message" ? e.event.message.sequence : -1n));
      assert.deepEqual(delivered, seqs, `${room}: fanned out once each, in sequence order`);
    }
    await engine.close();
  });

  it("commits a burst of 256 or more queued in one callback when that callback returns, a smaller one at the end of the turn", async () => {
    const { engine } = open(tempFile());
    const sqlite = engine as SqliteEngine;
    const burst = async (count: number) => {
      const before = sqlite.stats().transactions;
      // setImmediate callbacks run in the order they were queued: this one runs before the engine's end-of-turn flush.
      const atTurnEnd = new Promise<number>((resolve) => setImmediate(() => resolve(sqlite.stats().transactions - before)));
      const published = Promise.all(Array.from({ length: count }, (_, i) => engine.publish(draft(`early.${count}`, `m${i}`))));
      const committedByTurnEnd = await atTurnEnd;
      const results = await published;
      assert.deepEqual(results.map((r) => r.message.sequence), Array.from({ length: count }, (_, i) => BigInt(i + 1)));
      return { committedByTurnEnd, transactions: sqlite.stats().transactions - before };
    };
    assert.deepEqual(await burst(300), { committedByTurnEnd: 1, transactions: 1 });
    assert.deepEqual(await burst(100), { committedByTurnEnd: 0, transactions: 1 });
    await engine.close();
  });

  it("resolves a publish only after its row is visible to another connection", async () => {
    const path = tempFile();
    const { engine } = open(path);
    await engine.position("visible"); // room exists, so peek can join on it
    const checks: Array<Promise<void>> = [];
    for (let i = 0; i < 3; i++) {
      const expected = BigInt(i + 1);
      const promise = publishMessage(engine, draft("visible", `v${i}`));
      assert.ok(!peek(path, "visible").includes(expected), "not committed within the publishing turn");
      checks.push(
        promise.then((message) => {
          assert.equal(message.sequence, expected);
          // The first thing that runs after resolution: the commit must already be durable and visible.
          assert.ok(peek(path, "visible").includes(expected), `sequence ${expected} visible on resolve`);
        }),
      );
      await checks[i];
    }
    // Same in a batch: every member is visible when the first resolves.
    const batch = Array.from({ length: 50 }, (_, i) => engine.publish(draft("visible", `b${i}`)));
    await batch[0];
    assert.equal(peek(path, "visible").length, 53);
    await Promise.all(batch);
    await engine.close();
  });

  it("close() commits queued publishes before closing; later calls reject", async () => {
    const path = tempFile();
    const { engine } = open(path);
    const pending = Array.from({ length: 10 }, (_, i) => publishMessage(engine, draft("closing", `c${i}`)));
    await engine.close();
    const done = await Promise.all(pending);
    assert.deepEqual(done.map((m) => m.sequence), Array.from({ length: 10 }, (_, i) => BigInt(i + 1)));
    assert.equal(peek(path, "closing").length, 10);
    await engine.close(); // idempotent
    await assert.rejects(engine.history("closing", all), /closed/);
    await assert.rejects(engine.watch("closing"), /closed/);
    await assert.rejects(engine.presenceSet("closing", { user: "u", sessionId: "s", device: "d", state: "online", joinedAtMs: 1, sinceMs: 1, lastActiveMs: 1 }, "join"), /closed/);
  });

  it("fails only the bad publish of a batch, keeping the others gapless", async () => {
    const { engine } = open(":memory:");
    const bad = draft("poison", "bad", 1, { attributes: { n: 1n } as unknown as Record<string, string> });
    const settled = await Promise.allSettled([
      engine.publish(draft("poison", "a")),
      engine.publish(bad),
      engine.publish(draft("poison", "b")),
      engine.publish(draft("other", "c")),
    ]);
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const page = await engine.history("poison", all);
    assert.deepEqual(page.messages.map((m) => [m.sequence, m.content]), [[1n, "a"], [2n, "b"]]);
    await engine.close();
  });

  it("after a batch that failed and was retried one by one, a room it touched reads and continues gapless", async () => {
    const { engine } = open(":memory:");
    // A room the engine already caches: the failed attempt must leave its cached state as the last commit left it.
    await engine.publish(draft("poison", "before"));
    const bad = draft("poison", "bad", 1, { attributes: { n: 1n } as unknown as Record<string, string> });
    const settled = await Promise.allSettled([engine.publish(draft("poison", "a")), engine.publish(bad), engine.publish(draft("poison", "b"))]);
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled"]);
    await engine.publish(draft("poison", "after"));
    const page = await engine.history("poison", all);
    assert.deepEqual(page.messages.map((m) => [m.sequence, m.content]), [[1n, "before"], [2n, "a"], [3n, "b"], [4n, "after"]]);
    await engine.close();
  });
});

describe("sqlite engine: one broker per database", () => {
  it("refuses a second engine on the same file, naming the directory and the holder, until the first closes", async () => {
    const path = join(dir, "locked", "seqcast.db");
    const first = open(path);
    assert.throws(
      () => open(path),
      (error: Error) => {
        assert.match(error.message, new RegExp(`data directory ${join(dir, "locked")} is in use by another seqcast broker`));
        assert.match(error.message, /--engine redis/);
        return true;
      },
    );
    await first.engine.publish(draft("locked", "still works"));
    await first.engine.close();
    const second = open(path);
    assert.equal((await second.engine.position("locked")).sequence, 1n);
    await second.engine.close();
  });
});
