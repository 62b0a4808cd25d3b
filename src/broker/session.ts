import type { Position, PresenceEntry, RoomEvent, StoredMessage } from "../engine/engine.js";
import { BrokerError } from "./errors.js";
import type { EventSink, FlushScheduler } from "./outbox.js";
import type { MessageFilter } from "./filter.js";
import type { Identity } from "./identity.js";
import type { PresenceChangesEvent } from "./presence-batches.js";
import type { BrokerStats } from "./stats.js";
import { compactDependencies, type CompactDependencies } from "./compact-dependencies.js";
import type { QueueBudget, QueueHolder } from "./queue-budget.js";
import type { ReaderBacklog } from "./reader-backlog.js";
import { messageEvent } from "./queued-events.js";
import { SessionQueue, type QueueLimits } from "./session-queue.js";

/** What a session's stream carries, before any wire encoding. */
export type SessionEvent =
  | { type: "session_started"; sessionId: string; user: string; heartbeatIntervalMs: number }
  | {
      type: "subscribed";
      room: string;
      position: Position;
      recovered: boolean;
      resumedFrom?: Position;
      pattern?: string;
      /** The room's presence as of this event; later presence events change it. */
      present?: PresenceEntry[];
    }
  | {
      type: "message";
      message: StoredMessage;
      /** Its dependencies as refs into those of the message sent before it (SubscribeRequest.compact_dependencies). */
      compact?: CompactDependencies;
    }
  | { type: "presence"; room: string; kind: "join" | "leave" | "update"; entry: PresenceEntry }
  | PresenceChangesEvent
  | { type: "heartbeat"; timeMs: number }
  | { type: "unsubscribed"; room: string }
  | { type: "reset"; room: string; position: Position }
  | { type: "watermark"; room: string; position: Position; after: bigint };

/**
 * A room as held by one session. While `joining`, live events are parked in
 * `pending` so the replay from history and the live stream meet without a
 * hole or a duplicate; `lastSequence` is the newest message already queued.
 */
export interface RoomMembership {
  room: string;
  joining: boolean;
  pending: RoomEvent[];
  lastSequence: bigint;
  /** The room's epoch as announced in `subscribed`; "" until then, and while the room has no lineage yet (adopted from its first message). */
  epoch: string;
  /** Durable sessions: messages sent and not yet acknowledged, oldest first. */
  unacked: Array<{ message: StoredMessage; sentAtMs: number }>;
  /** Content-based routing for this room, if the subscription has a filter. */
  filter?: MessageFilter;
  /** Newest sequence the filter removed since the last message sent (0n: none). */
  filteredThrough: bigint;
  /** The last sequence sent on the stream for this room, or where the stream started. */
  lastSent: bigint;
  /** With compact dependencies: the message last sent on the stream for this room, if it was the one at lastSent. */
  lastSentMessage?: StoredMessage;
  /** Set for a room this session holds because a pattern subscription matched it. */
  viaPattern?: string;
  /** First presence change (PresenceBatches seq) this membership gets in batches: the one after it went live. */
  presenceFrom?: number;
}

/** Unacknowledged deliveries remembered per room; older ones are still replayed from history on resume. */
const MAX_UNACKED_PER_ROOM = 10_000;

/** What every session of one broker shares (the broker builds it once). */
export interface SessionHost {
  readonly limits: QueueLimits;
  /** The broker's counters. */
  readonly counters: BrokerStats;
  readonly scheduler: FlushScheduler;
  /** The broker-wide bound on queued bytes, which each session reports to. */
  readonly budget: QueueBudget;
  /** Where a session says it fell behind (half its queue used) and caught up, for publishers to wait. */
  readonly backlog: ReaderBacklog;
  /**
   * Called once when a session cut itself off (slow consumer, or the budget
   * chose it): the broker then removes it everywhere at once (presence, room
   * index), without waiting for the transport to notice.
   */
  onCutOff(session: Session): void;
}

/**
 * One live Subscribe stream: identity, rooms held, and which of their
 * events it is sent (live or parked while joining, filtered, acknowledged).
 * What waits for the stream, its bounds and its end are its `queue`
 * (session-queue.ts): the broker queues there directly, with no call of
 * its own per event; what transports, tests and the budget call on a
 * session is passed on to it.
 */
export class Session implements QueueHolder {
  readonly rooms = new Map<string, RoomMembership>();
  /** Pattern subscriptions and their filters. */
  readonly patterns = new Map<string, { filter?: MessageFilter }>();
  /** The events on their way to this session's stream. */
  readonly queue: SessionQueue;
  /** Join time, for presence entries. */
  readonly startedAtMs: number;
  /** The broker's counters, shared by every session. */
  private readonly counters: BrokerStats;

  readonly user: string;
  /** Key of this session's presence entries: its id, or the id of the session it took over after a reconnect. */
  presenceId: string;
  presenceState: "online" | "away" = "online";
  /** Send dependencies as refs into the previous message's (SubscribeRequest.compact_dependencies). */
  compactDependencies = false;
  stateSinceMs: number;
  lastActiveMs: number;
  /** Rooms whose presence this session took over from its predecessor (until its first join settles). */
  adopted = new Set<string>();

  constructor(
    readonly id: string,
    readonly identity: Identity,
    readonly device: string,
    nowMs: number,
    /** "user/name" of a durable subscriber, or undefined. */
    readonly durableKey: string | undefined,
    host: SessionHost,
  ) {
    this.user = identity.user;
    this.presenceId = id;
    this.stateSinceMs = nowMs;
    this.lastActiveMs = nowMs;
    this.startedAtMs = nowMs;
    this.counters = host.counters;
    this.queue = new SessionQueue(host.limits, nowMs, host.counters, host.scheduler, host.budget, host.backlog, this, () => host.onCutOff(this));
  }

  get isEnded(): boolean {
    return this.queue.isEnded;
  }

  /** How the session ended: undefined while live or after a clean end. */
  get error(): BrokerError | undefined {
    return this.queue.error;
  }

  /** Estimated bytes queued and not yet handed to the stream (QueueHolder: the budget's measure). */
  get pendingBytes(): number {
    return this.queue.pendingBytes;
  }

  /** Ends the stream with `error`, dropping its queue (QueueHolder: the budget's cut). */
  cutOff(error: BrokerError): void {
    this.queue.cutOff(error);
  }

  /** Ends the stream (SessionQueue.end: a clean end drains, an error drops the queue unless `drain`). */
  end(error?: BrokerError, drain?: boolean): void {
    this.queue.end(error, drain);
  }

  /** Starts delivering to `sink` (the transport's stream writer). */
  attach(sink: EventSink): void {
    this.queue.attach(sink);
  }

  /** The sink can take more again (its stream drained). */
  resume(): void {
    this.queue.resume();
  }

  /** Batches of queued events for transports that pull (SessionQueue.batches). */
  batches(maxBatch: number, onEnd?: (error: BrokerError | undefined) => void): AsyncGenerator<SessionEvent[]> {
    return this.queue.batches(maxBatch, onEnd);
  }

  /** Takes every queued event, oldest first (tests read a session's stream this way). */
  drain(): SessionEvent[] {
    return this.queue.drain();
  }

  /**
   * Route an event of a room that matched one of this session's patterns.
   * The first message of a room not held yet makes it held (announced by a
   * `subscribed` event); rooms held by name get their events from the room
   * index instead, so nothing arrives twice.
   */
  deliverViaPattern(room: string, pattern: string, event: RoomEvent, nowMs: number, mayRead: (room: string) => boolean): void {
    let membership = this.rooms.get(room);
    if (!membership) {
      if (event.type !== "message" || !mayRead(room)) return;
      const before = event.message.sequence - 1n;
      membership = {
        room,
        joining: false,
        pending: [],
        lastSequence: before,
        epoch: event.message.epoch,
        unacked: [],
        filter: this.patterns.get(pattern)?.filter,
        filteredThrough: 0n,
        lastSent: before,
        viaPattern: pattern,
      };
      this.rooms.set(room, membership);
      this.queue.push(
        { type: "subscribed", room, position: { epoch: event.message.epoch, sequence: before }, recovered: false, pattern },
        nowMs,
      );
    } else if (membership.viaPattern === undefined) {
      return;
    }
    if (event.type === "presence") return;
    this.deliver(room, event, nowMs);
  }

  /** Route an engine event of one of this session's rooms. */
  deliver(room: string, event: RoomEvent, nowMs: number): void {
    const membership = this.rooms.get(room);
    if (!membership) return;
    if (membership.joining) {
      // Parked while the room's replay runs; a replay the stream cannot follow while the room is busy is a slow consumer too.
      if (membership.pending.length >= this.queue.limits.events) return this.queue.cutOffSlow("while catching up");
      membership.pending.push(event);
      return;
    }
    if (event.type === "message") {
      // A room joined before it had a lineage (epoch ""): its first epoch is adopted, nothing was missed (it starts at 1).
      if (membership.epoch === "") membership.epoch = event.message.epoch;
      if (event.message.sequence <= membership.lastSequence) return;
      membership.lastSequence = event.message.sequence;
      this.sendMessage(membership, event.message, nowMs);
    } else if (event.type === "reset") {
      // A new lineage: sequences restart, nothing of the old one is owed.
      membership.epoch = event.position.epoch;
      membership.lastSequence = event.position.sequence;
      membership.unacked = [];
      membership.filteredThrough = 0n;
      membership.lastSent = event.position.sequence;
      membership.lastSentMessage = undefined;
      this.queue.push({ type: "reset", room, position: event.position }, nowMs);
    } else {
      this.queue.push({ type: "presence", room, kind: event.kind, entry: event.entry }, nowMs);
    }
  }

  /** This session's entry in the presence of each room it holds by name. */
  presenceEntry(): PresenceEntry {
    return {
      user: this.user,
      sessionId: this.presenceId,
      device: this.device,
      state: this.presenceState,
      joinedAtMs: this.startedAtMs,
      sinceMs: this.stateSinceMs,
      lastActiveMs: this.lastActiveMs,
    };
  }

  /** Rooms whose presence the session holds: by name, not inboxes, not pattern matches. */
  presenceRooms(): string[] {
    return [...this.rooms.values()].filter((m) => !m.viaPattern && !m.room.startsWith("@")).map((m) => m.room);
  }

  /**
   * Queue a message of a held room, unless its filter removes it: then only
   * the watermark moves, and it is sent right before the next message so the
   * client knows the sequences in between are not missing. Durable sessions
   * remember what they sent until it is acknowledged.
   */
  sendMessage(membership: RoomMembership, message: StoredMessage, nowMs: number): void {
    if (membership.filter) {
      const verdict = membership.filter(message);
      if (verdict !== "match") {
        if (verdict === "error") this.counters.filterErrors++;
        this.counters.filtered++;
        membership.filteredThrough = message.sequence;
        return;
      }
      if (membership.filteredThrough > membership.lastSent) {
        this.queue.push(
          {
            type: "watermark",
            room: membership.room,
            position: { epoch: message.epoch, sequence: membership.filteredThrough },
            after: membership.lastSent,
          },
          nowMs,
        );
      }
      membership.filteredThrough = 0n;
    }
    const previous = membership.lastSentMessage;
    membership.lastSent = message.sequence;
    let compact: CompactDependencies | undefined;
    if (this.compactDependencies) {
      membership.lastSentMessage = message;
      // Only right after the message before it in the room: the client has that one's list.
      if (message.dependencies && previous) compact = compactDependencies(message, previous);
    }
    this.queue.push(messageEvent(message, compact), nowMs);
    if (this.durableKey === undefined) return;
    membership.unacked.push({ message, sentAtMs: nowMs });
    if (membership.unacked.length > MAX_UNACKED_PER_ROOM) membership.unacked.shift();
  }

  /** Forget deliveries up to `sequence`. */
  acknowledge(membership: RoomMembership, sequence: bigint): void {
    // Ordered by send time, not sequence (redeliveries move to the end): filter.
    if (membership.unacked.some((e) => e.message.sequence <= sequence))
      membership.unacked = membership.unacked.filter((e) => e.message.sequence > sequence);
  }

  /** Send again what was not acknowledged within the deadline (the client drops duplicates). */
  redeliver(olderThanMs: number, nowMs: number): number {
    let count = 0;
    for (const membership of this.rooms.values()) {
      let due = 0;
      for (const entry of membership.unacked) {
        if (entry.sentAtMs > olderThanMs) break;
        this.queue.push({ type: "message", message: entry.message, compact: undefined }, nowMs);
        entry.sentAtMs = nowMs;
        due++;
      }
      // The list stays ordered by send time: what was just sent goes last.
      if (due > 0 && due < membership.unacked.length) membership.unacked.push(...membership.unacked.splice(0, due));
      count += due;
    }
    return count;
  }
}
