import type Database from "better-sqlite3";
import type { LogStatements } from "./sqlite-log-sql.js";
import { BLOCK, decode, lastOf, type Pending, type Slot } from "./sqlite-log-slots.js";

/**
 * At open, inside its write transaction: every room's slot (its floor, and
 * its tail from its last block and the log from scan_from on), and the log's
 * state. Full blocks the scan completes are handed to `write`.
 */
export function loadLog(db: Database.Database, sql: Pick<LogStatements, "lastBlock" | "scan">, pageRows: number, write: (slot: Slot) => void) {
  const state = db.prepare("SELECT scan_from, swept_to, next_log_id FROM message_log").safeIntegers(false).get() as {
    scan_from: number;
    swept_to: number;
    next_log_id: number;
  };
  const rooms = db.prepare("SELECT id, log_id, sequence, kept_from FROM rooms").safeIntegers(false).all() as Array<{
    id: number;
    log_id: number;
    sequence: number;
    kept_from: number;
  }>;
  const byLog = new Map<number, Slot>();
  for (const room of rooms) {
    const slot: Slot = { roomId: room.id, logId: room.log_id, start: 1, tail: [], written: 0, floor: room.kept_from, floorTime: undefined, floorPos: 0, gen: 0, tx: 0 };
    const block = sql.lastBlock.get(room.log_id);
    if (block !== undefined) {
      const positions = decode(block.positions);
      if (positions.length === BLOCK) slot.start = block.first + BLOCK;
      else {
        slot.start = block.first;
        slot.tail = positions;
        slot.written = positions.length;
      }
    }
    byLog.set(room.log_id, slot);
    // Sequences whose rows were deleted while only the tail knew them: the room's row keeps its last sequence (sqlite-retention.ts).
    padTo(slot, room.sequence, write);
  }
  let from = state.scan_from;
  for (;;) {
    const rows = sql.scan.all(from, pageRows);
    for (const [position, logId, sequence] of rows) {
      const slot = byLog.get(logId);
      if (slot === undefined || sequence < slot.start + slot.tail.length) continue;
      padTo(slot, sequence - 1, write);
      pushPosition(slot, position, write);
    }
    if (rows.length < pageRows) break;
    from = rows[rows.length - 1]![0] + 1;
  }
  const max = (db.prepare("SELECT max(position) FROM messages").pluck().safeIntegers(false).get() as number | null) ?? 0;
  // What the scan found and no block holds: queued by position, for the partial blocks of MessageLog.maintain().
  const pending: Pending[] = [];
  for (const slot of byLog.values()) {
    slot.floor = Math.min(slot.floor, lastOf(slot) + 1);
    const position = slot.tail.slice(slot.written).find((p) => p !== 0);
    if (position === undefined) slot.written = slot.tail.length;
    else pending.push({ slot, position, gen: slot.gen });
  }
  return {
    slots: [...byLog.values()],
    pending: pending.sort((a, b) => a.position - b.position),
    scanFrom: state.scan_from,
    swept: state.swept_to,
    nextLogId: state.next_log_id,
    next: Math.max(max + 1, state.scan_from, state.swept_to),
  };
}

/** Appends a position to a slot's tail; a full tail is handed to `write` (unless it holds no row) and starts over. */
export function pushPosition(slot: Slot, position: number, write: (slot: Slot) => void): void {
  slot.tail.push(position);
  if (slot.tail.length < BLOCK) return;
  if (slot.tail.some((p) => p !== 0)) write(slot);
  slot.start += BLOCK;
  slot.tail = [];
  slot.written = 0;
  slot.gen++;
}

/** Fills a slot's tail with "no row" through `sequence`. */
export function padTo(slot: Slot, sequence: number, write: (slot: Slot) => void): void {
  while (slot.start + slot.tail.length <= sequence) pushPosition(slot, 0, write);
}
