import type { LogStatements } from "./sqlite-log-sql.js";
import { lastOf, positionsOf, type LogCounters, type Slot } from "./sqlite-log-slots.js";

// The message log's sweep (sqlite-log.ts): dead rows leave from the log's head.

/** The share of live rows among those it read up to which the sweep passes them. */
const LIVE_PASSED = 1 / 8;
/** Up to this many rooms the sweep finds the lowest floor position by looking at every room (sweepBelowLive). */
const FLOOR_SCAN_ROOMS = 65_536;

/** What a sweep works with: rows below `swept` were deleted or found live. */
export interface SweepInput {
  readonly sql: LogStatements;
  readonly counters: LogCounters;
  /** The next position to be appended. */
  readonly next: number;
  readonly sweepRows: number;
  readonly swept: number;
}

/** Where a sweep left the log: its new `swept`, and the position `next` must reach before the next sweep. */
export interface SweepResult {
  swept: number;
  sweepAfter: number;
}

/**
 * Deletes the rows below every room's floor without reading them (at most
 * `sweepRows`): every live row is at or after its room's floor position.
 * One busy room, or rooms that trim in turn, need no more; a quiet room's
 * floor holds it back (also one whose live rows the sweep passed), and
 * sweepHead() reads past it. Skipped with more than FLOOR_SCAN_ROOMS rooms
 * (a look at every room's floor). Undefined: nothing deleted.
 */
export function sweepBelowLive(input: SweepInput, slots: Map<number, Slot>): SweepResult | undefined {
  const { sql, swept } = input;
  if (slots.size > FLOOR_SCAN_ROOMS) return undefined;
  let min = input.next;
  for (const slot of slots.values()) {
    if (slot.floor > lastOf(slot)) continue;
    if (slot.floorPos === 0) slot.floorPos = positionsOf(sql.blocks, slot, slot.floor, slot.floor)[0] ?? 0;
    if (slot.floorPos === 0) return undefined;
    if (slot.floorPos < min) min = slot.floorPos;
  }
  const end = Math.min(min, swept + input.sweepRows);
  if (end <= swept) return undefined;
  sql.deleteRun.run(swept, end - 1);
  input.counters.rowsSwept += end - swept;
  return { swept: end, sweepAfter: input.next + ((end - swept) >> 1) };
}

/**
 * Deletes the runs of dead rows among the first `limit` rows at the log's
 * head. A live row the sweep passes costs a delete of its own when it dies
 * (MessageLog.deleteSwept), so the sweep passes live rows only when they are
 * few (LIVE_PASSED) or when `force`d; otherwise it stops at the first and
 * reads again after as many rows as it read: rows of quieter rooms outlive
 * the busier rooms' rows around them.
 */
export function sweepHead(input: SweepInput, byLog: Map<number, Slot>, limit: number, force: boolean): SweepResult {
  const { sql, counters, next } = input;
  const rows = sql.scan.all(input.swept, limit);
  let runFrom = 0;
  let runTo = 0;
  let firstLive = 0;
  let live = 0;
  for (const [position, logId, sequence] of rows) {
    const slot = byLog.get(logId);
    if (slot === undefined || sequence < slot.floor) {
      if (runFrom === 0) runFrom = position;
      runTo = position;
      continue;
    }
    if (firstLive === 0) firstLive = position;
    live++;
    if (runFrom !== 0) {
      sql.deleteRun.run(runFrom, runTo);
      runFrom = 0;
    }
  }
  if (runFrom !== 0) sql.deleteRun.run(runFrom, runTo);
  counters.rowsSwept += rows.length;
  if (rows.length === 0) return { swept: next, sweepAfter: next };
  if (force || live <= rows.length * LIVE_PASSED) {
    counters.livePassed += live;
    // At most two rows read per row appended: a log that fell behind catches up without a burst of deletes.
    return { swept: rows[rows.length - 1]![0] + 1, sweepAfter: next + (rows.length >> 1) };
  }
  return { swept: firstLive, sweepAfter: next + rows.length };
}
