import type Database from "better-sqlite3";
import type { Position, PublishResult, RoomListener } from "./engine.js";
import type { WatchSet } from "./watch-set.js";
import { applyBatch, rejectOp, type BatchResult, type BatchStore, type CachedRoom, type Op } from "./sqlite-batch.js";

/**
 * Queued writes that commit as soon as the callback that queued them returns
 * instead of at the end of the event-loop turn. A turn that reads a
 * publisher's window of 1,024 messages in several socket chunks would
 * otherwise commit (and acknowledge) them all at once, after the last chunk,
 * while the publisher waits with nothing to send; committing each chunk's
 * messages lets it refill its window as the next chunk is written (bench
 * ingest, window 1,024: ~85k -> ~105k acknowledged publishes/s). Smaller
 * bursts keep one transaction per turn: a transaction's fixed cost is paid
 * no more often than once per 256 messages.
 */
const EARLY_COMMIT_OPS = 256;

export interface SqliteEngineStats {
  /** Write transactions committed (group commits, including clears and deferred trims). */
  transactions: number;
  /** Messages committed. */
  publishes: number;
  /** Most messages committed in one transaction. */
  largestBatch: number;
}

/** What the write transaction works with, and the room cache that settle() brings up to date after COMMIT. */
export interface CommitStore extends BatchStore {
  readonly rooms: Map<string, CachedRoom>;
}

/**
 * The SQLite engine's group commit. Contract:
 * - Every write queued in one event-loop turn is committed in one write
 *   transaction (flushed from setImmediate), or sooner once EARLY_COMMIT_OPS
 *   writes are waiting: one fsync and one transaction's fixed cost for a
 *   burst, not for each publish.
 * - A write's promise settles only after its transaction committed: a
 *   publish is acknowledged only once it is as durable as the engine's
 *   `synchronous` setting makes it.
 * - Watchers get the messages right after the COMMIT, in sequence order
 *   (call order within a transaction, transactions in commit order).
 * - A busy or locked database (the busy timeout passed) fails every queued
 *   write alike; any other failure may be one bad draft, so each write is
 *   retried in a transaction of its own and only the bad one fails.
 */
export class GroupCommit {
  /** Counters since open; the engine's other write transactions (sweep) add themselves to `transactions`. */
  readonly counters: SqliteEngineStats = { transactions: 0, publishes: 0, largestBatch: 0 };
  /** Writes waiting for the next group commit, in call order. */
  private queue: Op[] = [];
  /** Rooms whose expired rows a read found still stored; deleted by the next write transaction. */
  private trims = new Set<string>();
  private flushTimer: NodeJS.Immediate | undefined;
  /** A commit is due when the current callback returns (EARLY_COMMIT_OPS). */
  private commitDue = false;
  private closed = false;
  private readonly batch: Database.Transaction<(ops: Op[], trims: Set<string>) => BatchResult>;

  /** `emit` fans an event out to this process's watchers of a room; it must not throw, as what it reports is already committed. */
  constructor(
    db: Database.Database,
    private readonly store: CommitStore,
    private readonly watchers: WatchSet,
    private readonly emit: RoomListener,
  ) {
    this.batch = db.transaction((ops: Op[], trims: Set<string>) => applyBatch(store, ops, trims));
  }

  enqueue(op: Op): void {
    this.queue.push(op);
    this.schedule();
  }

  /** A read found expired rows still stored in the room: the next transaction deletes them (none once closed). */
  trim(room: string): void {
    if (this.closed) return;
    this.trims.add(room);
    this.schedule();
  }

  private schedule(): void {
    if (this.queue.length >= EARLY_COMMIT_OPS && !this.commitDue) {
      this.commitDue = true;
      process.nextTick(this.commitEarly);
    }
    this.flushTimer ??= setImmediate(() => {
      this.flushTimer = undefined;
      this.flush();
    });
  }

  private readonly commitEarly = (): void => {
    this.commitDue = false;
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.closed) this.flush();
  };

  /** Commits everything queued in one transaction now, then settles promises and fans out. */
  flush(): void {
    const ops = this.queue;
    const trims = this.trims;
    this.queue = [];
    this.trims = new Set();
    if (ops.length === 0 && trims.size === 0) return;
    this.commitAndSettle(ops, trims);
  }

  /** Commits what is queued (those writes settle) and schedules no more commits; the engine closes the database after. */
  close(): void {
    this.closed = true;
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = undefined;
    }
    this.flush();
  }

  /** One write transaction, then settle(); its retries, one op each, come here too. */
  private commitAndSettle(ops: Op[], trims: Set<string>): void {
    let result: BatchResult;
    try {
      result = this.batch.immediate(ops, trims);
      this.store.keys.committed();
      this.store.log.committed();
    } catch (error) {
      this.store.keys.rolledBack();
      this.store.log.rolledBack();
      // A lock timeout fails every op alike; anything else may be one bad
      // draft, so retry one by one to fail only that one.
      if (ops.length <= 1 || isBusy(error)) {
        for (const op of ops) rejectOp(op, error);
      } else {
        for (const op of ops) this.commitAndSettle([op], new Set());
      }
      return;
    }
    this.settle(ops, result);
  }

  /** After COMMIT: update caches, resolve promises, fan out to watched rooms in sequence order. */
  private settle(ops: Op[], { results, rooms, published }: BatchResult): void {
    this.counters.transactions++;
    this.counters.publishes += published;
    if (published > this.counters.largestBatch) this.counters.largestBatch = published;
    for (const row of rooms) {
      const cached = row.cached;
      if (cached !== undefined && cached.id === row.id) {
        cached.epoch = row.epoch;
        if (row.keyedMs > (cached.keyedMs ?? Number.MIN_SAFE_INTEGER)) cached.keyedMs = row.keyedMs;
        cached.batch = undefined;
      } else {
        const fresh: CachedRoom = { id: row.id, epoch: row.epoch };
        if (row.keyedMs > Number.MIN_SAFE_INTEGER) fresh.keyedMs = row.keyedMs;
        this.store.rooms.set(row.name, fresh);
      }
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.kind === "clear") {
        const position = results[i] as Position;
        op.resolve(position);
        if (position.epoch !== "" && this.watchers.has(op.room)) this.emit(op.room, { type: "reset", position });
        continue;
      }
      const result = results[i] as PublishResult;
      op.waiter.settle(op.index, result);
      const { message } = result;
      if (!result.duplicate && this.watchers.has(message.room))
        this.emit(message.room, { type: "message", message });
    }
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}
