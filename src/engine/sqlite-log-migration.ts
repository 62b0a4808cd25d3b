import type Database from "better-sqlite3";
import { performance } from "node:perf_hooks";
import { rootLogger } from "../log/logger.js";
import { padTo, pushPosition } from "./sqlite-log-load.js";
import { prepareLogStatements } from "./sqlite-log-sql.js";
import { blockFirst, encode, type Slot } from "./sqlite-log-slots.js";

/**
 * Schema version 6 (sqlite-log.ts): the messages table, a rowid table indexed
 * by (room_id, sequence) before, is rebuilt as a log in (room, sequence)
 * order, each room's rows get their blocks of positions (the last one
 * partial), and rooms get their log id (their id) and floor (their oldest
 * stored sequence). Runs once, inside the open's write transaction.
 */
export function migrateToLog(db: Database.Database): void {
  const started = performance.now();
  // About 1 s per 100,000 messages here: a start that takes this long says why.
  rootLogger().info({ schema: 6 }, "sqlite: converting the messages to a log (schema version 6), once");
  db.exec(`
    ALTER TABLE rooms ADD COLUMN log_id INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN kept_from INTEGER NOT NULL DEFAULT 1;
    UPDATE rooms SET log_id = id;
    CREATE TABLE messages_log (
      position INTEGER PRIMARY KEY, log_id INTEGER NOT NULL, sequence INTEGER NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL,
      content TEXT NOT NULL, payload BLOB NOT NULL, attributes TEXT NOT NULL, time_ms INTEGER NOT NULL,
      client_message_id TEXT NOT NULL, dependencies TEXT);
    INSERT INTO messages_log (log_id, sequence, id, sender, content, payload, attributes, time_ms, client_message_id, dependencies)
      SELECT room_id, sequence, id, sender, content, payload, attributes, time_ms, client_message_id, dependencies
      FROM messages WHERE room_id IN (SELECT id FROM rooms) ORDER BY room_id, sequence;
    DROP TABLE messages;
    ALTER TABLE messages_log RENAME TO messages;
  `);
  // The log's own statements (rooms.log_id = rooms.id in a converted file).
  const sql = prepareLogStatements(db);
  // In pages: the connection runs no other statement while one is iterated.
  const page = db.prepare("SELECT position, log_id, sequence FROM messages WHERE position > ? ORDER BY position LIMIT 65536").raw().safeIntegers(false);
  const write = (slot: Slot) => sql.insertBlock.run(slot.logId, slot.start, encode(slot.tail));
  let slot: Slot | undefined;
  let last = 0;
  let rooms = 0;
  for (let rows = page.all(0) as Array<[number, number, number]>; rows.length > 0; rows = page.all(last) as Array<[number, number, number]>) {
    for (const [position, logId, sequence] of rows) {
      last = position;
      if (logId !== slot?.logId) {
        // Rows are in (room, sequence) order: a room's first row is its oldest stored, its floor.
        if (slot !== undefined && slot.tail.length > 0) write(slot);
        rooms++;
        slot = { roomId: logId, logId, start: blockFirst(sequence), tail: [], written: 0, floor: sequence, floorTime: undefined, floorPos: 0, gen: 0, tx: 0 };
        sql.setFloor.run(sequence, logId);
      }
      padTo(slot, sequence - 1, write);
      pushPosition(slot, position, write);
    }
  }
  // The last block of each room is written partial.
  if (slot !== undefined && slot.tail.length > 0) write(slot);
  // A room with no stored message keeps none: its floor is past its last sequence.
  db.exec(`UPDATE rooms SET kept_from = sequence + 1 WHERE log_id NOT IN (SELECT DISTINCT log_id FROM message_blocks)`);
  db.prepare("UPDATE message_log SET scan_from = ?, swept_to = ?, next_log_id = (SELECT coalesce(max(id), 0) + 1 FROM rooms)")
    .safeIntegers(false)
    .run(last + 1, last + 1);
  rootLogger().info({ schema: 6, messages: last, rooms, ms: Math.round(performance.now() - started) }, "sqlite: messages converted to a log");
}
