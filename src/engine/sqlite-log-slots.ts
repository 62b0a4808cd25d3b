import type { LogStatements } from "./sqlite-log-sql.js";

// The message log's per-room state and block format (sqlite-log.ts).

/** Sequences per block (message_blocks). */
export const BLOCK = 32;
/** The log's sizes, for tests that need them small. */
export interface LogTuning {
  /** Rows the sweep reads at a time (default 8,192). */
  sweepRows: number;
  /** A tail whose oldest unwritten row is this many positions behind the log's end is written as a partial block: it bounds the scan at open (default 65,536). */
  persistAge: number;
}

export const DEFAULT_TUNING: LogTuning = { sweepRows: 8192, persistAge: 65_536 };

export interface Slot {
  readonly roomId: number;
  logId: number;
  /** First sequence of the tail's block: 1 + a multiple of BLOCK. */
  start: number;
  /** Positions of sequences start, start + 1, …: fewer than BLOCK; 0 = no row (deleted before a restart found it). */
  tail: number[];
  /** How many of `tail` message_blocks holds (a partial block). */
  written: number;
  /** First sequence retention keeps: rows below are dead. */
  floor: number;
  /** The time of the floor's message, ms (undefined: not read yet, or none stored). */
  floorTime: number | undefined;
  /** The floor's position (0: not looked up yet, or none stored): every live row of the room is at or after it. */
  floorPos: number;
  /** Changes when the tail's first unwritten position does (persist queue entries are valid while it matches). */
  gen: number;
  /** The transaction that last saved this slot (journal). */
  tx: number;
}

export interface Saved {
  slot: Slot;
  /** The slot was added by the transaction (true), removed (false), or changed (undefined). */
  added?: boolean;
  logId: number;
  start: number;
  tail: number[];
  tailLength: number;
  written: number;
  floor: number;
  floorTime: number | undefined;
  floorPos: number;
  gen: number;
}

export interface Pending {
  slot: Slot;
  position: number;
  gen: number;
}

/** What the log did since open (SqliteEngine.stats()). */
export interface LogCounters {
  /** Blocks written full, and partial (a tail grown old: MessageLog.maintain()). */
  blocksWritten: number;
  partialBlocksWritten: number;
  /** Rows the sweep read, and the live ones among them it passed (each deleted on its own later). */
  rowsSwept: number;
  livePassed: number;
  /** Rows deleted one by one: live rows the sweep had passed, dead now. */
  rowsDeletedAlone: number;
}

/** The room's last sequence. */
export function lastOf(slot: Slot): number {
  return slot.start - 1 + slot.tail.length;
}

/** Positions of a room's sequences from..to, in order (0: none): from its blocks and its tail. */
export function positionsOf(blocks: LogStatements["blocks"], slot: Slot, from: number, to: number): number[] {
  const out: number[] = [];
  if (from < 1) from = 1;
  const last = lastOf(slot);
  if (to > last) to = last;
  let sequence = from;
  if (sequence < slot.start && sequence <= to) {
    const upTo = Math.min(to, slot.start - 1);
    for (const block of blocks.all(slot.logId, blockFirst(sequence), upTo)) {
      // Only the entries asked for are read: a trim asks for one.
      const stored = block.positions.byteLength >> 3;
      for (; sequence < block.first; sequence++) out.push(0);
      for (; sequence <= upTo && sequence - block.first < BLOCK; sequence++) {
        const i = sequence - block.first;
        out.push(i < stored ? block.positions.readDoubleLE(i * 8) : 0);
      }
    }
    for (; sequence <= upTo; sequence++) out.push(0);
  }
  for (; sequence <= to; sequence++) out.push(slot.tail[sequence - slot.start]!);
  return out;
}

/** The first sequence of the block holding `sequence`. */
export function blockFirst(sequence: number): number {
  return sequence - ((sequence - 1) % BLOCK);
}

/** A block's positions as stored: float64 little-endian each. */
export function encode(positions: number[]): Buffer {
  return Buffer.from(Float64Array.from(positions).buffer);
}

export function decode(blob: Buffer): number[] {
  const out = new Array<number>(blob.byteLength >> 3);
  for (let i = 0; i < out.length; i++) out[i] = blob.readDoubleLE(i * 8);
  return out;
}
