import type {
  Engine,
  EngineMemoryReport,
  EngineOptions,
  HistoryPage,
  HistoryQuery,
  MessageDraft,
  Position,
  PresenceEntry,
  PublishResult,
  RetentionPolicy,
  RoomListener,
  StoredMessage,
} from "./engine.js";
import { newEpoch, newMessageId } from "./ids.js";
import { DedupeKeys, nextKeyId, type RememberedKey } from "./memory-keys.js";
import { RecordArena } from "./memory-arena.js";
import { MessageLog } from "./memory-log.js";
import { rememberedMessage, storedMessage } from "./stored.js";
import { WatchSet } from "./watch-set.js";
import { LocalPresence } from "./local-presence.js";

/**
 * In-memory engine: one process, nothing survives a restart. A restarted
 * broker gets new epochs for every room, so resuming clients learn that
 * their positions are gone (`recovered = false`) instead of being fed holes.
 *
 * A room exists from its first publish (or clear) on; reads of other rooms
 * create nothing, and presence lives beside the rooms, dropped with its
 * last entry, so rooms that were only read or joined leave nothing behind.
 */
export function createMemoryEngine(options: EngineOptions): Engine {
  return new MemoryEngine(options);
}

/**
 * A room: its position and its retained messages (a MessageLog) in one
 * object. At 10,000 rooms each publish finds its room cold in the CPU's
 * caches; a room that was three objects (the state, its log, its sequence
 * as a BigInt) cost three misses where one object costs one.
 */
class RoomState extends MessageLog {
  epoch = newEpoch();
  /** The last sequence given (a number: exact below 2^53, which a room never reaches). */
  sequence = 0;
  /** The slot of the room's newest idempotency key (memory-keys.ts): a room with keys remembered is not forgotten. */
  lastKeySlot = -1;
  /** The room in this epoch, for its idempotency keys (memory-keys.ts): new when it is cleared. */
  keyId = nextKeyId();

  /**
   * `name`: the room's name as first written. Stored messages take this
   * string, not the one each request decoded: a room's retained messages
   * then share one string instead of holding one each (fewer objects for
   * the collector).
   */
  constructor(
    readonly name: string,
    arena: RecordArena,
    historySize: number,
  ) {
    super(arena, historySize);
  }
}

class MemoryEngine implements Engine {
  readonly name = "memory";
  private readonly rooms = new Map<string, RoomState>();
  /** Every room's retained messages, as bytes (memory-arena.ts). */
  private readonly arena = new RecordArena();
  /** Every room's idempotency keys within the window (memory-keys.ts). */
  private readonly keys = new DedupeKeys<RoomState>();
  /** Presence per room; a room's map goes with its last entry. */
  private readonly presence: LocalPresence;
  private readonly acks = new Map<string, Position>();
  /** Acks per room: a room a durable subscriber acknowledged is never idle. */
  private readonly ackedRooms = new Map<string, number>();
  private readonly watchers = new WatchSet();
  private readonly retention: RetentionPolicy;
  private readonly listener: RoomListener;
  private readonly now: () => number;
  private closed = false;

  constructor(options: EngineOptions) {
    this.retention = options.retention;
    this.listener = options.listener;
    this.presence = new LocalPresence(this.watchers, (room, event) => this.listener(room, event));
    this.now = options.now ?? Date.now;
  }

  /** The room, created (with a new epoch) by its first write. */
  private room(name: string): RoomState {
    let room = this.rooms.get(name);
    if (!room) {
      room = new RoomState(name, this.arena, this.retention.historySize);
      this.rooms.set(name, room);
    }
    return room;
  }

  private check(): void {
    if (this.closed) throw new Error("memory engine is closed");
  }

  /** Drops messages older than the TTL at `now` (the room's log keeps at most historySize itself: an append at the limit lets the oldest go). */
  private trim(room: RoomState, now: number): void {
    const { historyTtlMs } = this.retention;
    if (historyTtlMs > 0) room.dropOlderThan(now - historyTtlMs);
  }

  async publish(draft: MessageDraft): Promise<PublishResult> {
    return this.publishNow(draft, this.now());
  }

  /** The batch is stored in one turn: one reading of the clock serves its expiry and trimming. */
  async publishBatch(drafts: MessageDraft[]): Promise<PublishResult[]> {
    const results = new Array<PublishResult>(drafts.length);
    const now = this.now();
    for (let i = 0; i < drafts.length; i++) results[i] = this.publishNow(drafts[i]!, now);
    return results;
  }

  private publishNow(draft: MessageDraft, now: number): PublishResult {
    this.check();
    const room = this.room(draft.room);
    const keyed = this.keyed(draft, now);
    if (keyed) {
      const original = this.keys.find(room, draft.sender, draft.clientMessageId);
      if (original) return { message: this.original(room, draft, original), duplicate: true };
    }
    const sequence = ++room.sequence;
    const id = newMessageId();
    room.append(draft, id, sequence);
    const message = storedMessage(draft, id, room.epoch, BigInt(sequence), room.name);
    this.trim(room, now);
    if (keyed) this.keys.add(room, draft.sender, draft.clientMessageId, message.sequence, message.id, message.timeMs);
    if (this.watchers.has(draft.room)) this.listener(draft.room, { type: "message", message });
    return { message, duplicate: false };
  }

  /** The original of a retried publish: as retained in the log, else what the key remembers (no body). */
  private original(room: RoomState, draft: MessageDraft, key: RememberedKey): StoredMessage {
    const sequence = Number(key.sequence);
    if (room.idOf(sequence) === key.id) return room.message(sequence, room.name, room.epoch);
    return rememberedMessage(draft, key.id, room.epoch, key.sequence, key.timeMs);
  }

  /** Whether `draft` is deduplicated (a window, a client_message_id); if so, first forgets the keys older than the window at `now`. */
  private keyed(draft: MessageDraft, now: number): boolean {
    const window = this.retention.dedupeWindowMs;
    if (window <= 0 || draft.clientMessageId === "") return false;
    this.keys.expire(now - window);
    return true;
  }

  async ackSet(subscriber: string, room: string, position: Position): Promise<void> {
    this.check();
    const key = `${subscriber}\n${room}`;
    const current = this.acks.get(key);
    if (!current) this.ackedRooms.set(room, (this.ackedRooms.get(room) ?? 0) + 1);
    if (!current || current.epoch !== position.epoch || current.sequence < position.sequence)
      this.acks.set(key, { epoch: position.epoch, sequence: position.sequence });
  }

  async ackGet(subscriber: string, room: string): Promise<Position | undefined> {
    this.check();
    return this.acks.get(`${subscriber}\n${room}`);
  }

  async history(name: string, query: HistoryQuery): Promise<HistoryPage> {
    this.check();
    const room = this.rooms.get(name);
    if (!room) return { messages: [], position: { epoch: "", sequence: 0n }, firstSequence: 0n, hasMore: false };
    this.trim(room, this.now());
    const position = { epoch: room.epoch, sequence: BigInt(room.sequence) };
    const first = room.first;
    const firstSequence = BigInt(first);
    if (first === 0) return { messages: [], position, firstSequence, hasMore: false };
    // Sequences are dense: the retained ones are first .. first + size - 1.
    const lo = Math.max(first, Number(query.after) + 1);
    const hi = query.before === 0n ? first + room.size : Math.min(first + room.size, Number(query.before));
    if (hi <= lo) return { messages: [], position, firstSequence, hasMore: false };
    const count = hi - lo;
    const take = Math.min(count, query.limit);
    const from = query.direction === "forward" ? lo : hi - take;
    const messages = new Array<StoredMessage>(take);
    for (let i = 0; i < take; i++) messages[i] = room.message(from + i, room.name, room.epoch);
    return { messages, position, firstSequence, hasMore: count > take };
  }

  async clear(name: string): Promise<Position> {
    this.check();
    const room = this.rooms.get(name);
    if (!room) return { epoch: "", sequence: 0n };
    room.epoch = newEpoch();
    room.keyId = nextKeyId();
    room.sequence = 0;
    room.clear();
    // The room's keys stay until they expire, but no longer match: they hold the old epoch's keyId.
    const position = { epoch: room.epoch, sequence: 0n };
    if (this.watchers.has(name)) this.listener(name, { type: "reset", position });
    return position;
  }

  async position(name: string): Promise<Position> {
    this.check();
    const room = this.rooms.get(name);
    return room ? { epoch: room.epoch, sequence: BigInt(room.sequence) } : { epoch: "", sequence: 0n };
  }

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

  async sweep(): Promise<number> {
    this.check();
    let forgotten = 0;
    const now = this.now();
    this.keys.expire(now - this.retention.dedupeWindowMs);
    for (const [name, room] of this.rooms) {
      this.trim(room, now);
      if (room.size > 0 || this.watchers.has(name) || this.presence.has(name) || this.ackedRooms.has(name)) continue;
      if (this.keys.remembers(room)) continue;
      room.dispose();
      this.rooms.delete(name);
      forgotten++;
    }
    // Chunks that trimmed or forgotten rooms left mostly empty go back.
    this.arena.compact();
    return forgotten;
  }

  memory(): EngineMemoryReport {
    const { allocated, live } = this.arena.stats;
    return { history: { allocatedBytes: allocated, liveBytes: live }, idempotencyKeys: this.keys.size, idempotencyKeyBytes: this.keys.bytes };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
