import assert from "node:assert/strict";
import { describe, it } from "vitest";
import fc from "fast-check";
import type { EngineOptions, HistoryQuery, StoredMessage } from "../../src/engine/engine.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { createSqliteEngine } from "../../src/engine/sqlite.js";
import { all, draft, open, peek, publishMessage, tempDatabases } from "../support/sqlite-engine.js";

/**
 * What the SQLite engine keeps under its retention limits: exactly the rows
 * retention keeps, in the file and in answers, whatever the order of
 * publishes, clock moves, clears and restarts (property-based, with
 * fast-check). The describe titles are those these tests had in
 * sqlite.test.ts, so their names are unchanged.
 */

const { tempFile } = tempDatabases();

describe("sqlite engine: group commit", () => {
  it("physically deletes rows a read finds expired", async () => {
    const path = tempFile();
    const h = open(path, { retention: { historySize: 100, historyTtlMs: 1000, dedupeWindowMs: 0 } });
    await h.engine.publish(draft("ttl", "a", h.clock.now));
    await h.engine.publish(draft("ttl", "b", h.clock.now + 500));
    h.clock.now += 1200;
    const page = await h.engine.history("ttl", all);
    assert.deepEqual(page.messages.map((m) => m.content), ["b"]);
    assert.deepEqual(peek(path, "ttl"), [1n, 2n], "a read does not write by itself…");
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(peek(path, "ttl"), [2n], "…but schedules the trim into the next write transaction");
    await h.engine.close();
  });

  it("keeps the last messages of each of 40 rooms written in one transaction, and lets the TTL decide where the message the size limit keeps first has expired", async () => {
    const path = tempFile();
    const h = open(path, { retention: { historySize: 3, historyTtlMs: 10_000, dedupeWindowMs: 0 } });
    const rooms = Array.from({ length: 40 }, (_, i) => `many${i}`);
    const start = h.clock.now;
    // Each round one transaction over 40 rooms (more than one trim statement's worth). Message 5 of
    // "many7" carries a time 20 s old: retained behind younger ones, until the size limit keeps it first.
    for (let round = 1; round <= 7; round++) {
      await h.engine.publishBatch!(rooms.map((room) => draft(room, `r${round}`, room === "many7" && round === 5 ? start - 20_000 : h.clock.now)));
      h.clock.now += 10;
      const kept = Array.from({ length: Math.min(round, 3) }, (_, k) => BigInt(Math.max(round, 3) - 2 + k));
      for (const room of rooms) {
        const expected = room === "many7" && round === 7 ? [6n, 7n] : kept;
        assert.deepEqual(peek(path, room), expected, `${room} after round ${round}`);
        assert.deepEqual((await h.engine.history(room, all)).messages.map((m) => m.sequence), expected, `${room} after round ${round}`);
      }
    }
    await h.engine.close();
  });

  it("deletes a full room's oldest rows in groups of a quarter of the history size, at most 64, and never returns them", async () => {
    for (const [historySize, batch] of [[8, 2], [300, 64]] as const) {
      const path = tempFile();
      const h = open(path, { retention: { historySize, historyTtlMs: 0, dedupeWindowMs: 0 } });
      const room = `group${historySize}`;
      const publish = (count: number, from: number) =>
        h.engine.publishBatch!(Array.from({ length: count }, (_, i) => draft(room, `m${from + i}`, h.clock.now)));
      const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));
      await publish(historySize, 1);
      assert.deepEqual(peek(path, room), range(1, historySize), `history ${historySize}: full, nothing past the limit`);
      // One publish at a time: each commit decides on its own whether the room is due.
      for (let n = historySize + 1; n < historySize + batch; n++) await publish(1, n);
      const last = historySize + batch - 1;
      assert.deepEqual(peek(path, room), range(1, last), `history ${historySize}: ${batch - 1} rows past the limit stay stored`);
      assert.deepEqual((await h.engine.history(room, all)).messages.map((m) => m.sequence), range(last - historySize + 1, last), "but are never returned");
      assert.equal((await h.engine.history(room, all)).firstSequence, BigInt(last - historySize + 1));
      await new Promise((r) => setImmediate(r));
      assert.equal(peek(path, room).length, last, "a read does not schedule a trim that is not due");
      await publish(1, last + 1);
      assert.deepEqual(peek(path, room), range(batch + 1, last + 1), `history ${historySize}: row ${batch} past the limit deletes all ${batch}`);
      await h.engine.close();
    }
  });

  // Batches skip the trim query while the cached oldest row is within both
  // limits and fewer than a group of rows are past the size limit; the file
  // must still hold what retention keeps, and below it only those rows.
  it("stores what retention keeps, and below it fewer than a group of rows past the size limit, after every write, across clears and a restart (random publishes, clock moves, unordered times)", async () => {
    type Step =
      | { op: "publish"; room: number; dt: number; skew: number; burst: number }
      | { op: "tick"; room: number; ms: number }
      | { op: "clear"; room: number }
      | { op: "restart" };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 8, arbitrary: fc.record({ op: fc.constant("publish" as const), room: fc.nat(1), dt: fc.nat(700), skew: fc.integer({ min: -600, max: 0 }), burst: fc.integer({ min: 1, max: 4 }) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("tick" as const), room: fc.nat(1), ms: fc.nat(2500) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), room: fc.nat(1) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("restart" as const) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom(0, 1000), async (steps, historySize, historyTtlMs) => {
        // Rows past the size limit a room may store before a write deletes them together (sqlite-retention.ts).
        const batch = Math.max(1, Math.min(64, Math.floor(historySize / 4)));
        const path = tempFile();
        const retention = { historySize, historyTtlMs, dedupeWindowMs: 0 };
        let h = open(path, { retention });
        let n = 0;
        const last = new Map<string, bigint>();
        try {
          for (const s of steps) {
            if (s.op === "restart") {
              const now = h.clock.now;
              const before = await Promise.all(["r0", "r1"].map((r) => h.engine.position(r)));
              await h.engine.close();
              h = open(path, { retention });
              h.clock.now = now;
              assert.deepEqual(await Promise.all(["r0", "r1"].map((r) => h.engine.position(r))), before, "positions across the restart");
              continue;
            }
            const room = `r${s.room}`;
            if (s.op === "clear") {
              await h.engine.clear(room);
              last.set(room, 0n);
            }
            else if (s.op === "tick") {
              // Time passes without a publish: the read that finds expired rows has them deleted next turn.
              h.clock.now += s.ms;
              await h.engine.history(room, all);
              await new Promise((r) => setImmediate(r));
            } else {
              h.clock.now += s.dt;
              // A burst is one group commit: several messages of the room in one transaction.
              const results = await Promise.all(Array.from({ length: s.burst }, () => h.engine.publish(draft(room, `m${n++}`, h.clock.now + s.skew))));
              last.set(room, results.at(-1)!.message.sequence);
            }
            // Even a room whose every message expired keeps its last sequence (a restart reads it back): none is reused.
            assert.equal((await h.engine.position(room)).sequence, last.get(room) ?? 0n, `last sequence of ${room} after ${s.op}`);
            const kept = (await h.engine.history(room, all)).messages.map((m) => m.sequence);
            const stored = peek(path, room);
            const extra = stored.slice(0, stored.length - kept.length);
            assert.deepEqual(stored.slice(extra.length), kept, `stored rows of ${room} after ${s.op} end with what it retains`);
            stored.forEach((sequence, i) => assert.equal(sequence, stored[0]! + BigInt(i), `stored rows of ${room} are gapless`));
            // Stored but not retained: fewer than a group past the size limit, and the oldest of them is past it
            // (a row past the TTL, with none older that is within it, is always deleted by the write that finds it).
            const floor = (last.get(room) ?? 0n) - BigInt(historySize) + 1n;
            assert.ok(extra.filter((sequence) => sequence < floor).length < batch, `${room} after ${s.op}: ${extra.length} rows stored past the limit of ${historySize} (group ${batch})`);
            assert.ok(extra.length === 0 || extra[0]! < floor, `${room} after ${s.op}: the oldest stored row ${extra[0]} is within the size limit yet not retained`);
          }
        } finally {
          await h.engine.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe("sqlite engine: same answers as the memory engine", () => {
  type Step =
    | { op: "publish"; room: number; dt: number; skew: number }
    | { op: "tick"; ms: number }
    | { op: "history"; room: number; after: number; before: number; limit: number; forward: boolean };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant("publish" as const), room: fc.nat(2), dt: fc.nat(300), skew: fc.integer({ min: -400, max: 0 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("tick" as const), ms: fc.nat(1500) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("history" as const),
        room: fc.nat(2),
        after: fc.nat(30),
        before: fc.nat(30),
        limit: fc.integer({ min: 1, max: 12 }),
        forward: fc.boolean(),
      }),
    },
  );

  it("for random publishes, clock moves and history queries (size and TTL limits, unordered times)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom(0, 1000),
        fc.boolean(),
        async (steps, historySize, historyTtlMs, batched) => {
          const clock = { now: 1_000_000 };
          const options: EngineOptions = { retention: { historySize, historyTtlMs, dedupeWindowMs: 0 }, listener: () => {}, now: () => clock.now };
          const memory = createMemoryEngine(options);
          const sqlite = createSqliteEngine({ ...options, path: ":memory:" });
          const strip = (m: StoredMessage) => [m.sequence, m.content, m.timeMs];
          try {
            let n = 0;
            let pending: Array<Promise<unknown>> = [];
            for (const s of steps) {
              const room = `r${"room" in s ? s.room : 0}`;
              if (s.op === "publish") {
                clock.now += s.dt;
                const d = draft(room, `m${n++}`, clock.now + s.skew);
                const [a, b] = [publishMessage(memory, d), publishMessage(sqlite, d)];
                if (batched) pending.push(Promise.all([a, b]));
                else assert.deepEqual(strip(await a), strip(await b));
              } else if (s.op === "tick") {
                await Promise.all(pending);
                pending = [];
                clock.now += s.ms;
              } else {
                await Promise.all(pending);
                pending = [];
                const q: HistoryQuery = {
                  after: BigInt(s.after),
                  before: BigInt(s.before),
                  limit: s.limit,
                  direction: s.forward ? "forward" : "backward",
                };
                const [a, b] = await Promise.all([memory.history(room, q), sqlite.history(room, q)]);
                assert.deepEqual(b.messages.map(strip), a.messages.map(strip));
                assert.deepEqual([b.firstSequence, b.hasMore, b.position.sequence], [a.firstSequence, a.hasMore, a.position.sequence]);
              }
            }
            await Promise.all(pending);
          } finally {
            await Promise.all([memory.close(), sqlite.close()]);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
