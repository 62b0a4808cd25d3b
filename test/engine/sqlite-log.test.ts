import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, it } from "vitest";
import type { EngineOptions, HistoryQuery, StoredMessage } from "../../src/engine/engine.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { createSqliteEngine, type SqliteEngine } from "../../src/engine/sqlite.js";
import { createLogger, rootLogger, setRootLogger } from "../../src/log/logger.js";
import { all, draft, open, tempDatabases } from "../support/sqlite-engine.js";
import { SCHEMA_V5 } from "../support/sqlite-schemas.js";

/**
 * The SQLite engine's message log (src/engine/sqlite-log.ts): rows in publish
 * order, blocks of positions per room, dead rows swept from the log's head.
 * Tiny sweeps and partial-block ages make every path run in a few hundred
 * publishes: the sweep passing quiet rooms' live rows, trims deleting those
 * rows later, partial blocks, and the scan that rebuilds tails at open.
 */

const { tempFile } = tempDatabases();
const TINY = { sweepRows: 4, persistAge: 6 };
/** The history size of the crash test's child and of the engine that reopens its file. */
const CHILD_HISTORY = 40;

/** What the file holds that the log's invariants forbid or bound, read by a second connection. */
function inspect(path: string): { deadBelowSweep: number; rows: number; retained: number } {
  const db = new Database(path, { readonly: true });
  try {
    const count = (sql: string) => Number(db.prepare(sql).pluck().get());
    const dead = "NOT EXISTS (SELECT 1 FROM rooms r WHERE r.log_id = m.log_id AND m.sequence >= r.kept_from)";
    return {
      // Rows the sweep passed are deleted by the trim, clear or forget that kills them.
      deadBelowSweep: count(`SELECT count(*) FROM messages m WHERE m.position < (SELECT swept_to FROM message_log) AND ${dead}`),
      rows: count("SELECT count(*) FROM messages"),
      retained: count(`SELECT count(*) FROM messages m WHERE NOT ${dead}`),
    };
  } finally {
    db.close();
  }
}

describe("sqlite engine: message log", () => {
  it("answers like the memory engine, and leaves no dead row behind its sweep, through clears, TTL, idle sweeps and restarts (random, skewed rooms)", async () => {
    type Step =
      | { op: "publish"; room: number; burst: number; dt: number }
      | { op: "tick"; ms: number }
      | { op: "clear"; room: number }
      | { op: "sweep" }
      | { op: "restart" }
      | { op: "history"; room: number; after: number; before: number; limit: number; forward: boolean };
    // Room 0 gets most publishes; rooms 5..7 few, so their live rows sit at the log's head while the sweep passes.
    const room = fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.integer({ min: 5, max: 7 }) });
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 12, arbitrary: fc.record({ op: fc.constant("publish" as const), room, burst: fc.integer({ min: 1, max: 5 }), dt: fc.nat(300) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("tick" as const), ms: fc.nat(3000) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), room }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("sweep" as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("restart" as const) }) },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("history" as const),
          room,
          after: fc.nat(60),
          before: fc.nat(60),
          limit: fc.integer({ min: 1, max: 40 }),
          forward: fc.boolean(),
        }),
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 120 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(0, 2000), async (steps, historySize, historyTtlMs) => {
        const clock = { now: 1_000_000 };
        const options: EngineOptions = { retention: { historySize, historyTtlMs, dedupeWindowMs: 0 }, listener: () => {}, now: () => clock.now };
        const path = tempFile();
        const openSqlite = () => createSqliteEngine({ ...options, path, logTuning: TINY, checkpoint: false });
        const memory = createMemoryEngine(options);
        let sqlite: SqliteEngine = openSqlite();
        const strip = (m: StoredMessage) => [m.sequence, m.content, m.timeMs];
        const rooms = Array.from({ length: 8 }, (_, i) => `r${i}`);
        let n = 0;
        try {
          for (const s of steps) {
            if (s.op === "publish") {
              clock.now += s.dt;
              const drafts = Array.from({ length: s.burst }, () => draft(rooms[s.room]!, `m${n++}`, clock.now));
              const [a, b] = await Promise.all([Promise.all(drafts.map((d) => memory.publish(d))), Promise.all(drafts.map((d) => sqlite.publish(d)))]);
              assert.deepEqual(b.map((r) => strip(r.message)), a.map((r) => strip(r.message)));
            } else if (s.op === "tick") clock.now += s.ms;
            else if (s.op === "clear") await Promise.all([memory.clear(rooms[s.room]!), sqlite.clear(rooms[s.room]!)]);
            else if (s.op === "sweep") await Promise.all([memory.sweep!(), sqlite.sweep!()]);
            else if (s.op === "restart") {
              await sqlite.close();
              sqlite = openSqlite();
            } else {
              const q: HistoryQuery = { after: BigInt(s.after), before: BigInt(s.before), limit: s.limit, direction: s.forward ? "forward" : "backward" };
              const [a, b] = await Promise.all([memory.history(rooms[s.room]!, q), sqlite.history(rooms[s.room]!, q)]);
              assert.deepEqual(b.messages.map(strip), a.messages.map(strip), `history of r${s.room}`);
              assert.deepEqual([b.firstSequence, b.hasMore, b.position.sequence], [a.firstSequence, a.hasMore, a.position.sequence]);
            }
            // A read's trims land in the next write transaction.
            await new Promise((r) => setImmediate(r));
            assert.equal(inspect(path).deadBelowSweep, 0, `dead rows behind the sweep after ${s.op}`);
          }
          for (const name of rooms) {
            const [a, b] = await Promise.all([memory.history(name, all), sqlite.history(name, all)]);
            assert.deepEqual(b.messages.map(strip), a.messages.map(strip), `final history of ${name}`);
            assert.equal((await sqlite.position(name)).sequence, (await memory.position(name)).sequence, `last sequence of ${name}`);
          }
        } finally {
          await Promise.all([memory.close(), sqlite.close()]);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("keeps the log within half again the rows retention keeps, with rooms published in scattered order", async () => {
    const path = tempFile();
    const historySize = 10;
    const sqlite = createSqliteEngine({
      path,
      retention: { historySize, historyTtlMs: 0, dedupeWindowMs: 0 },
      listener: () => {},
      logTuning: { sweepRows: 64, persistAge: 256 },
      checkpoint: false,
    });
    try {
      for (let n = 0; n < 6000; n += 20) {
        await sqlite.publishBatch!(Array.from({ length: 20 }, (_, i) => draft(`room.${(Math.imul(n + i, 0x9e3779b1) >>> 0) % 50}`, `m${n + i}`)));
      }
      const { rows, retained } = inspect(path);
      // Each room stores its history and fewer than a trim group (2) past it.
      assert.ok(retained <= 50 * (historySize + 2), `retained ${retained}`);
      // The sweep starts once the log passes 1.5x what it keeps plus a sweep's rows; each write transaction adds 20.
      assert.ok(rows <= retained * 1.5 + 64 + 20, `${rows} rows in the log for ${retained} retained`);
      for (let r = 0; r < 50; r++) {
        const page = await sqlite.history(`room.${r}`, all);
        assert.equal(page.messages.length, historySize);
        page.messages.forEach((m, i) => assert.equal(m.sequence, page.position.sequence - BigInt(historySize - 1 - i)));
      }
    } finally {
      await sqlite.close();
    }
  });

  it("loses nothing acknowledged and reuses no sequence when killed mid-write, quiet rooms' tails included (SIGKILL, 3 rounds)", async () => {
    const path = tempFile();
    const child = fileURLToPath(new URL("../support/sqlite-log-child.ts", import.meta.url));
    const acked = new Map<string, Map<bigint, string>>();
    for (let round = 0; round < 3; round++) {
      await new Promise<void>((resolve, reject) => {
        const proc = spawn(process.execPath, ["--import", "tsx", child, path, String(round), String(CHILD_HISTORY)], { stdio: ["ignore", "pipe", "inherit"] });
        let buffered = "";
        let count = 0;
        const target = 1500 + Math.floor(Math.random() * 1500);
        proc.stdout.on("data", (chunk: Buffer) => {
          buffered += chunk.toString();
          const lines = buffered.split("\n");
          buffered = lines.pop()!;
          for (const line of lines) {
            const [, room, sequence, content] = line.split(" ");
            if (!acked.has(room!)) acked.set(room!, new Map());
            acked.get(room!)!.set(BigInt(sequence!), content!);
            if (++count === target) proc.kill("SIGKILL");
          }
        });
        proc.on("error", reject);
        // Killed by the test, not ended by itself: an early exit would prove nothing.
        proc.on("exit", () => (count >= target ? resolve() : reject(new Error(`child exited after ${count} acknowledgements`))));
      });
      const engine = createSqliteEngine({ path, retention: { historySize: CHILD_HISTORY, historyTtlMs: 0, dedupeWindowMs: 0 }, listener: () => {} });
      try {
        for (const [room, messages] of acked) {
          const page = await engine.history(room, all);
          const last = page.position.sequence;
          assert.ok(last >= Math.max(...[...messages.keys()].map(Number)), `round ${round}: ${room} last sequence ${last} rewound`);
          page.messages.forEach((m, i) => assert.equal(m.sequence, last - BigInt(page.messages.length - 1 - i), `${room} gapless up to its last`));
          const stored = new Map(page.messages.map((m) => [m.sequence, m.content]));
          for (const [sequence, content] of messages)
            if (sequence > last - BigInt(CHILD_HISTORY)) assert.equal(stored.get(sequence), content, `round ${round}: ${room} ${sequence}`);
        }
      } finally {
        await engine.close();
      }
    }
  }, 60_000);

  it("migrates a version 5 file: every room's stored messages, last sequence and next sequence survive, also after another restart", async () => {
    const path = tempFile();
    const db = new Database(path);
    db.exec(SCHEMA_V5);
    db.pragma("user_version = 5");
    const insertRoom = db.prepare("INSERT INTO rooms (id, name, epoch, sequence, created_ms) VALUES (?, ?, ?, ?, 0)");
    const insertMessage = db.prepare(
      "INSERT INTO messages (room_id, sequence, id, sender, content, payload, attributes, time_ms, client_message_id) VALUES (?, ?, ?, 'alice', ?, x'01', '{}', 5, '')",
    );
    // "trimmed" stores 15..40 of its 40 (its row's sequence is only a floor: version 4), "empty" none of its 7, "short" 1..3;
    // their rows interleaved in the file as publishes left them.
    insertRoom.run(1, "trimmed", "e-1", 0);
    insertRoom.run(2, "empty", "e-2", 7);
    insertRoom.run(3, "short", "e-3", 0);
    for (let s = 15; s <= 40; s++) {
      insertMessage.run(1, s, `t${s}`, `trimmed ${s}`);
      if (s <= 17) insertMessage.run(3, s - 14, `s${s - 14}`, `short ${s - 14}`);
    }
    db.close();
    const expect = async (engine: SqliteEngine, round: string) => {
      const contents = async (room: string) => (await engine.history(room, all)).messages.map((m) => [m.sequence, m.content]);
      assert.deepEqual(await contents("trimmed"), Array.from({ length: 26 }, (_, i) => [BigInt(15 + i), `trimmed ${15 + i}`]), round);
      assert.deepEqual(await contents("empty"), [], round);
      assert.deepEqual(await contents("short"), [1, 2, 3].map((s) => [BigInt(s), `short ${s}`]), round);
      assert.deepEqual(
        await Promise.all(["trimmed", "empty", "short"].map(async (room) => await engine.position(room))),
        [{ epoch: "e-1", sequence: 40n }, { epoch: "e-2", sequence: 7n }, { epoch: "e-3", sequence: 3n }],
        round,
      );
    };
    // The conversion says so in the log, once: it can make a start take seconds.
    const lines: string[] = [];
    const before = rootLogger();
    setRootLogger(createLogger({ level: "info", format: "json", stream: { write: (line: string) => lines.push(line) > 0 } as unknown as NodeJS.WritableStream }));
    let h: ReturnType<typeof open>;
    try {
      h = open(path);
    } finally {
      setRootLogger(before);
    }
    try {
      await expect(h.engine, "migrated");
    } finally {
      await h.engine.close();
    }
    const converted = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => String(l.msg).startsWith("sqlite: "));
    assert.deepEqual(converted.map((l) => [l.msg, l.messages, l.rooms]), [
      ["sqlite: converting the messages to a log (schema version 6), once", undefined, undefined],
      ["sqlite: messages converted to a log", 29, 2],
    ]);
    h = open(path);
    try {
      await expect(h.engine, "reopened");
      const next = await Promise.all(["trimmed", "empty", "short"].map(async (room) => (await h.engine.publish(draft(room, "next"))).message.sequence));
      assert.deepEqual(next, [41n, 8n, 4n]);
    } finally {
      await h.engine.close();
    }
    assert.equal(inspect(path).deadBelowSweep, 0);
  });

  it("rolls its memory back with a failed transaction: a block filled by the failed attempt is filled again, sequences stay gapless, also after a restart", async () => {
    const path = tempFile();
    const openLog = () => open(path, { logTuning: TINY, checkpoint: false });
    let h = openLog();
    try {
      for (let n = 1; n <= 30; n++) await h.engine.publish(draft("a", `a${n}`));
      // One transaction that crosses the block boundary at 32, fails on the bad draft, and is retried a publish at a time.
      const bad = { ...draft("a", "bad"), attributes: { n: 1n } as unknown as Record<string, string> };
      const settled = await Promise.allSettled([...["g1", "g2", "g3"].map((c) => h.engine.publish(draft("a", c))), h.engine.publish(bad), h.engine.publish(draft("a", "g4"))]);
      assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled"]);
      const sequences = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value.message.sequence] : []));
      assert.deepEqual(sequences, [31n, 32n, 33n, 34n]);
      const expected = [...Array.from({ length: 30 }, (_, i) => `a${i + 1}`), "g1", "g2", "g3", "g4"];
      assert.deepEqual((await h.engine.history("a", all)).messages.map((m) => m.content), expected);
      await h.engine.close();
      h = openLog();
      assert.deepEqual((await h.engine.history("a", all)).messages.map((m) => m.content), expected, "after a restart");
      assert.equal((await h.engine.publish(draft("a", "next"))).message.sequence, 35n);
    } finally {
      await h.engine.close();
    }
    assert.equal(inspect(path).deadBelowSweep, 0);
  });
});
