import type Database from "better-sqlite3";
import { migrateToLog } from "./sqlite-log-migration.js";

/**
 * On-disk schema of the SQLite engine (src/engine/sqlite.ts).
 *
 * `PRAGMA user_version` holds SCHEMA_VERSION; a database written by a newer
 * seqcast is refused rather than misread. Presence is deliberately absent:
 * sessions do not survive a broker restart, so the engine keeps presence in
 * memory.
 */

export const SCHEMA_VERSION = 6;

export const SCHEMA = `
-- One row per room ever used. The epoch is created with the room and
-- survives broker restarts, so resuming clients keep their positions; it
-- changes only when an admin clears the room's history (ClearHistory), which
-- also restarts "sequence" at 0. The last sequence assigned in the epoch is
-- the larger of "sequence" and the newest sequence in the room's message log
-- (version 4: "sequence" is written when retention deletes every stored
-- message, not on every publish), so it never rewinds within an epoch, even
-- when every message expired.
CREATE TABLE IF NOT EXISTS rooms (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE,
  epoch       TEXT    NOT NULL,
  sequence    INTEGER NOT NULL DEFAULT 0,
  created_ms  INTEGER NOT NULL,
  -- (since version 5) Idempotency keys up to this key_id were recorded
  -- before the last ClearHistory and no longer count (sqlite-idempotency.ts).
  keys_after  INTEGER NOT NULL DEFAULT 0,
  -- (since version 6) The log id the room's messages carry (messages.log_id);
  -- a clear gives the room a new one (sqlite-log.ts).
  log_id      INTEGER NOT NULL DEFAULT 0,
  -- (since version 6) The oldest sequence retention keeps: the rows of
  -- smaller sequences are dead and leave the log in log order.
  kept_from   INTEGER NOT NULL DEFAULT 1
);

-- (version 6) Retained history as a log, in publish order across rooms, with
-- no index but the position (sqlite-log.ts: a per-row (room, sequence) index
-- cost each publish pages of its own). Rows of a room from rooms.kept_from to
-- its last sequence are all here; rows below are dead and wait for the sweep.
CREATE TABLE IF NOT EXISTS messages (
  position           INTEGER PRIMARY KEY,
  log_id             INTEGER NOT NULL,   -- rooms.log_id
  sequence           INTEGER NOT NULL,
  id                 TEXT    NOT NULL,   -- message id (UUID)
  sender             TEXT    NOT NULL,
  content            TEXT    NOT NULL,
  payload            BLOB    NOT NULL,
  attributes         TEXT    NOT NULL,   -- JSON object of string values
  time_ms            INTEGER NOT NULL,   -- broker clock at publish
  client_message_id  TEXT    NOT NULL,
  -- causal dependencies, JSON (dependency-codec.ts); NULL = none
  dependencies       TEXT
);

-- (since version 6) Where a room's messages are: the positions of sequences
-- first .. first + 31 (float64 little-endian each, 0 = no row), written when
-- the block fills, or earlier as a partial block (sqlite-log.ts).
CREATE TABLE IF NOT EXISTS message_blocks (
  log_id     INTEGER NOT NULL,
  first      INTEGER NOT NULL,
  positions  BLOB    NOT NULL,
  PRIMARY KEY (log_id, first)
) WITHOUT ROWID;

-- (since version 6) One row: the log's state at the last write that moved it.
-- scan_from: the open reads the log from here to rebuild the rooms' blocks
-- not yet written; swept_to: the sweep's place; next_log_id: never reused.
CREATE TABLE IF NOT EXISTS message_log (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  scan_from    INTEGER NOT NULL,
  swept_to     INTEGER NOT NULL,
  next_log_id  INTEGER NOT NULL
);
INSERT OR IGNORE INTO message_log VALUES (1, 1, 1, 1);

-- (since version 5; "dedupe" before) Idempotency keys: a publish repeating
-- (room, sender, client_message_id) within the dedupe window returns the
-- message the first one stored. A log in insertion order, looked up through
-- an index in memory (sqlite-idempotency.ts): clients' keys are random, and
-- a table keyed by them dirtied a page per publish. AUTOINCREMENT: key_id
-- never repeats, so expiring "every key through key_id N" and
-- rooms.keys_after stay exact. No index but the key: clients' keys are
-- found in memory, a cleared room's by rooms.keys_after, and a room with a
-- live key is known in memory too (sweep).
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key_id             INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id            INTEGER NOT NULL,
  sender             TEXT    NOT NULL,
  client_message_id  TEXT    NOT NULL,
  sequence           INTEGER NOT NULL,
  message_id         TEXT    NOT NULL,
  time_ms            INTEGER NOT NULL
);

-- (since version 2) Highest acknowledged position per durable subscriber
-- ("user/name") and room.
CREATE TABLE IF NOT EXISTS acks (
  subscriber  TEXT    NOT NULL,
  room        TEXT    NOT NULL,
  epoch       TEXT    NOT NULL,
  sequence    INTEGER NOT NULL,
  PRIMARY KEY (subscriber, room)
) WITHOUT ROWID;
`;

/**
 * Changes to tables that existed before, for a database of an older
 * version (CREATE TABLE IF NOT EXISTS above leaves existing tables alone).
 * Each runs once, in the transaction that raises user_version.
 */
export const MIGRATIONS: Array<{ from: number; sql: string | ((db: Database.Database) => void) }> = [
  // Version 3: messages carry their causal dependencies (issue 13).
  { from: 3, sql: "ALTER TABLE messages ADD COLUMN dependencies TEXT" },
  // Version 4: rooms.sequence becomes a floor under the newest message's
  // sequence. Older rows hold the exact last sequence, a valid floor, so
  // nothing changes in the data; the version keeps an older seqcast, which
  // would read the floor as the last sequence, from opening the file.
  { from: 4, sql: "SELECT 1" },
  // Version 5: idempotency keys move from "dedupe" (keyed by the key) to the
  // log "idempotency_keys"; live and expired alike are copied, oldest first
  // (the next write transaction expires what is old). A version-1 file never
  // had "dedupe": the CREATE makes the copy a no-op there.
  {
    from: 5,
    sql: `ALTER TABLE rooms ADD COLUMN keys_after INTEGER NOT NULL DEFAULT 0;
          CREATE TABLE IF NOT EXISTS dedupe (room_id INTEGER NOT NULL, sender TEXT NOT NULL, client_message_id TEXT NOT NULL,
            sequence INTEGER NOT NULL, id TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (room_id, sender, client_message_id)) WITHOUT ROWID;
          INSERT INTO idempotency_keys (room_id, sender, client_message_id, sequence, message_id, time_ms)
            SELECT room_id, sender, client_message_id, sequence, id, time_ms FROM dedupe ORDER BY time_ms;
          DROP TABLE dedupe;`,
  },
  // Version 6: messages become a log with blocks of positions (sqlite-log.ts).
  { from: 6, sql: migrateToLog },
];
