import type Database from "better-sqlite3";
import { loadLog, pushPosition } from "./sqlite-log-load.js";
import { prepareLogStatements, type LogStatements } from "./sqlite-log-sql.js";
import { sweepBelowLive, sweepHead } from "./sqlite-log-sweep.js";
import { BLOCK, DEFAULT_TUNING, blockFirst, encode, lastOf, positionsOf, type LogCounters, type LogTuning, type Pending, type Saved, type Slot } from "./sqlite-log-slots.js";

export { BLOCK, type LogCounters, type LogTuning };

/**
 * Where the SQLite engine's messages are (schema version 6, sqlite-schema.ts).
 *
 * `messages` is a log: rows are appended at increasing `position`s, whatever
 * their room, and carry no index. A room's sequence → position map is kept in
 * `message_blocks`, one row per BLOCK sequences, written when the block
 * fills; the block being filled (the room's *tail*) is in memory. Retention
 * moves a room's `kept_from` (its floor) and drops its blocks below it; the
 * rows below a floor leave the log in log order, from its head, by ranges of
 * positions (sweep). A per-row (room, sequence) index put each publish on an
 * index page of its own room and each trimmed row on the table page it was
 * written to: with 10,000 rooms published in scattered order, 4.0x the CPU
 * and 10x the bytes written of one room (bench/layout-spike.ts: 36.7 µs per
 * insert against 2.9; this layout 4.6).
 *
 * Invariants:
 * - Every sequence from a room's floor to its last has its row in the log.
 * - A row below `scan_from` whose sequence is at or above its room's floor is
 *   in a block (a full one, or a partial one written by maintain()); the
 *   rows from `scan_from` on are read again at open to rebuild the tails.
 * - A clear or a forgotten room gives the room's rows a log id no room has,
 *   which makes them dead to the sweep and to the scan at open.
 * - Rows below `swept_to` are ones the sweep deleted or found live: a trim
 *   deletes those itself, by position, when they die.
 *
 * Everything here runs inside the engine's write transactions (or at open);
 * begin() / committed() / rolledBack() keep the memory in step with the file.
 */

export class MessageLog {
  /** Since open; not rolled back with a failed transaction. */
  readonly counters: LogCounters = { blocksWritten: 0, partialBlocksWritten: 0, rowsSwept: 0, livePassed: 0, rowsDeletedAlone: 0 };
  /** By room id (rooms.id). */
  private readonly slots = new Map<number, Slot>();
  /** By log id: the rooms the live rows belong to. */
  private readonly byLog = new Map<number, Slot>();
  private next = 1;
  private swept = 1;
  /** The sweep waits until `next` reaches this (it stopped at live rows). */
  private sweepAfter = 0;
  private scanFrom = 1;
  private nextLogId = 1;
  /** Sequences from floor to last, summed over rooms: the rows the log must keep. */
  private live = 0;
  /** Rooms with unwritten tail positions, oldest first (entries go stale; see Slot.gen). */
  private pending: Pending[] = [];
  private pendingHead = 0;

  private tx = 0;
  /** A transaction began and has not ended: a failure before begin() (BEGIN itself) has nothing to roll back. */
  private inTransaction = false;
  private saved: Saved[] = [];
  private savedState = { next: 1, swept: 1, sweepAfter: 0, scanFrom: 1, nextLogId: 1, live: 0, pendingLength: 0, pendingHead: 0 };

  private readonly sql: LogStatements;

  private readonly tuning: LogTuning;

  constructor(
    private readonly db: Database.Database,
    tuning: Partial<LogTuning> = {},
  ) {
    this.tuning = { ...DEFAULT_TUNING, ...tuning };
    this.sql = prepareLogStatements(db);
  }

  /** At open, inside its write transaction: every room's tail, from its last block and the log from scan_from. */
  load(): void {
    const loaded = loadLog(this.db, this.sql, this.tuning.sweepRows, this.writeBlock);
    this.scanFrom = loaded.scanFrom;
    this.swept = loaded.swept;
    this.nextLogId = loaded.nextLogId;
    this.next = loaded.next;
    for (const slot of loaded.slots) {
      this.slots.set(slot.roomId, slot);
      this.byLog.set(slot.logId, slot);
      this.live += lastOf(slot) - slot.floor + 1;
    }
    this.pending = loaded.pending;
  }

  /** Writes the slot's tail as its block: full (from pushPosition) or partial (maintain()). */
  private readonly writeBlock = (slot: Slot): void => {
    this.sql.insertBlock.run(slot.logId, slot.start, encode(slot.tail));
    if (slot.tail.length === BLOCK) this.counters.blocksWritten++;
    else this.counters.partialBlocksWritten++;
  };

  /**
   * The room's slot. The engine's cached room keeps it (CachedRoom.log), so
   * a publish to a cached room finds its log without this lookup, cold in
   * the CPU's caches at 10,000 rooms. A slot stays the room's until the
   * room is forgotten (the engine drops its cached room then).
   */
  slotOf(roomId: bigint): Slot {
    const slot = this.slots.get(Number(roomId));
    if (slot === undefined) throw new Error(`sqlite engine: room ${roomId} has no message log`);
    return slot;
  }

  /** Rows retention keeps, and rows from the sweep's position to the log's end (kept ones and dead ones not swept yet). */
  get rows(): { retained: number; unswept: number } {
    return { retained: this.live, unswept: this.next - this.swept };
  }

  // ---- transactions ---------------------------------------------------------

  /** A write transaction starts (each attempt of one). */
  begin(): void {
    this.tx++;
    this.inTransaction = true;
    this.saved = [];
    this.savedState = {
      next: this.next,
      swept: this.swept,
      sweepAfter: this.sweepAfter,
      scanFrom: this.scanFrom,
      nextLogId: this.nextLogId,
      live: this.live,
      pendingLength: this.pending.length,
      pendingHead: this.pendingHead,
    };
  }

  private save(slot: Slot, added?: boolean): void {
    if (slot.tx === this.tx && added === undefined) return;
    slot.tx = this.tx;
    const { logId, start, tail, written, floor, floorTime, floorPos, gen } = slot;
    this.saved.push({ slot, added, logId, start, tail, tailLength: tail.length, written, floor, floorTime, floorPos, gen });
  }

  /** The transaction committed. */
  committed(): void {
    this.inTransaction = false;
    this.saved = [];
    if (this.pendingHead > 4096 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
  }

  /** The transaction rolled back: the memory returns to where begin() found it. */
  rolledBack(): void {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    for (let i = this.saved.length - 1; i >= 0; i--) {
      const s = this.saved[i]!;
      const { slot } = s;
      if (s.added === true) {
        this.slots.delete(slot.roomId);
        this.byLog.delete(slot.logId);
        continue;
      }
      if (this.byLog.get(slot.logId) === slot) this.byLog.delete(slot.logId);
      Object.assign(slot, { logId: s.logId, start: s.start, tail: s.tail, written: s.written, floor: s.floor, floorTime: s.floorTime, floorPos: s.floorPos, gen: s.gen, tx: 0 });
      slot.tail.length = s.tailLength;
      this.slots.set(slot.roomId, slot);
      this.byLog.set(slot.logId, slot);
    }
    this.saved = [];
    const state = this.savedState;
    this.next = state.next;
    this.swept = state.swept;
    this.sweepAfter = state.sweepAfter;
    this.scanFrom = state.scanFrom;
    this.nextLogId = state.nextLogId;
    this.live = state.live;
    this.pending.length = state.pendingLength;
    this.pendingHead = state.pendingHead;
  }

  // ---- writes -----------------------------------------------------------------

  /** A log id never used: a new room's, or a cleared room's (its old rows die). */
  allocateLogId(): number {
    const logId = this.nextLogId++;
    this.sql.saveNextLogId.run(this.nextLogId);
    return logId;
  }

  /** A room just inserted with `logId` (allocateLogId()). */
  addRoom(roomId: bigint, logId: number): void {
    const slot: Slot = { roomId: Number(roomId), logId, start: 1, tail: [], written: 0, floor: 1, floorTime: undefined, floorPos: 0, gen: 0, tx: 0 };
    this.save(slot, true);
    this.slots.set(slot.roomId, slot);
    this.byLog.set(logId, slot);
  }

  /** The room's last sequence (0: none yet in its epoch). */
  lastSequence(roomId: bigint): bigint {
    return BigInt(lastOf(this.slotOf(roomId)));
  }

  /** The log id the room's rows carry. */
  logId(roomId: bigint): number {
    return this.slotOf(roomId).logId;
  }

  /** The room's floor: its oldest sequence still stored. */
  floor(roomId: bigint): bigint {
    return BigInt(this.slotOf(roomId).floor);
  }

  /** The time of the room's floor message, ms (undefined: not known yet: SqliteRetention reads it). */
  floorTime(roomId: bigint): number | undefined {
    return this.slotOf(roomId).floorTime;
  }

  /** The time of the room's floor message, read from the file. */
  noteFloorTime(roomId: bigint, timeMs: number): void {
    this.slotOf(roomId).floorTime = timeMs;
  }

  /** The position for the next sequence of the slot's room (slotOf()), which must be its last + 1, of a message of `timeMs`. */
  append(slot: Slot, sequence: bigint, timeMs: number): number {
    if (Number(sequence) !== lastOf(slot) + 1) throw new Error(`sqlite engine: room ${slot.roomId} sequence ${sequence} after ${lastOf(slot)}`);
    this.save(slot);
    // A room that stored nothing: the new message is its floor.
    const position = this.next++;
    if (slot.floor === Number(sequence)) {
      slot.floorTime = timeMs;
      slot.floorPos = position;
    }
    if (slot.written === slot.tail.length) this.pending.push({ slot, position, gen: ++slot.gen });
    this.live++;
    pushPosition(slot, position, this.writeBlock);
    return position;
  }

  /**
   * Retention keeps the room's sequences from `floor` on (the message there
   * from `floorTime`, at `floorPos`; undefined and 0: none, or not known): the
   * rest leave (by the sweep, or now if it passed them).
   */
  trim(roomId: bigint, floor: bigint, floorTime: number | undefined, floorPos: number): void {
    const slot = this.slotOf(roomId);
    const to = Number(floor);
    if (to <= slot.floor) return;
    this.save(slot);
    this.deleteSwept(slot, slot.floor, to - 1, slot.floorPos);
    slot.floorTime = floorTime;
    slot.floorPos = floorPos;
    if (blockFirst(to) > blockFirst(slot.floor)) this.sql.deleteBlocksBelow.run(slot.logId, blockFirst(to));
    this.live -= to - slot.floor;
    slot.floor = to;
    this.sql.setFloor.run(to, slot.roomId);
  }

  /** A clear: the room's rows die (a new log id) and its sequences start over at 1. */
  reset(roomId: bigint): void {
    const slot = this.slotOf(roomId);
    this.save(slot);
    this.drop(slot);
    slot.logId = this.allocateLogId();
    slot.start = 1;
    slot.tail = [];
    slot.written = 0;
    slot.floor = 1;
    slot.floorTime = undefined;
    slot.floorPos = 0;
    slot.gen++;
    this.byLog.set(slot.logId, slot);
    this.sql.setLog.run(slot.logId, slot.roomId);
  }

  /** The room's row is deleted (an idle room): its rows die. */
  forget(roomId: bigint): void {
    const slot = this.slotOf(roomId);
    this.save(slot, false);
    this.drop(slot);
    slot.gen++;
    this.slots.delete(slot.roomId);
  }

  /** The slot's rows and blocks leave; the sweep takes the rows it has not passed (their log id is no room's now). */
  private drop(slot: Slot): void {
    this.deleteSwept(slot, slot.floor, lastOf(slot));
    this.sql.deleteBlocks.run(slot.logId);
    this.live -= lastOf(slot) - slot.floor + 1;
    this.byLog.delete(slot.logId);
  }

  /**
   * Deletes the rows of sequences from..to that lie below the sweep (it found
   * them live and passed them). `fromPos`: the position of `from` if known
   * (the floor's), else 0.
   */
  private deleteSwept(slot: Slot, from: number, to: number, fromPos = 0): void {
    if (to < from) return;
    // Positions grow with sequences: if the first row is past the sweep, so are the rest.
    const first = fromPos || (positionsOf(this.sql.blocks, slot, from, from)[0] ?? 0);
    if (first !== 0 && first >= this.swept) return;
    for (const position of positionsOf(this.sql.blocks, slot, from, to)) {
      if (position >= this.swept) break;
      if (position !== 0) {
        this.sql.deleteRow.run(position);
        this.counters.rowsDeletedAlone++;
      }
    }
  }

  /**
   * At the end of a write transaction: sweeps dead rows from the log's head
   * once the log holds half again as many rows as retention keeps (a row at
   * the head is then older than a room's history, so most there are dead),
   * and writes the tails that grew old as partial blocks.
   */
  maintain(): void {
    let moved = false;
    const { sweepRows } = this.tuning;
    const due = () => this.next >= this.sweepAfter && this.next - this.swept > this.live + (this.live >> 1) + Math.max(1, sweepRows >> 5);
    const sweep = { sql: this.sql, counters: this.counters, next: this.next, sweepRows, swept: this.swept };
    const below = due() ? sweepBelowLive(sweep, this.slots) : undefined;
    if (below !== undefined) {
      ({ swept: this.swept, sweepAfter: this.sweepAfter } = below);
      moved = true;
    }
    if (due()) {
      const unswept = this.next - this.swept;
      // It reads no further than the newest `live` rows, which are mostly live; soon after they die, while
      // their pages may still be cached (one busy room: a few hundred rows behind, not sweepRows).
      // Past three times what retention keeps it passes live rows whatever their share.
      ({ swept: this.swept, sweepAfter: this.sweepAfter } = sweepHead({ ...sweep, swept: this.swept }, this.byLog, Math.min(sweepRows, unswept - this.live), unswept > 3 * this.live + sweepRows));
      moved = true;
    }
    // The scan at open reads at most about as many rows as retention keeps (or persistAge).
    const limit = this.next - Math.max(this.tuning.persistAge, this.live);
    while (this.pendingHead < this.pending.length) {
      const entry = this.pending[this.pendingHead]!;
      const { slot } = entry;
      if (entry.gen === slot.gen && this.slots.get(slot.roomId) === slot && slot.written < slot.tail.length) {
        if (entry.position >= limit) break;
        this.save(slot);
        this.writeBlock(slot);
        slot.written = slot.tail.length;
        slot.gen++;
      }
      this.pendingHead++;
    }
    const scanFrom = this.pendingHead < this.pending.length ? this.pending[this.pendingHead]!.position : this.next;
    if (moved || scanFrom - this.scanFrom >= this.tuning.sweepRows) {
      this.scanFrom = scanFrom;
      this.sql.saveState.run(this.scanFrom, this.swept);
    }
  }

  // ---- reads ------------------------------------------------------------------

  /** The position of a room's sequence (0: none). */
  position(roomId: bigint, sequence: bigint): number {
    const n = Number(sequence);
    return positionsOf(this.sql.blocks, this.slotOf(roomId), n, n)[0] ?? 0;
  }

  /** Positions of a room's sequences from..to, in order (0: none). */
  positions(roomId: bigint, from: bigint, to: bigint): number[] {
    return positionsOf(this.sql.blocks, this.slotOf(roomId), Number(from), Number(to));
  }
}
