import type Database from "better-sqlite3";

/** The message log's statements (sqlite-log.ts), integers as JS numbers: positions and sequences stay below 2^53. */
export function prepareLogStatements(db: Database.Database) {
  const prepare = <P extends unknown[], R = unknown>(source: string) => db.prepare<P, R>(source).safeIntegers(false);
  return {
    insertBlock: prepare<[number, number, Buffer]>("INSERT OR REPLACE INTO message_blocks (log_id, first, positions) VALUES (?, ?, ?)"),
    lastBlock: prepare<[number], { first: number; positions: Buffer }>("SELECT first, positions FROM message_blocks WHERE log_id = ? ORDER BY first DESC LIMIT 1"),
    /** A log id's blocks whose first sequence lies in a range, in order. */
    blocks: prepare<[number, number, number], { first: number; positions: Buffer }>(
      "SELECT first, positions FROM message_blocks WHERE log_id = ? AND first BETWEEN ? AND ? ORDER BY first",
    ),
    deleteBlocksBelow: prepare<[number, number]>("DELETE FROM message_blocks WHERE log_id = ? AND first < ?"),
    deleteBlocks: prepare<[number]>("DELETE FROM message_blocks WHERE log_id = ?"),
    deleteRow: prepare<[number]>("DELETE FROM messages WHERE position = ?"),
    deleteRun: prepare<[number, number]>("DELETE FROM messages WHERE position BETWEEN ? AND ?"),
    scan: prepare<[number, number], [number, number, number]>(
      "SELECT position, log_id, sequence FROM messages WHERE position >= ? ORDER BY position LIMIT ?",
    ).raw(),
    setFloor: prepare<[number, number]>("UPDATE rooms SET kept_from = ? WHERE id = ?"),
    setLog: prepare<[number, number]>("UPDATE rooms SET log_id = ?, kept_from = 1 WHERE id = ?"),
    saveState: prepare<[number, number]>("UPDATE message_log SET scan_from = ?, swept_to = ?"),
    saveNextLogId: prepare<[number]>("UPDATE message_log SET next_log_id = ?"),
  };
}

export type LogStatements = ReturnType<typeof prepareLogStatements>;
