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

/**
 * A message row as better-sqlite3 hands it in raw mode, the columns of
 * MESSAGE_COLUMNS in order: an array, not an object with a property per
 * column (which took half of the time a row took to read).
 */
export type MessageRow = [
  sequence: bigint,
  id: string,
  sender: string,
  content: string,
  payload: Buffer,
  attributes: string,
  timeMs: bigint | number,
  clientMessageId: string,
  dependencies: string | null,
];

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
  /** A log's messages of sequences from..to among the positions first..last (readMessages). */
  selectMessageRange: Stmt<[number, number, number, bigint, bigint], MessageRow>;
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
    selectMessage: db.prepare<[number], MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE position = ?`).raw(),
    selectMessageRange: db
      .prepare<[number, number, number, bigint, bigint], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE position BETWEEN ? AND ? AND log_id = ? AND sequence BETWEEN ? AND ? ORDER BY position`,
      )
      .raw(),
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

/**
 * The rows at `positions` (ascending; those of one room's sequences from..to
 * in log `logId`), in order. Where they lie close together in the log (a
 * busy room's recent messages: at most 4 rows of other rooms to skip per row
 * read) one range scan reads them, one statement instead of one per row;
 * otherwise one lookup per position.
 */
export function readMessages(sql: Statements, positions: readonly number[], logId: number, from: bigint, to: bigint): MessageRow[] {
  if (positions.length === 0) return [];
  const first = positions[0]!;
  const last = positions[positions.length - 1]!;
  if (positions.length > 1 && last - first < 5 * positions.length) return sql.selectMessageRange.all(first, last, logId, from, to);
  const rows: MessageRow[] = [];
  for (const position of positions) {
    const row = sql.selectMessage.get(position);
    if (row !== undefined) rows.push(row);
  }
  return rows;
}
