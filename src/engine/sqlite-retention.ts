import type { RetentionPolicy } from "./engine.js";
import { BLOCK, type MessageLog } from "./sqlite-log.js";
import type { Slot } from "./sqlite-log-slots.js";
import type { KeptRow, RoomRow, Statements } from "./sqlite-statements.js";

/** The oldest retained message: its sequence, time and position in the log. */
export interface Retained extends KeptRow {
  position: number;
}

/** The most rows past the size limit a room stores before they are deleted together (SqliteRetention.trimRows). */
const TRIM_BATCH_MAX = 64;

/**
 * What the SQLite engine's retention keeps of a room (history size and TTL),
 * for its writes (trim) and its reads (the first retained sequence). Like the
 * memory engine, TTL trimming stops at the first message young enough, so
 * only a prefix is ever dropped even if message times are not monotonic.
 *
 * Reads never return what retention no longer keeps, but a full room's
 * floor (its oldest stored sequence, sqlite-log.ts) moves in groups: a write
 * moves it once `trimRows` rows are past the size limit (a quarter of the
 * history size, at most TRIM_BATCH_MAX), or its oldest row is past the TTL.
 * (Under schema version 5, at 10,000 full rooms, a delete per publish cost
 * 38.9 µs of broker CPU per publish against 20.7 at one room; with groups of
 * 25, 31.0 against 21.5.)
 */
export class SqliteRetention {
  /** historySize - 1, as a bigint once rather than on every check. */
  private readonly sizeSpan: bigint;
  /** Rows past the size limit a room stores before a write deletes them (1: every publish to a full room trims). */
  private readonly trimRows: number;
  private readonly historySize: number;

  constructor(
    private readonly sql: Statements,
    private readonly log: MessageLog,
    private readonly policy: RetentionPolicy,
    private readonly now: () => number,
  ) {
    this.sizeSpan = BigInt(policy.historySize) - 1n;
    this.historySize = policy.historySize;
    this.trimRows = Math.max(1, Math.min(TRIM_BATCH_MAX, Math.floor(policy.historySize / 4)));
  }

  /** Oldest sequence that the size limit lets a room keep (may lie past the newest row). */
  sizeFloor(sequence: bigint): bigint {
    const floor = sequence - this.sizeSpan;
    return floor > 1n ? floor : 1n;
  }

  /** Messages older than this (ms) are past the TTL. */
  ttlCutoff(): number {
    return this.policy.historyTtlMs > 0 ? this.now() - this.policy.historyTtlMs : Number.MIN_SAFE_INTEGER;
  }

  /**
   * Whether the room's rows are due for trim(): `trimRows` rows are past the
   * size limit, or its oldest stored is past the TTL (the log keeps the
   * oldest's sequence and time: no query but the first time's read). In
   * numbers, not bigints: it runs for every room a write transaction
   * touched, once per publish when publishes go to many rooms. `slot`: the
   * room's in the log, which a write transaction's room holds.
   */
  dueForTrim(room: RoomRow, slot: Slot = this.log.slotOf(room.id)): boolean {
    const last = Number(room.sequence);
    const { floor } = slot;
    if (floor > last) return false;
    if (last - this.historySize + 1 - floor >= this.trimRows) return true;
    // The floor's time as the log keeps it; read from the file only the first time.
    const time = slot.floorTime ?? this.firstStored(room)?.time_ms;
    return time !== undefined && Number(time) < this.ttlCutoff();
  }

  /** The oldest retained message, null when nothing is retained. */
  firstRetained(room: RoomRow): Retained | null {
    const floor = this.log.floor(room.id);
    const sizeFloor = this.sizeFloor(room.sequence);
    const cutoff = this.ttlCutoff();
    // TTL trimming stops at the first message young enough: read times a block at a time.
    // Without a TTL the first candidate is the answer: one position read, not a block's.
    const step = BigInt(cutoff === Number.MIN_SAFE_INTEGER ? 1 : BLOCK);
    for (let from = floor > sizeFloor ? floor : sizeFloor; from <= room.sequence; from += step) {
      const positions = this.log.positions(room.id, from, from + step - 1n);
      for (let i = 0; i < positions.length; i++) {
        const time = this.sql.selectTime.get(positions[i]!);
        if (time !== undefined && Number(time) >= cutoff) return { sequence: from + BigInt(i), time_ms: time, position: positions[i]! };
      }
    }
    return null;
  }

  /** The oldest stored message (null: none): the room's floor, its time read once and then kept by the log. */
  private firstStored(room: RoomRow): KeptRow | null {
    const floor = this.log.floor(room.id);
    if (floor > room.sequence) return null;
    let time = this.log.floorTime(room.id);
    if (time === undefined) {
      const read = this.sql.selectTime.get(this.log.position(room.id, floor));
      if (read === undefined) return null;
      time = Number(read);
      this.log.noteFloorTime(room.id, time);
    }
    return { sequence: floor, time_ms: time };
  }

  /**
   * Moves the room's floor past what retention no longer keeps (sqlite-log.ts
   * deletes the rows). Inside a write transaction. The new floor's position,
   * found on the way, goes to the log with it: the next trim and the sweep
   * then know where the room's rows start without reading its blocks again.
   */
  trim(room: RoomRow): void {
    const first = this.firstRetained(room);
    if (first === null) {
      // With no message left, the room's row is what keeps its last sequence (sqlite-schema.ts).
      this.sql.updateSequence.run(room.sequence, room.id);
      this.log.trim(room.id, room.sequence + 1n, undefined, 0);
    } else this.log.trim(room.id, first.sequence, Number(first.time_ms), first.position);
  }
}
