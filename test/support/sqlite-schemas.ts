/**
 * The SQLite schema as version 5 wrote it (src/engine/sqlite-schema.ts at 7611835), for migration tests:
 * older versions are derived from it by removing what they lacked.
 */
export const SCHEMA_V5 = `
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

/** The version-5 SCHEMA without rooms.keys_after: the rooms table as older versions wrote it, for migration tests. */
export function withoutKeysAfter(schema: string): string {
  const older = schema.replace(/,\n(\s*--[^\n]*\n)*\s*keys_after\s+INTEGER NOT NULL DEFAULT 0/, "");
  if (older === schema) throw new Error("SCHEMA has no rooms.keys_after to remove");
  return older;
}
