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

export const MESSAGE_COLUMNS = "sequence, id, sender, content, payload, attributes, time_ms, client_message_id, dependencies";

export interface Statements {
  selectRoom: Stmt<[string], RoomRef>;
  insertRoom: Stmt<[string, string, number, number], { id: bigint }>;
  /** rooms.sequence: the room's last sequence once retention left no message (sqlite-schema.ts). */
  updateSequence: Stmt<[bigint, bigint]>;
  /** A message by its position in the log (sqlite-log.ts). */
  selectMessage: Stmt<[number], MessageRow>;
  /** A message's time by its position. */
  selectTime: Stmt<[number], bigint>;
  upsertAck: Stmt<[string, string, string, bigint]>;
  resetRoom: Stmt<[string, bigint]>;
  selectAck: Stmt<[string, string], { epoch: string; sequence: bigint }>;
  allRooms: Stmt<[], { id: bigint; name: string }>;
  /** Rooms some durable subscriber acknowledged (a room with an ack is never idle). */
  ackedRooms: Stmt<[], string>;
  deleteRoom: Stmt<[bigint]>;
}

export function prepareStatements(db: Database.Database): Statements {
  return {
    selectRoom: db.prepare("SELECT id, epoch FROM rooms WHERE name = ?"),
    insertRoom: db.prepare(
      "INSERT INTO rooms (name, epoch, sequence, created_ms, log_id) VALUES (?, ?, 0, ?, ?) RETURNING id",
    ),
    updateSequence: db.prepare("UPDATE rooms SET sequence = ? WHERE id = ?"),
    selectMessage: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE position = ?`),
    selectTime: db.prepare<[number], bigint>("SELECT time_ms FROM messages WHERE position = ?").pluck(),
    resetRoom: db.prepare("UPDATE rooms SET epoch = ?, sequence = 0 WHERE id = ?"),
    // Cumulative: within an epoch an ack only moves forward; another epoch replaces it.
    upsertAck: db.prepare(
      `INSERT INTO acks (subscriber, room, epoch, sequence) VALUES (?, ?, ?, ?)
       ON CONFLICT (subscriber, room) DO UPDATE SET
         sequence = CASE WHEN acks.epoch = excluded.epoch THEN max(acks.sequence, excluded.sequence) ELSE excluded.sequence END,
         epoch = excluded.epoch`,
    ),
    selectAck: db.prepare("SELECT epoch, sequence FROM acks WHERE subscriber = ? AND room = ?"),
    allRooms: db.prepare("SELECT id, name FROM rooms"),
    ackedRooms: db.prepare<[], string>("SELECT DISTINCT room FROM acks").pluck(),
    deleteRoom: db.prepare("DELETE FROM rooms WHERE id = ?"),
  };
}
