import type { RetentionPolicy } from "./engine.js";
import type { KeptRow, RoomRow, Statements } from "./sqlite-statements.js";

/**
 * What the SQLite engine's retention keeps of a room (history size and TTL),
 * for its writes (trim) and its reads (the first retained sequence). Like the
 * memory engine, TTL trimming stops at the first message young enough, so
 * only a prefix is ever dropped even if message times are not monotonic.
 */
export class SqliteRetention {
  /** historySize - 1, as a bigint once rather than on every check. */
  private readonly sizeSpan: bigint;

  constructor(
    private readonly sql: Statements,
    private readonly policy: RetentionPolicy,
    private readonly now: () => number,
  ) {
    this.sizeSpan = BigInt(policy.historySize) - 1n;
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
   * Whether retention keeps every message the room stores, known without a
   * query: `kept`, its oldest stored message, is within both the size and
   * the TTL limit (null: it stores none). Unknown (undefined: a room not yet
   * trimmed by this process) counts as no.
   */
  keepsAll(room: RoomRow, kept: KeptRow | null | undefined): boolean {
    if (kept === undefined) return false;
    if (kept === null) return true;
    return kept.sequence >= this.sizeFloor(room.sequence) && Number(kept.time_ms) >= this.ttlCutoff();
  }

  /** The oldest retained message, null when nothing is retained. */
  firstRetained(room: RoomRow): KeptRow | null {
    return this.sql.firstRetained.get(room.id, this.sizeFloor(room.sequence), this.ttlCutoff()) ?? null;
  }

  /** Deletes what retention no longer keeps; returns the oldest message left. Inside a write transaction. */
  trim(room: RoomRow): KeptRow | null {
    const first = this.firstRetained(room);
    if (first === null) {
      // With no message left, the room's row is what keeps its last sequence (sqlite-schema.ts).
      this.sql.updateSequence.run(room.sequence, room.id);
      this.sql.deleteRoomMessages.run(room.id);
    } else this.sql.deleteBelow.run(room.id, first.sequence);
    return first;
  }
}
