import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type {
  Engine,
  EngineMemoryReport,
  EngineStorageReport,
  EngineOptions,
  HistoryPage,
  HistoryQuery,
  MessageDraft,
  Position,
  PresenceEntry,
  PublishResult,
  RetentionPolicy,
  RoomListener,
} from "./engine.js";
import { WatchSet } from "./watch-set.js";
import { LocalPresence } from "./local-presence.js";
import { lockDatabase, type DatabaseLock } from "./sqlite-lock.js";
import { IdempotencyKeys } from "./sqlite-idempotency.js";
import { SqliteRetention } from "./sqlite-retention.js";
import { RowWriter } from "./sqlite-rows.js";
import { MESSAGE_COLUMNS, prepareStatements, readMessages, type RoomRef, type RoomRow, type Statements } from "./sqlite-statements.js";
import type { LogCounters, LogTuning, MessageLog } from "./sqlite-log.js";
import { openSchema } from "./sqlite-open.js";
import { storageReport } from "./sqlite-report.js";
import { BatchWaiter, OneWaiter, toMessage, type CachedRoom } from "./sqlite-batch.js";
import { GroupCommit, type SqliteEngineStats } from "./sqlite-commit.js";
import { Checkpointer, type CheckpointOptions } from "./sqlite-checkpoint.js";

export type { SqliteEngineStats };

/**
 * Pages of WAL after which it starts over from its beginning once copied into
 * the database file (SQLite's default checkpoint threshold: 1,000, 4 MiB).
 * The copying itself runs in a worker thread (sqlite-checkpoint.ts); this is
 * also the threshold of SQLite's own checkpoint at commit, used where there
 * is no worker. Chosen under schema version 5, when each publish dirtied a
 * page of the (room, sequence) index of its own: with 10,000 rooms 1,000
 * pages copied most of them again every few hundred publishes (engine CPU
 * per publish, 10,000 rooms over 1: 1.15x at 10,000 pages, 1.31x at 1,000).
 * Crash recovery replays at most this much plus what one checkpoint
 * interval writes.
 */
const WAL_CHECKPOINT_PAGES = 10_000;

/**
 * SQLite's page cache, KiB (PRAGMA cache_size; SQLite's own default, where
 * better-sqlite3 sets 16,000). Every commit ends by scanning the cache's
 * whole page table (pcache1TruncateUnsafe, 7-9% of the CPU profile at 10,000
 * rooms with 16 MB), so a commit costs more the more pages are cached
 * (schema version 5, 10,000 full rooms, the engine alone: 23.7-25.8 µs per
 * publish at 2 MB against 28.8-32.4 µs at 16 MB; one room unchanged).
 */
const PAGE_CACHE_KIB = 2_000;

/**
 * Durable embedded engine on better-sqlite3: one broker process, history and
 * room epochs survive restarts, so clients resume across a broker restart
 * with `recovered = true`.
 *
 * - Group commit (sqlite-commit.ts): every publish issued in one event-loop
 *   turn is committed in one write transaction; each publish promise
 *   resolves only after that transaction committed, and watchers get the
 *   messages right after the commit, in sequence order.
 * - Messages are a log across rooms, each room's found through blocks of
 *   positions (sqlite-log.ts); a room's last sequence is kept in memory from
 *   the open on: only this process writes the file. Fan-out, too, is only to this
 *   process: this engine is for a single broker node, and a second engine on
 *   the same file is refused (sqlite-lock.ts).
 * - Retention: size and TTL are enforced logically on read (a read never
 *   returns a message retention no longer keeps) and physically on publish,
 *   a full room's oldest rows in groups (sqlite-retention.ts); rows a read
 *   finds due are deleted by the next write transaction.
 * - Presence lives in memory, like the memory engine: sessions do not survive
 *   a broker restart, so persisted entries would only be ghosts.
 */
export interface SqliteEngineOptions extends EngineOptions {
  /** Path of the database file; ":memory:" allowed for tests. */
  path: string;
  /**
   * "normal" (default: WAL + synchronous=NORMAL: a process crash loses nothing
   * committed; a power loss may lose the last transactions) or "full"
   * (synchronous=FULL: survives power loss too, slower).
   */
  synchronous?: "normal" | "full";
  /** How long a statement waits for a lock held by another connection (default 5000 ms). */
  busyTimeoutMs?: number;
  /** WAL checkpoints in a worker thread (sqlite-checkpoint.ts); false: SQLite's own, at commit. On-disk databases only. */
  checkpoint?: CheckpointOptions | false;
  /** The message log's sizes (sqlite-log.ts), for tests. */
  logTuning?: Partial<LogTuning>;
}

export interface SqliteEngine extends Engine {
  readonly name: "sqlite";
  /** Counters since open, for tests and metrics. */
  stats(): SqliteEngineStats & LogCounters;
  /** The checkpoint worker, for tests (undefined: none, SQLite checkpoints at commit). */
  readonly checkpointer: Checkpointer | undefined;
}

export function createSqliteEngine(options: SqliteEngineOptions): SqliteEngine {
  return new SqliteEngineImpl(options);
}

class SqliteEngineImpl implements SqliteEngine {
  readonly name = "sqlite" as const;
  private readonly db: Database.Database;
  private readonly lock: DatabaseLock | undefined;
  readonly checkpointer: Checkpointer | undefined;
  /** The database file (undefined: in memory). */
  private readonly path: string | undefined;
  private readonly retention: RetentionPolicy;
  private readonly listener: RoomListener;
  private readonly now: () => number;
  private closed = false;

  /** Rooms known to exist in the file, as the last committed transaction left them (see CachedRoom); sweep() forgets what it deletes. */
  private readonly rooms = new Map<string, CachedRoom>();
  private readonly watchers = new WatchSet();
  private readonly presence: LocalPresence;

  private readonly sql: Statements;
  /** Idempotency keys: a log in SQLite, looked up through an index in memory (sqlite-idempotency.ts). */
  private readonly keys: IdempotencyKeys;
  /** Where the messages are (sqlite-log.ts). */
  private readonly log: MessageLog;
  /** What retention keeps (sqlite-retention.ts). */
  private readonly kept: SqliteRetention;
  /** The write queue and its transactions (sqlite-commit.ts). */
  private readonly commits: GroupCommit;
  private readonly readPage: Database.Transaction<
    (name: string, ref: RoomRef, query: HistoryQuery) => { page: HistoryPage; trimDue: boolean }
  >;

  constructor(options: SqliteEngineOptions) {
    this.retention = options.retention;
    this.listener = options.listener;
    this.presence = new LocalPresence(this.watchers, this.emit);
    this.now = options.now ?? Date.now;
    if (!(this.retention.historySize >= 1)) throw new RangeError("retention.historySize must be >= 1");

    const onDisk = options.path !== ":memory:" && options.path !== "" && !options.path.startsWith("file:");
    this.path = onDisk ? options.path : undefined;
    if (onDisk) {
      mkdirSync(dirname(options.path), { recursive: true });
      this.lock = lockDatabase(options.path);
    }
    let db: Database.Database;
    try {
      db = new Database(options.path);
    } catch (error) {
      this.lock?.release();
      throw error;
    }
    this.db = db;
    try {
      db.defaultSafeIntegers(true);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      db.pragma("journal_mode = WAL"); // ":memory:" stays "memory", which is fine for tests
      // The worker's connection checkpoints with the same setting (its fsyncs follow it).
      const synchronous = options.synchronous === "full" ? "FULL" : "NORMAL";
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      this.log = openSchema(db, options.path, options.logTuning);

      this.sql = prepareStatements(db);
      this.keys = new IdempotencyKeys(db, this.retention.dedupeWindowMs, this.now);
      this.kept = new SqliteRetention(this.sql, this.log, this.retention, this.now);
      const messages = new RowWriter(db, `messages (position, log_id, ${MESSAGE_COLUMNS})`, 11);
      const store = { sql: this.sql, messages, rooms: this.rooms, keys: this.keys, log: this.log, kept: this.kept, dedupeWindowMs: this.retention.dedupeWindowMs, now: this.now };
      this.commits = new GroupCommit(db, store, this.watchers, this.emit);
      this.readPage = db.transaction((name: string, ref: RoomRef, query: HistoryQuery) => this.page(name, ref, query));
      if (onDisk && options.checkpoint !== false)
        this.checkpointer = new Checkpointer(db, options.path, synchronous, {
          resetFrames: WAL_CHECKPOINT_PAGES,
          ...options.checkpoint,
        });
    } catch (error) {
      db.close();
      this.lock?.release();
      throw error;
    }
  }

  stats(): SqliteEngineStats & LogCounters {
    return { ...this.commits.counters, ...this.log.counters };
  }

  storage(): EngineStorageReport {
    return storageReport(this.path, this.commits.counters, this.log, this.checkpointer);
  }

  private check(): void {
    if (this.closed) throw new Error("sqlite engine is closed");
  }

  // ---- writes -------------------------------------------------------------

  async publish(draft: MessageDraft): Promise<PublishResult> {
    this.check();
    return new Promise<PublishResult>((resolve, reject) => this.commits.enqueue({ kind: "publish", draft, waiter: new OneWaiter(resolve, reject), index: 0 }));
  }

  /** One promise for a batch; the group commit takes the drafts in order like separate publishes. */
  async publishBatch(drafts: MessageDraft[]): Promise<PublishResult[]> {
    this.check();
    if (drafts.length === 0) return [];
    return new Promise<PublishResult[]>((resolve, reject) => {
      const waiter = new BatchWaiter(drafts.length, resolve, reject);
      for (let index = 0; index < drafts.length; index++) this.commits.enqueue({ kind: "publish", draft: drafts[index]!, waiter, index });
    });
  }

  async clear(room: string): Promise<Position> {
    this.check();
    return new Promise<Position>((resolve, reject) => this.commits.enqueue({ kind: "clear", room, resolve, reject }));
  }

  // ---- acks ---------------------------------------------------------------

  /** One small autocommit write: in WAL mode it needs no fsync with synchronous=NORMAL. */
  async ackSet(subscriber: string, room: string, position: Position): Promise<void> {
    this.check();
    this.sql.upsertAck.run(subscriber, room, position.epoch, position.sequence);
  }

  async ackGet(subscriber: string, room: string): Promise<Position | undefined> {
    this.check();
    const row = this.sql.selectAck.get(subscriber, room);
    return row ? { epoch: row.epoch, sequence: row.sequence } : undefined;
  }

  // ---- reads --------------------------------------------------------------

  /** The room's id and epoch, or undefined for a room never written (reads create nothing). */
  private room(name: string): RoomRef | undefined {
    this.check();
    let ref = this.rooms.get(name);
    if (ref) return ref;
    const row = this.sql.selectRoom.get(name);
    if (!row) return undefined;
    ref = { id: row.id, epoch: row.epoch };
    this.rooms.set(name, ref);
    return ref;
  }

  async position(name: string): Promise<Position> {
    const room = this.room(name);
    return room ? { epoch: room.epoch, sequence: this.log.lastSequence(room.id) } : { epoch: "", sequence: 0n };
  }

  async history(name: string, query: HistoryQuery): Promise<HistoryPage> {
    const ref = this.room(name);
    if (!ref) return { messages: [], position: { epoch: "", sequence: 0n }, firstSequence: 0n, hasMore: false };
    // One read transaction: a consistent snapshot even if another connection writes.
    const { page, trimDue } = this.readPage.deferred(name, ref, query);
    if (trimDue) this.commits.trim(name);
    return page;
  }

  /** Inside a read transaction. Same semantics as the memory engine's history(). */
  private page(name: string, ref: RoomRef, query: HistoryQuery): { page: HistoryPage; trimDue: boolean } {
    const sequence = this.log.lastSequence(ref.id);
    const room: RoomRow = { ...ref, sequence };
    const position = { epoch: room.epoch, sequence };
    const first = this.kept.firstRetained(room)?.sequence ?? null;
    // Rows retention no longer keeps, as many as a write would delete (TTL passed since the last publish, or a smaller historySize since a restart).
    const trimDue = this.kept.dueForTrim(room);
    const firstSequence = first ?? 0n;
    const empty = { page: { messages: [], position, firstSequence, hasMore: false }, trimDue };
    if (first === null) return empty;
    const lo = query.after + 1n > first ? query.after + 1n : first;
    const hi = query.before === 0n || query.before - 1n > sequence ? sequence : query.before - 1n;
    if (hi < lo) return empty;
    const limit = Math.max(1, Math.floor(query.limit));
    // One more than the limit tells whether there is more.
    const span = BigInt(limit);
    const forward = query.direction === "forward";
    const [from, to] = forward ? [lo, hi < lo + span ? hi : lo + span] : [hi - span > lo ? hi - span : lo, hi];
    const rows = readMessages(this.sql, this.log.positions(room.id, from, to), this.log.logId(room.id), from, to);
    const messages = rows.map((row) => toMessage(name, room.epoch, row));
    const hasMore = messages.length > limit;
    if (hasMore) forward ? messages.pop() : messages.shift();
    return { page: { messages, position, firstSequence, hasMore }, trimDue };
  }

  // ---- idle rooms ----------------------------------------------------------------

  /** Commits what is queued first, then forgets idle rooms in one write transaction. */
  async sweep(): Promise<number> {
    this.check();
    this.commits.flush();
    const dedupeFrom = this.retention.dedupeWindowMs > 0 ? this.now() - this.retention.dedupeWindowMs : Number.MAX_SAFE_INTEGER;
    let forgotten: string[];
    try {
      forgotten = this.db
      .transaction(() => {
        const names: string[] = [];
        const cutoff = this.kept.ttlCutoff();
        const acked = new Set(this.sql.ackedRooms.all());
        this.log.begin();
        for (const { id, name } of this.sql.allRooms.all()) {
          if (acked.has(name) || this.watchers.has(name) || this.presence.has(name) || this.hasLiveKey(id, name, dedupeFrom)) continue;
          // Idle: it stores no message younger than the TTL (its newest is its youngest: the broker's clock).
          const last = this.log.lastSequence(id);
          if (this.log.floor(id) <= last && Number(this.sql.selectTime.get(this.log.position(id, last)) ?? Number.MIN_SAFE_INTEGER) >= cutoff) continue;
          this.log.forget(id);
          this.sql.deleteRoom.run(id);
          this.keys.forgetRoom(id);
          names.push(name);
        }
        return names;
      })
      .immediate();
      this.log.committed();
    } catch (error) {
      this.log.rolledBack();
      throw error;
    }
    for (const name of forgotten) this.rooms.delete(name);
    if (forgotten.length > 0) this.commits.counters.transactions++;
    return forgotten.length;
  }

  /** Whether a key recorded at or after `from` may be live in the room: recorded by this process (the cache), or found at open (IdempotencyKeys). */
  private hasLiveKey(id: bigint, name: string, from: number): boolean {
    return (this.rooms.get(name)?.keyedMs ?? Number.MIN_SAFE_INTEGER) >= from || this.keys.hasLiveKey(id, from);
  }

  // ---- fan-out and presence -------------------------------------------------

  /** Fans an event out to the broker; never throws. */
  private readonly emit: RoomListener = (room, event) => {
    try {
      this.listener(room, event);
    } catch (error) {
      // The message is committed: failing its publish would invite a duplicate retry.
      process.emitWarning(`seqcast sqlite engine: room listener threw: ${String((error as Error)?.stack ?? error)}`);
    }
  };

  async watch(name: string): Promise<void> {
    this.check();
    this.watchers.add(name);
  }

  async unwatch(name: string): Promise<void> {
    this.watchers.remove(name);
  }

  async presenceSet(name: string, entry: PresenceEntry, kind: "join" | "update"): Promise<void> {
    this.check();
    this.presence.set(name, entry, kind);
  }

  async presenceRemove(name: string, sessionId: string): Promise<boolean> {
    this.check();
    return this.presence.remove(name, sessionId);
  }

  async presenceList(name: string): Promise<PresenceEntry[]> {
    this.check();
    return this.presence.list(name);
  }

  // ---- lifecycle -------------------------------------------------------------

  memory(): EngineMemoryReport {
    return this.keys.memory();
  }

  /** Commits what is queued (those publishes resolve), then closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.commits.close();
      // The worker's connection closes first: the engine's, the last, then copies what is left and removes the WAL.
      await this.checkpointer?.close();
    } finally {
      this.db.close();
      this.lock?.release();
    }
  }
}
