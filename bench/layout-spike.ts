/**
 * A spike, not the engine: three storage layouts for the SQLite engine's
 * messages in a bare better-sqlite3 loop, every room full (history 100,
 * groups of 25 trimmed), group commits of 64 rows of 256-byte payloads, WAL
 * as the engine sets it. CPU per insert (user + system) after a fill.
 *
 *   node --import tsx bench/layout-spike.ts <A|B|C> <rooms>     RANDOM=1: rooms drawn at random, not round-robin
 *
 * A: the engine's layout until schema version 6: a rowid table and a UNIQUE INDEX (room_id,
 *    sequence); a room's oldest rows deleted by range once 25 are past its history.
 * B: the messages as a log with no index, and per room blocks of 32 rowids
 *    (a WITHOUT ROWID table keyed by room and first sequence) written when
 *    full; trims delete rows by rowid. The rowids of a room's stored rows
 *    are kept in memory here: the engine would read them from its blocks.
 * C: B, but rows leave the log in log order: a sweep every 4,096 inserts
 *    deletes the runs of dead rows at the log's head by rowid range; a trim
 *    only drops the room's blocks (and moves the floor the sweep reads).
 *
 * Layout C is the engine's since schema version 6 (src/engine/sqlite-log.ts),
 * which does what the spike left out. What the spike leaves out: the tail
 * of each room's rowids not yet in a full block is only in memory (a restart
 * must find it again: persist partial blocks now and then, and scan the log
 * from there), live rows of quiet rooms stop the sweep (skip them, delete
 * them by rowid when their room trims), and history reads go through blocks.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";

const layout = process.argv[2] ?? "A";
const ROOMS = Number(process.argv[3] ?? 10000);
const HISTORY = 100;
const TRIM = 25;
const BLOCK = 32;
const COMMIT = 64;
const MEASURED = Number(process.env.N ?? 400_000);
const dir = mkdtempSync(join(tmpdir(), "spike-"));
const db = new Database(join(dir, "s.db"));
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("wal_autocheckpoint = 10000");
db.pragma("cache_size = -2000");
db.exec(`CREATE TABLE log (id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL, sequence INTEGER NOT NULL, msg_id TEXT NOT NULL, payload BLOB NOT NULL, time_ms INTEGER NOT NULL)`);
if (layout === "A") db.exec("CREATE UNIQUE INDEX log_room ON log (room_id, sequence)");
else db.exec("CREATE TABLE blocks (room_id INTEGER NOT NULL, first INTEGER NOT NULL, ids BLOB NOT NULL, PRIMARY KEY (room_id, first)) WITHOUT ROWID");

const insert16 = db.prepare(`INSERT INTO log VALUES ${Array(16).fill("(?, ?, ?, ?, ?, ?)").join(", ")}`);
const deleteRange = db.prepare("DELETE FROM log WHERE room_id = ? AND sequence < ?");
const deleteId = db.prepare("DELETE FROM log WHERE id = ?");
const insert1 = db.prepare("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)");
const insertBlock = layout === "A" ? undefined! : db.prepare("INSERT INTO blocks VALUES (?, ?, ?)");
const deleteBlocks = layout === "A" ? undefined! : db.prepare("DELETE FROM blocks WHERE room_id = ? AND first < ?");
function flush(): void {
  for (let i = 0; i < params.length; i += 6) insert1.run(params.slice(i, i + 6));
  params.length = 0;
}
const scan = db.prepare("SELECT id, room_id, sequence FROM log WHERE id > ? ORDER BY id LIMIT 4096").raw();
const deleteIds = db.prepare("DELETE FROM log WHERE id BETWEEN ? AND ?");

const seq = new Float64Array(ROOMS); // last sequence
const kept = new Float64Array(ROOMS).fill(1); // oldest stored (A/B) or oldest retained (C)
const ids: number[][] = Array.from({ length: ROOMS }, () => []); // B: rowids of stored sequences kept..seq
const tails: number[][] = Array.from({ length: ROOMS }, () => []);
let nextId = 1;
let k = 0;
let cursor = 0;
let sinceSweep = 0;
const payload = Buffer.alloc(256, 7);
const params: unknown[] = [];

function sweep(): void {
  // Deletes runs of dead rows from the log's head; stops at the first live row (uniform traffic: rows die in order).
  for (;;) {
    const rows = scan.all(cursor) as Array<[number, number, number]>;
    if (rows.length === 0) return;
    let last = cursor;
    for (const [id, room, sequence] of rows) {
      if (sequence >= kept[room]!) {
        if (last > cursor) deleteIds.run(cursor + 1, last);
        cursor = last;
        return;
      }
      last = id;
    }
    deleteIds.run(cursor + 1, last);
    cursor = last;
  }
}

const commit = db.transaction((count: number) => {
  for (let i = 0; i < count; i++, k++) {
    const room = process.env.RANDOM ? Math.floor(Math.random() * ROOMS) : k % ROOMS;
    const s = ++seq[room]!;
    const id = nextId++;
    params.push(id, room, s, "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", payload, Date.now());
    if (params.length === 96) insert16.run(params.splice(0));
    if (layout !== "A") {
      const tail = tails[room]!;
      tail.push(id);
      if (tail.length === BLOCK) {
        const blob = Buffer.from(new Float64Array(tail).buffer);
        insertBlock.run(room, s - BLOCK + 1, blob);
        tail.length = 0;
      }
      if (layout === "B") ids[room]!.push(id);
    }
    if (s - HISTORY + 1 - kept[room]! >= TRIM) {
      const floor = s - HISTORY + 1;
      flush();
      if (layout === "A") deleteRange.run(room, floor);
      else {
        if (layout === "B") for (const old of ids[room]!.splice(0, floor - kept[room]!)) deleteId.run(old);
        deleteBlocks.run(room, floor - BLOCK + 1);
      }
      kept[room] = floor;
    }
  }
  flush();
  if (layout === "C" && (sinceSweep += count) >= 4096) {
    sinceSweep = 0;
    sweep();
  }
});

// Fill every room past its history, then measure.
const fill = Math.max(ROOMS * (HISTORY + TRIM), 200_000);
for (let done = 0; done < fill; done += COMMIT) commit(COMMIT);
const cpu = process.cpuUsage();
const wall = performance.now();
for (let done = 0; done < MEASURED; done += COMMIT) commit(COMMIT);
const used = process.cpuUsage(cpu);
const rows = (db.prepare("SELECT count(*) FROM log").pluck().get() as number) / ROOMS;
console.log(
  `${layout} rooms=${ROOMS}: ${((used.user + used.system) / MEASURED).toFixed(2)} us/insert (user ${(used.user / MEASURED).toFixed(2)}, sys ${(used.system / MEASURED).toFixed(2)}), ` +
    `${((performance.now() - wall) / 1000).toFixed(1)} s, rows stored per room ${rows.toFixed(0)}`,
);
db.close();
rmSync(dir, { recursive: true, force: true });
