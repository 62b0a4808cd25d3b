import type { MessageDraft, Position, PublishResult, StoredMessage } from "./engine.js";
import { newEpoch, newMessageId } from "./ids.js";
import { rememberedMessage, storedMessage } from "./stored.js";
import { decodeDependencies, encodeDependencies } from "./dependency-codec.js";
import type { IdempotencyKeys } from "./sqlite-idempotency.js";
import type { MessageLog } from "./sqlite-log.js";
import { lastOf, type Slot } from "./sqlite-log-slots.js";
import type { SqliteRetention } from "./sqlite-retention.js";
import type { MessageRow, RoomRef, RoomRow, Statements } from "./sqlite-statements.js";
import type { RowWriter } from "./sqlite-rows.js";

// The SQLite engine's write transaction: one group commit's publishes and
// clears, applied in call order (sqlite-commit.ts queues them and settles them after COMMIT).

export type Op =
  | { kind: "publish"; draft: MessageDraft; waiter: PublishWaiter; index: number }
  | { kind: "clear"; room: string; resolve: (position: Position) => void; reject: (error: unknown) => void };

/**
 * Who waits for publishes: one per publish() and one for all the drafts of
 * a publishBatch(), which its ops name by index (no closures per message).
 */
export interface PublishWaiter {
  settle(index: number, result: PublishResult): void;
  fail(error: unknown): void;
}

/** The waiter of one publish(). */
export class OneWaiter implements PublishWaiter {
  constructor(
    private readonly resolve: (result: PublishResult) => void,
    readonly fail: (error: unknown) => void,
  ) {}

  settle(_index: number, result: PublishResult): void {
    this.resolve(result);
  }
}

/** Resolves with every result once the last one is in; the first failure rejects it for all. */
export class BatchWaiter implements PublishWaiter {
  private readonly results: PublishResult[];
  private left: number;
  private failed = false;

  constructor(
    count: number,
    private readonly resolve: (results: PublishResult[]) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.results = new Array<PublishResult>(count);
    this.left = count;
  }

  settle(index: number, result: PublishResult): void {
    this.results[index] = result;
    if (--this.left === 0 && !this.failed) this.resolve(this.results);
  }

  fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.reject(error);
  }
}

/** Fails an op's promise (a whole batch's, for a publish of a publishBatch()). */
export function rejectOp(op: Op, error: unknown): void {
  if (op.kind === "clear") op.reject(error);
  else op.waiter.fail(error);
}

/**
 * A room as this engine knows it. id and epoch are always right (only this
 * process writes the file: sqlite-lock.ts). Its last sequence, oldest stored
 * message and that message's time are the log's (sqlite-log.ts).
 */
export interface CachedRoom extends RoomRef {
  /** The newest idempotency key this process recorded in the room, ms (sweep keeps a room with a live key). */
  keyedMs?: number;
  /**
   * The room inside the write transaction that last loaded it (applyBatch):
   * a room is found with one lookup of this cache per publish, not one more
   * in a map of the transaction's rooms. A failed transaction's is ignored
   * (the retry has another id); settle() drops it.
   */
  batch?: BatchRoom;
  /** Where the room's messages are (MessageLog.slotOf()), once a write loaded it: no lookup by id per publish. */
  log?: Slot;
}

/** A room inside a write transaction. */
export interface BatchRoom extends RoomRow {
  readonly name: string;
  /** The write transaction this is the room of (each attempt has its own). */
  readonly batchId: number;
  dirty: boolean;
  /** The newest idempotency key recorded in the room by this transaction, ms (MIN_SAFE_INTEGER: none). */
  keyedMs: number;
  /** Its entry in the engine's cache (undefined: a room the cache did not hold; settle() adds it). */
  readonly cached: CachedRoom | undefined;
  /** Where its messages are (MessageLog.slotOf()). */
  readonly log: Slot;
}

/** What one batch transaction produced, applied to the caches and promises after COMMIT. */
export interface BatchResult {
  results: Array<PublishResult | Position>;
  /** Every room the batch touched, as it left it. */
  rooms: BatchRoom[];
  published: number;
}

/** What the write transaction reads besides the file: the engine's caches and policies. */
export interface BatchStore {
  readonly sql: Statements;
  /** Inserts into messages, gathered (sqlite-rows.ts): flushed before the transaction reads messages, and at its end. */
  readonly messages: RowWriter;
  /** Rooms known to exist in the file, as the last committed transaction left them. */
  readonly rooms: ReadonlyMap<string, CachedRoom>;
  readonly keys: IdempotencyKeys;
  /** Where each room's messages are in the log (sqlite-log.ts). */
  readonly log: MessageLog;
  readonly kept: SqliteRetention;
  readonly dedupeWindowMs: number;
  readonly now: () => number;
}

/** Tells one write transaction (and each retry of one) from another: BatchRoom.batchId. */
let lastBatchId = 0;

/** Inside the write transaction: every op in order; returns what to settle after COMMIT. */
export function applyBatch(store: BatchStore, ops: Op[], trims: Set<string>): BatchResult {
  // What an earlier, failed attempt gathered is not this transaction's.
  store.messages.reset();
  store.keys.resetRows();
  store.log.begin();
  const batchId = ++lastBatchId;
  const touched: BatchRoom[] = [];
  // Rooms the cache does not hold, touched by this transaction (new ones, mostly).
  const uncached = new Map<string, BatchRoom>();
  const results = new Array<PublishResult | Position>(ops.length);
  const dedupeWindow = store.dedupeWindowMs;
  const dedupeFrom = store.now() - dedupeWindow;
  let published = 0;
  /** The room as this transaction left it so far, if it touched it. */
  const inBatch = (name: string, cached = store.rooms.get(name)): BatchRoom | undefined =>
    cached !== undefined ? (cached.batch?.batchId === batchId ? cached.batch : undefined) : uncached.get(name);
  // Whether the room exists: touched by this batch, known to this process, or in the file.
  const exists = (name: string) => store.rooms.has(name) || uncached.has(name) || store.sql.selectRoom.get(name) !== undefined;
  const load = (name: string): BatchRoom => {
    const cached = store.rooms.get(name);
    const touchedRow = inBatch(name, cached);
    if (touchedRow !== undefined) return touchedRow;
    const existing = cached ?? store.sql.selectRoom.get(name);
    let row: BatchRoom;
    if (existing) {
      const slot = cached !== undefined ? (cached.log ??= store.log.slotOf(existing.id)) : store.log.slotOf(existing.id);
      row = { name, batchId, id: existing.id, epoch: existing.epoch, sequence: BigInt(lastOf(slot)), dirty: false, keyedMs: Number.MIN_SAFE_INTEGER, cached, log: slot };
    } else {
      const epoch = newEpoch();
      const logId = store.log.allocateLogId();
      const { id } = store.sql.insertRoom.get(name, epoch, store.now(), logId)!;
      store.log.addRoom(id, logId);
      row = { name, batchId, id, epoch, sequence: 0n, dirty: false, keyedMs: Number.MIN_SAFE_INTEGER, cached, log: store.log.slotOf(id) };
    }
    if (cached !== undefined) cached.batch = row;
    else uncached.set(name, row);
    touched.push(row);
    return row;
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === "clear") {
      // Clearing a room that was never written creates nothing: it has no lineage to end.
      if (!exists(op.room)) {
        results[i] = { epoch: "", sequence: 0n };
        continue;
      }
      const row = load(op.room);
      store.messages.flush();
      row.epoch = newEpoch();
      row.sequence = 0n;
      row.dirty = false;
      store.sql.resetRoom.run(row.epoch, row.id);
      store.log.reset(row.id);
      store.keys.clearRoom(row.id);
      results[i] = { epoch: row.epoch, sequence: 0n };
      continue;
    }
    const { draft } = op;
    const row = load(draft.room);
    const sequence = row.sequence + 1n;
    // A live key (younger than the window) makes this a retry of what it stored.
    const keyed = dedupeWindow > 0 && draft.clientMessageId !== "";
    const original = keyed ? store.keys.find(row.id, draft.sender, draft.clientMessageId, dedupeFrom) : undefined;
    if (original) {
      // The original as stored (this transaction sees its own earlier inserts);
      // if retention already dropped it, what the key remembers, without a body.
      store.messages.flush();
      const stored = original.sequence >= store.log.floor(row.id) ? store.sql.selectMessage.get(store.log.position(row.id, original.sequence)) : undefined;
      const message = stored
        ? toMessage(draft.room, row.epoch, stored)
        : rememberedMessage(draft, original.id, row.epoch, original.sequence, original.timeMs);
      results[i] = { message, duplicate: true };
      continue;
    }
    const message = storedMessage(draft, newMessageId(), row.epoch, sequence);
    if (keyed) {
      store.keys.record(row.id, draft.sender, draft.clientMessageId, sequence, message.id, draft.timeMs);
      if (draft.timeMs > row.keyedMs) row.keyedMs = draft.timeMs;
    }
    store.messages.add(
      store.log.append(row.log, sequence, message.timeMs),
      row.log.logId,
      sequence,
      message.id,
      message.sender,
      message.content,
      message.payload,
      JSON.stringify(message.attributes),
      message.timeMs,
      message.clientMessageId,
      encodeDependencies(message.dependencies) ?? null,
    );
    row.sequence = sequence;
    row.dirty = true;
    published++;
    results[i] = { message, duplicate: false };
  }
  store.messages.flush();
  store.keys.flushRows();
  if (dedupeWindow > 0 && published > 0) store.keys.expire(dedupeFrom);
  // The newest message carries the room's last sequence (rooms.sequence is
  // only a floor, written when a trim leaves no message): no row update per publish.
  for (const row of touched) if (row.dirty && store.kept.dueForTrim(row, row.log)) store.kept.trim(row);
  for (const name of trims) {
    if (inBatch(name)?.dirty) continue;
    // A room cleared or forgotten since the read that found its expired rows is not recreated.
    if (!exists(name)) continue;
    const row = load(name);
    store.kept.trim(row);
  }
  store.log.maintain();
  return { results, rooms: touched, published };
}

export function toMessage(room: string, epoch: string, row: MessageRow): StoredMessage {
  const [sequence, id, sender, content, payload, attributes, timeMs, clientMessageId, dependencies] = row;
  return {
    id,
    room,
    epoch,
    sequence,
    sender,
    content,
    // A plain Uint8Array view, like the drafts the broker stores, not a Buffer.
    payload: payload ? new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) : new Uint8Array(0),
    attributes: JSON.parse(attributes) as Record<string, string>,
    timeMs: Number(timeMs),
    clientMessageId,
    dependencies: decodeDependencies(dependencies),
  };
}
