import type Database from "better-sqlite3";

// The SQL of the SQLite engine, prepared once per database (schema: sqlite-schema.ts).

export interface RoomRef {
  id: bigint;
  epoch: string;
}

export interface RoomRow extends RoomRef {
  sequence: bigint;
}

/** A room's oldest stored (or retained) message: its sequence and time. */
export interface KeptRow {
  sequence: bigint;
  time_ms: bigint | number;
}

export interface MessageRow {
  sequence: bigint;
  id: string;
  sender: string;
  content: string;
  payload: Buffer;
  attributes: string;
  time_ms: bigint | number;
  client_message_id: string;
  dependencies: string | null;
}

// The statements' bind parameters, positional.
type Stmt<P extends unknown[], R = unknown> = Database.Statement<P, R>;

/** A room's last sequence, in a query over `rooms` (sqlite-schema.ts: rooms.sequence is a floor). */
const LAST_SEQUENCE = "max(rooms.sequence, coalesce((SELECT MAX(m.sequence) FROM messages m WHERE m.room_id = rooms.id), 0))";

export const MESSAGE_COLUMNS = "sequence, id, sender, content, payload, attributes, time_ms, client_message_id, dependencies";

export interface Statements {
  selectRoom: Stmt<[string], RoomRow>;
  insertRoom: Stmt<[string, string, number], { id: bigint }>;
  selectSequence: Stmt<[bigint], bigint>;
  updateSequence: Stmt<[bigint, bigint]>;
  /** First retained row: the oldest at or above the size floor that is not older than the cutoff. */
  firstRetained: Stmt<[bigint, bigint, number], KeptRow>;
  /** The oldest stored row, retained or not. */
  firstStored: Stmt<[bigint], KeptRow>;
  deleteBelow: Stmt<[bigint, bigint]>;
  deleteRoomMessages: Stmt<[bigint]>;
  selectMessage: Stmt<[bigint, bigint], MessageRow>;
  rangeForward: Stmt<[bigint, bigint, bigint, number], MessageRow>;
  rangeBackward: Stmt<[bigint, bigint, bigint, number], MessageRow>;
  upsertAck: Stmt<[string, string, string, bigint]>;
  resetRoom: Stmt<[string, bigint]>;
  selectAck: Stmt<[string, string], { epoch: string; sequence: bigint }>;
  idleRooms: Stmt<[number], { id: bigint; name: string }>;
  deleteRoom: Stmt<[bigint]>;
}

export function prepareStatements(db: Database.Database): Statements {
  return {
    // The last sequence is the newer of the room's row and its newest message (schema version 4).
    selectRoom: db.prepare(`SELECT id, epoch, ${LAST_SEQUENCE} AS sequence FROM rooms WHERE name = ?`),
    insertRoom: db.prepare(
      "INSERT INTO rooms (name, epoch, sequence, created_ms) VALUES (?, ?, 0, ?) RETURNING id",
    ),
    selectSequence: db.prepare<[bigint], bigint>(`SELECT ${LAST_SEQUENCE} FROM rooms WHERE id = ?`).pluck(),
    updateSequence: db.prepare("UPDATE rooms SET sequence = ? WHERE id = ?"),
    firstRetained: db.prepare<[bigint, bigint, number], KeptRow>(
      "SELECT sequence, time_ms FROM messages WHERE room_id = ? AND sequence >= ? AND time_ms >= ? ORDER BY sequence LIMIT 1",
    ),
    firstStored: db.prepare<[bigint], KeptRow>("SELECT sequence, time_ms FROM messages WHERE room_id = ? ORDER BY sequence LIMIT 1"),
    deleteBelow: db.prepare("DELETE FROM messages WHERE room_id = ? AND sequence < ?"),
    deleteRoomMessages: db.prepare("DELETE FROM messages WHERE room_id = ?"),
    selectMessage: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND sequence = ?`),
    rangeForward: db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND sequence BETWEEN ? AND ? ORDER BY sequence ASC LIMIT ?`,
    ),
    rangeBackward: db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND sequence BETWEEN ? AND ? ORDER BY sequence DESC LIMIT ?`,
    ),
    resetRoom: db.prepare("UPDATE rooms SET epoch = ?, sequence = 0 WHERE id = ?"),
    // Cumulative: within an epoch an ack only moves forward; another epoch replaces it.
    upsertAck: db.prepare(
      `INSERT INTO acks (subscriber, room, epoch, sequence) VALUES (?, ?, ?, ?)
       ON CONFLICT (subscriber, room) DO UPDATE SET
         sequence = CASE WHEN acks.epoch = excluded.epoch THEN max(acks.sequence, excluded.sequence) ELSE excluded.sequence END,
         epoch = excluded.epoch`,
    ),
    selectAck: db.prepare("SELECT epoch, sequence FROM acks WHERE subscriber = ? AND room = ?"),
    // Rooms retaining nothing: every message older than the TTL cutoff (or none), no ack (live idempotency keys: sqlite-idempotency.ts).
    idleRooms: db.prepare(
      `SELECT r.id, r.name FROM rooms r
       WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.room_id = r.id AND m.time_ms >= ?)
         AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.room = r.name)`,
    ),
    deleteRoom: db.prepare("DELETE FROM rooms WHERE id = ?"),
  };
}
