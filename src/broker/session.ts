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
import { eventBytes, messageEvent } from "./queued-events.js";

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

/**
 * One live Subscribe stream: identity, rooms held, and a bounded queue of
 * events the transport drains in batches.
 */
export class Session implements QueueHolder {
  readonly rooms = new Map<string, RoomMembership>();
  /** Pattern subscriptions and their filters. */
  readonly patterns = new Map<string, { filter?: MessageFilter }>();
  private queue: SessionEvent[] = [];
  /** Estimated bytes of the queued events. */
  private queuedBytes = 0;
  /** Message events in the queue, counted once per flush as sent (or as dropped). */
  private queuedMessages = 0;
  private sink: EventSink | undefined;
  /** Told the backlog it fell behind, and has not handed its queue over since. */
  private behind = false;
  /** In the scheduler's list for the next flush. */
  private scheduled = false;
  /** The sink said it cannot take more until resume(). */
  private paused = false;
  private endError: BrokerError | undefined;
  private ended = false;
  private sinkEnded = false;
  /** Broker clock of the last event queued, for idle heartbeats. */
  lastActivityMs: number;
  /** Join time, for presence entries. */
  readonly startedAtMs: number;

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
    private readonly limits: { events: number; bytes: number },
    nowMs: number,
    /** "user/name" of a durable subscriber, or undefined. */
    readonly durableKey: string | undefined,
    /** The broker's counters, shared by every session. */
    private readonly counters: BrokerStats,
    private readonly scheduler: FlushScheduler,
    /** The broker-wide bound on queued bytes, which this session reports to. */
    private readonly budget: QueueBudget,
    /** Where this session says it fell behind (half its queue used) and caught up, for publishers to wait. */
    private readonly backlog: ReaderBacklog,
    /**
     * Called once when the session cut itself off (slow consumer, or the
     * budget chose it): the broker then removes it everywhere at once
     * (presence, room index), without waiting for the transport to notice.
     */
    private readonly onCutOff: (session: Session) => void,
  ) {
    this.user = identity.user;
    this.presenceId = id;
    this.stateSinceMs = nowMs;
    this.lastActiveMs = nowMs;
    this.lastActivityMs = nowMs;
    this.startedAtMs = nowMs;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Queue one event; a consumer that fell too far behind (events or bytes) ends the session. */
  push(event: SessionEvent, nowMs: number): void {
    if (this.ended) return;
    const bytes = eventBytes(event);
    if (this.queue.length >= this.limits.events || this.queuedBytes + bytes > this.limits.bytes) {
      this.cutOff(slowConsumer(this.queue.length, this.queuedBytes));
      return;
    }
    this.queue.push(event);
    this.queuedBytes += bytes;
    if (event.type === "message") this.queuedMessages++;
    if (!this.behind && (this.queue.length >= this.limits.events / 2 || this.queuedBytes >= this.limits.bytes / 2)) {
      this.behind = true;
      this.backlog.fellBehind(this);
    }
    this.lastActivityMs = nowMs;
    // May cut this session off (or others) when the broker's total is exceeded.
    this.budget.add(bytes);
    if (this.ended) return;
    if (!this.scheduled && !this.paused && this.sink) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
  }

  /** Starts delivering to `sink` (the transport's stream writer). */
  attach(sink: EventSink): void {
    this.sink = sink;
    if (this.ended) this.finish();
    else if (this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
  }

  /** Called by the scheduler: hands the queued events to the sink as one batch. */
  flush(): void {
    this.scheduled = false;
    if (!this.sink || this.paused || this.sinkEnded || this.queue.length === 0) return;
    const events = this.take();
    this.paused = !this.sink.write(events);
    if (!this.paused) this.wakeProducers();
  }

  /** The sink can take more again (its stream drained). */
  resume(): void {
    this.paused = false;
    if (this.queue.length > 0 && !this.scheduled && !this.sinkEnded) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
    if (!this.crowded) this.wakeProducers();
  }

  /** Half the queue's limit is used (events or bytes): a producer that can wait (a replay) should. */
  get crowded(): boolean {
    return this.queue.length >= this.limits.events / 2 || this.queuedBytes >= this.limits.bytes / 2 || this.paused;
  }

  /** Resolves once the stream took what was queued (or the session ended). */
  roomToQueue(): Promise<void> {
    if (this.ended || !this.crowded) return Promise.resolve();
    return new Promise<void>((resolve) => this.producers.push(resolve));
  }

  private producers: Array<() => void> = [];

  private wakeProducers(): void {
    if (this.producers.length === 0) return;
    const waiting = this.producers;
    this.producers = [];
    for (const wake of waiting) wake();
  }

  /** Estimated bytes queued and not yet handed to the sink. */
  get pendingBytes(): number {
    return this.queuedBytes;
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
      this.push(
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
      if (membership.pending.length >= this.limits.events) return this.cutOff(slowConsumer(this.queue.length, this.queuedBytes, "while catching up"));
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
      this.push({ type: "reset", room, position: event.position }, nowMs);
    } else {
      this.push({ type: "presence", room, kind: event.kind, entry: event.entry }, nowMs);
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
        this.push(
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
    this.push(messageEvent(message, compact), nowMs);
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
        this.push({ type: "message", message: entry.message, compact: undefined }, nowMs);
        entry.sentAtMs = nowMs;
        due++;
      }
      // The list stays ordered by send time: what was just sent goes last.
      if (due > 0 && due < membership.unacked.length) membership.unacked.push(...membership.unacked.splice(0, due));
      count += due;
    }
    return count;
  }

  /** Ends the stream with `error` (a slow consumer), dropping its queue, and has the broker remove it at once. */
  cutOff(error: BrokerError): void {
    if (this.ended) return;
    this.counters.slowConsumers++;
    this.end(error, false);
    // Not from inside the fan-out or the budget's loop that got here.
    queueMicrotask(() => this.onCutOff(this));
  }

  /**
   * End the stream: cleanly (no error) or with the error given. With `drain`
   * the events already queued go out before the error (shutdown); without it
   * they are dropped (a slow consumer is not fed its backlog). Idempotent.
   */
  end(error?: BrokerError, drain = error === undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    if (!drain) {
      this.counters.dropped += this.queuedMessages;
      this.drain();
    }
    if (this.sink) this.finish();
    this.wakeProducers();
  }

  /** Hands what is left (a draining end) and the end to the sink, once. */
  private finish(): void {
    if (this.sinkEnded || !this.sink) return;
    this.sinkEnded = true;
    // Shutdown drains even a paused stream: the transport buffers the rest before its trailers.
    if (this.queue.length > 0) this.sink.write(this.take());
    this.sink.end(this.endError);
  }

  /** Takes every queued event, oldest first (the stream writer, or a test, consumes them). */
  drain(): SessionEvent[] {
    const events = this.queue;
    this.queue = [];
    if (this.queuedBytes > 0) this.budget.release(this.queuedBytes);
    this.queuedBytes = 0;
    this.queuedMessages = 0;
    if (this.behind) {
      this.behind = false;
      this.backlog.caughtUp(this);
    }
    return events;
  }

  /** Takes every queued event for the sink, counting its messages as sent. */
  private take(): SessionEvent[] {
    this.counters.sent += this.queuedMessages;
    return this.drain();
  }

  /** How the session ended: undefined while live or after a clean end. */
  get error(): BrokerError | undefined {
    return this.endError;
  }

  /**
   * Batches of queued events, oldest first, at most `maxBatch` each, until
   * the session ends (for transports that pull, like connect-node's
   * streaming handlers; see end() for what happens to the queue then).
   * `onEnd` hears of the end as it happens, before the consumer pulls again.
   */
  async *batches(maxBatch: number, onEnd?: (error: BrokerError | undefined) => void): AsyncGenerator<SessionEvent[]> {
    const ready: SessionEvent[][] = [];
    let done = false;
    let wake: (() => void) | undefined;
    this.attach({
      write: (events) => {
        ready.push(events);
        wake?.();
        // One batch at a time: the next flush waits until this one was yielded.
        return false;
      },
      end: (error) => {
        done = true;
        wake?.();
        // Told even while the consumer is suspended at a yield (a reader that stopped reading).
        onEnd?.(error);
      },
    });
    for (;;) {
      const batch = ready.shift();
      if (batch) {
        for (let i = 0; i < batch.length; i += maxBatch) yield i === 0 && batch.length <= maxBatch ? batch : batch.slice(i, i + maxBatch);
        if (ready.length === 0) this.resume();
        continue;
      }
      if (done) {
        if (this.endError) throw this.endError;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }
}

function slowConsumer(events: number, bytes: number, when = ""): BrokerError {
  return new BrokerError(
    "resource_exhausted",
    `subscriber too slow${when ? ` ${when}` : ""}: ${events} events (${bytes} bytes) queued; resubscribe with your last positions to resume`,
    { reason: "SLOW_CONSUMER", metadata: { queued_events: String(events), queued_bytes: String(bytes) } },
  );
}
