/**
 * On-disk schema of the SQLite engine (src/engine/sqlite.ts).
 *
 * `PRAGMA user_version` holds SCHEMA_VERSION; a database written by a newer
 * seqcast is refused rather than misread. Presence is deliberately absent:
 * sessions do not survive a broker restart, so the engine keeps presence in
 * memory.
 */

export const SCHEMA_VERSION = 5;

export const SCHEMA = `
-- One row per room ever used. The epoch is created with the room and
-- survives broker restarts, so resuming clients keep their positions; it
-- changes only when an admin clears the room's history (ClearHistory), which
-- also restarts "sequence" at 0. The last sequence assigned in the epoch is
-- the larger of "sequence" and the room's newest stored message (version 4:
-- "sequence" is written when retention deletes every stored message, not on
-- every publish), so it never rewinds within an epoch, even when every
-- message expired.
CREATE TABLE IF NOT EXISTS rooms (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE,
  epoch       TEXT    NOT NULL,
  sequence    INTEGER NOT NULL DEFAULT 0,
  created_ms  INTEGER NOT NULL,
  -- (since version 5) Idempotency keys up to this key_id were recorded
  -- before the last ClearHistory and no longer count (sqlite-idempotency.ts).
  keys_after  INTEGER NOT NULL DEFAULT 0
);

-- Retained history. Rows of a room always form a dense sequence range
-- (trimming only removes a prefix), which the history queries rely on.
-- A rowid table, not WITHOUT ROWID: rows carry payloads of up to tens of KiB.
CREATE TABLE IF NOT EXISTS messages (
  room_id            INTEGER NOT NULL,   -- rooms.id
  sequence           INTEGER NOT NULL,
  id                 TEXT    NOT NULL,   -- message id (UUID)
  sender             TEXT    NOT NULL,
  content            TEXT    NOT NULL,
  payload            BLOB    NOT NULL,
  attributes         TEXT    NOT NULL,   -- JSON object of string values
  time_ms            INTEGER NOT NULL,   -- broker clock at publish
  client_message_id  TEXT    NOT NULL,
  -- (since version 3) causal dependencies, JSON (dependency-codec.ts); NULL = none
  dependencies       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_room_sequence ON messages (room_id, sequence);

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
export const MIGRATIONS: Array<{ from: number; sql: string }> = [
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
];
