import type Database from "better-sqlite3";
import { KeyIndex, MIGRATE_SLOTS } from "./sqlite-key-index.js";
import { RowWriter } from "./sqlite-rows.js";

/**
 * The SQLite engine's idempotency keys: (room, sender, client_message_id)
 * → the message it stored, for `dedupeWindowMs` (sqlite-schema.ts,
 * table idempotency_keys, since version 5).
 *
 * Why not a table keyed by the idempotency key. Clients make their keys
 * random (the SDK sends a UUID per message), and a B-tree keyed by random
 * values dirties a different page for nearly every insert: every group
 * commit wrote one 4 KiB page per message to the WAL (and again at the
 * checkpoint), which made a durable publish with a key ~2.5× the cost of
 * one without (24 µs against 9 µs of broker CPU, 1 room). Here the table is
 * a log in insertion order (its rows land on the same few pages), and
 * lookups go through an index in memory: a hash of the key → the row's
 * key_id. Like JetStream's duplicate window, the live keys' index is held
 * in memory: 8 bytes a slot, at most half of them used, for the keys of
 * the last one to two windows (16–32 bytes a key; half as much again while
 * a doubling moves them, sqlite-key-index.ts). The table remains the
 * truth (a hash hit is confirmed by reading the row), so the index never
 * needs to be exact, only complete for the window.
 *
 * Completeness. The index has two generations; a new one starts once the
 * current one is a window old, and the previous one is then dropped: every
 * key it held was recorded before the current generation started, so more
 * than a window ago. Rows are deleted in insertion order once the newest
 * key of their group commit is older than the window. Restart: open()
 * reads the table's rows back into the index.
 */
export class IdempotencyKeys {
  private current: KeyIndex;
  private previous: KeyIndex | undefined;
  /** Committed group commits not yet expired, oldest first: their last key_id and newest key's time. */
  private readonly groups: Array<{ lastKey: number; timeMs: number }> = [];
  private groupsHead = 0;
  /** Keys recorded in the transaction in progress, inserted 16 at a time (sqlite-rows.ts), with ids given here. */
  private readonly rows: RowWriter;
  /** The next key_id: ids are given in order and never again, even after a rollback (as AUTOINCREMENT would). */
  private nextKey: number;
  private readonly sql: {
    byKey: Database.Statement<[number], KeyRow>;
    deleteThrough: Database.Statement<[number]>;
    lastKeyId: Database.Statement<[], number | null>;
    clearRoom: Database.Statement<[number, bigint]>;
    all: Database.Statement<[], { key_id: number; room_id: bigint; sender: string; client_message_id: string; time_ms: number }>;
  };
  /**
   * Room id → the newest key's time among the keys found at open: a room
   * with a live key is not idle (sweep). Keys recorded since are noted on
   * the engine's cached room instead (CachedRoom.keyedMs), with no map
   * lookup per publish.
   */
  private readonly newest = new Map<number, number>();
  /** Room id → the last key_id recorded before the room was cleared: those keys no longer count (rooms.keys_after). */
  private readonly clearedThrough = new Map<number, number>();
  /** The key find() looked up last, and its hash: record() of that key (after a miss) reuses it. */
  private foundRoom = -1n;
  private foundSender = "";
  private foundKey = "";
  private foundHash = 0;
  /** Clears by the write transaction in progress, applied to clearedThrough once it commits. */
  private pendingClears: Array<[number, number]> = [];
  /** Keys recorded by the write transaction in progress: its group, once committed. */
  private pendingLast = 0;
  private pendingTime = Number.MIN_SAFE_INTEGER;
  /** Where groupsHead moves once the transaction that deleted those groups' rows commits. */
  private expiredHead = -1;

  constructor(
    db: Database.Database,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {
    this.sql = {
      byKey: db
        .prepare<[number], KeyRow>(
          "SELECT room_id, sender, client_message_id, sequence, message_id, time_ms FROM idempotency_keys WHERE key_id = ?",
        )
        .safeIntegers(true),
      deleteThrough: db.prepare("DELETE FROM idempotency_keys WHERE key_id <= ?"),
      lastKeyId: db
        .prepare<[], number | null>("SELECT seq FROM sqlite_sequence WHERE name = 'idempotency_keys'")
        .pluck()
        .safeIntegers(false),
      clearRoom: db.prepare("UPDATE rooms SET keys_after = ? WHERE id = ?"),
      all: db
        .prepare<[], { key_id: number; room_id: bigint; sender: string; client_message_id: string; time_ms: number }>(
          "SELECT key_id, room_id, sender, client_message_id, time_ms FROM idempotency_keys ORDER BY key_id",
        )
        .safeIntegers(false),
    };
    this.current = new KeyIndex(this.now());
    for (const { id, keys_after } of db
      .prepare<[], { id: number; keys_after: number }>("SELECT id, keys_after FROM rooms WHERE keys_after > 0")
      .safeIntegers(false)
      .iterate())
      this.clearedThrough.set(id, keys_after);
    this.load();
    this.rows = new RowWriter(db, "idempotency_keys (key_id, room_id, sender, client_message_id, sequence, message_id, time_ms)", 7);
    // AUTOINCREMENT's own counter: past every key_id the table ever held.
    this.nextKey = (this.sql.lastKeyId.get() ?? 0) + 1;
  }

  /** Rebuilds the index from the table (at open): one group per 1,024 rows, timed by its newest key. */
  /** The keys in the index in memory (the last one to two windows; the table holds the rest until deleted), and its bytes. */
  memory(): { idempotencyKeys: number; idempotencyKeyBytes: number } {
    const indexes = this.previous ? [this.current, this.previous] : [this.current];
    return { idempotencyKeys: indexes.reduce((n, i) => n + i.size, 0), idempotencyKeyBytes: indexes.reduce((n, i) => n + i.bytes, 0) };
  }

  private load(): void {
    let count = 0;
    let groupTime = Number.MIN_SAFE_INTEGER;
    let last = 0;
    // Keys already past the window (the broker was down) only wait for their group's deletion.
    const from = this.now() - this.windowMs;
    for (const row of this.sql.all.iterate()) {
      if (Number(row.time_ms) >= from) {
        this.current.add(keyHash(BigInt(row.room_id), row.sender, row.client_message_id), row.key_id);
        this.noteNewest(Number(row.room_id), Number(row.time_ms));
      }
      last = row.key_id;
      groupTime = Math.max(groupTime, Number(row.time_ms));
      if (++count % 1024 === 0) {
        this.groups.push({ lastKey: last, timeMs: groupTime });
        groupTime = Number.MIN_SAFE_INTEGER;
      }
    }
    if (count % 1024 !== 0) this.groups.push({ lastKey: last, timeMs: groupTime });
  }

  /** Inside a write transaction: the message a live key (recorded at or after `from`) stored, or undefined. */
  find(roomId: bigint, sender: string, clientMessageId: string, from: number): StoredKey | undefined {
    const hash = keyHash(roomId, sender, clientMessageId);
    this.foundRoom = roomId;
    this.foundSender = sender;
    this.foundKey = clientMessageId;
    this.foundHash = hash;
    const after = this.keysAfter(Number(roomId));
    return this.findIn(this.current, hash, after, roomId, sender, clientMessageId, from) ??
      (this.previous && this.findIn(this.previous, hash, after, roomId, sender, clientMessageId, from));
  }

  private keysAfter(roomId: number): number {
    if (this.clearedThrough.size === 0 && this.pendingClears.length === 0) return 0;
    for (const [room, through] of this.pendingClears) if (room === roomId) return through;
    return this.clearedThrough.get(roomId) ?? 0;
  }

  private findIn(
    index: KeyIndex,
    hash: number,
    after: number,
    roomId: bigint,
    sender: string,
    clientMessageId: string,
    from: number,
  ): StoredKey | undefined {
    for (let slot = index.first(hash); slot >= 0; slot = index.next(slot, hash)) {
      if (index.keyAt(slot) <= after) continue;
      // A candidate recorded earlier in this transaction must be in the table to be read.
      this.rows.flush();
      const row = this.sql.byKey.get(index.keyAt(slot));
      if (
        row !== undefined &&
        row.room_id === roomId &&
        row.sender === sender &&
        row.client_message_id === clientMessageId &&
        Number(row.time_ms) >= from
      )
        return { sequence: row.sequence, id: row.message_id, timeMs: Number(row.time_ms) };
    }
    return undefined;
  }

  /** Inside a write transaction: remembers the key (find() answered undefined for it). */
  record(roomId: bigint, sender: string, clientMessageId: string, sequence: bigint, messageId: string, timeMs: number): void {
    const key = this.nextKey++;
    this.rows.add(key, roomId, sender, clientMessageId, sequence, messageId, timeMs);
    const hash =
      roomId === this.foundRoom && sender === this.foundSender && clientMessageId === this.foundKey
        ? this.foundHash
        : keyHash(roomId, sender, clientMessageId);
    this.current.add(hash, key);
    this.previous?.migrate(MIGRATE_SLOTS);
    this.pendingLast = key;
    if (timeMs > this.pendingTime) this.pendingTime = timeMs;
  }

  /** Inserts the keys recorded so far (before the transaction commits). */
  flushRows(): void {
    this.rows.flush();
  }

  /** Forgets keys gathered but not inserted (a transaction that failed and is tried again). */
  resetRows(): void {
    this.rows.reset();
  }

  /** Inside a write transaction: deletes the rows of every group whose newest key is older than `from`. */
  expire(from: number): void {
    let head = this.groupsHead;
    let through = 0;
    while (head < this.groups.length && this.groups[head]!.timeMs < from) through = this.groups[head++]!.lastKey;
    if (through === 0) return;
    this.sql.deleteThrough.run(through);
    this.expiredHead = head;
  }

  /** Inside a write transaction: the room's keys recorded so far no longer count (ClearHistory); they expire with the others. */
  clearRoom(roomId: bigint): void {
    this.rows.flush();
    const through = this.sql.lastKeyId.get() ?? 0;
    this.sql.clearRoom.run(through, roomId);
    this.pendingClears.push([Number(roomId), through]);
  }

  /** Whether a key found at open, recorded at or after `from`, may be live in the room (sweep keeps such rooms; the engine checks the keys it recorded since). */
  hasLiveKey(roomId: bigint, from: number): boolean {
    return (this.newest.get(Number(roomId)) ?? Number.MIN_SAFE_INTEGER) >= from;
  }

  /** The room's row is gone (sweep found no live key): its expired keys stay until their group expires. */
  forgetRoom(roomId: bigint): void {
    this.newest.delete(Number(roomId));
    this.clearedThrough.delete(Number(roomId));
  }

  private noteNewest(roomId: number, timeMs: number): void {
    if (timeMs > (this.newest.get(roomId) ?? Number.MIN_SAFE_INTEGER)) this.newest.set(roomId, timeMs);
  }

  /** After the write transaction committed: its keys form one group; the index turns over once a window old. */
  committed(): void {
    if (this.pendingLast > 0) this.groups.push({ lastKey: this.pendingLast, timeMs: this.pendingTime });
    if (this.expiredHead >= 0) this.groupsHead = this.expiredHead;
    for (const [room, through] of this.pendingClears) this.clearedThrough.set(room, through);
    if (this.groupsHead > 1024 && this.groupsHead * 2 > this.groups.length) {
      this.groups.splice(0, this.groupsHead);
      this.groupsHead = 0;
    }
    this.rolledBack();
    const now = this.now();
    if (now - this.current.startedMs >= this.windowMs) {
      this.previous = this.current;
      this.current = new KeyIndex(now);
    }
  }

  /** The write transaction failed: its index entries point at no row (or at another key's, which find() tells apart). */
  rolledBack(): void {
    this.pendingLast = 0;
    this.pendingTime = Number.MIN_SAFE_INTEGER;
    this.expiredHead = -1;
    if (this.pendingClears.length > 0) this.pendingClears = [];
  }
}

/** What a live key remembers of the message it stored. */
export interface StoredKey {
  sequence: bigint;
  id: string;
  timeMs: number;
}

interface KeyRow {
  room_id: bigint;
  sender: string;
  client_message_id: string;
  sequence: bigint;
  message_id: string;
  time_ms: bigint;
}

/** 32-bit FNV-1a over the room id, sender and key (a hit is confirmed against the row, so collisions cost a read, not a wrong answer). */
export function keyHash(roomId: bigint, sender: string, clientMessageId: string): number {
  let h = 0x811c9dc5 ^ Number(roomId & 0xffffffffn);
  h = Math.imul(h, 0x01000193);
  for (let i = 0; i < sender.length; i++) h = Math.imul(h ^ sender.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < clientMessageId.length; i++) h = Math.imul(h ^ clientMessageId.charCodeAt(i), 0x01000193);
  return h | 0;
}
