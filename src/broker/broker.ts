import type { Engine, EngineOptions, HistoryPage, Position, PublishResult, RoomEvent } from "../engine/engine.js";
import { newUuid } from "../engine/ids.js";
import { systemClock, type Clock } from "./clock.js";
import { FlushScheduler } from "./outbox.js";
import { PresenceFanOut } from "./presence-fanout.js";
import type { BrokerConfig } from "./config.js";
import { Closing } from "./closing.js";
import { BrokerError, invalidArgument } from "./errors.js";
import { FilterCompiler } from "./filter.js";
import { mayRead, type Identity } from "./identity.js";
import { QueueBudget } from "./queue-budget.js";
import type { HistoryInput, ReadHistory } from "./history.js";
import { RoomReads, type PresenceSnapshot } from "./room-reads.js";
import { checkLeave, planJoin, type RoomRequest } from "./join-plan.js";
import { PresenceGrace } from "./presence-grace.js";
import { RoomIndex } from "./room-index.js";
import { Session, type SessionEvent, type SessionHost } from "./session.js";
import { newBrokerStats, type BrokerStats } from "./stats.js";
import { PublishLatency } from "./publish-latency.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { EngineCalls } from "./engine-calls.js";
import { UserQuotas } from "./user-quotas.js";
import { ReaderBacklog } from "./reader-backlog.js";
import { validateRoom, validateShortText, validateSubscriber } from "./validate.js";
import { PublishPath, type PublishInput } from "./publishing.js";
import { acknowledge, joinPattern, joinRoom, leaveRooms, setPresence, type MembershipContext } from "./room-membership.js";

export interface BrokerOptions {
  config: BrokerConfig;
  /** Builds the engine; the broker hands it the listener it fans out from. */
  engine: (options: EngineOptions) => Engine;
  /** Time and timers (default: the system clock). */
  clock?: Clock;
  /** Lifecycle events and errors (default: none). */
  logger?: Logger;
  /** Record publish latencies (latency.commit, latency.write) for metrics. */
  measureLatency?: boolean;
}

export type { RoomRequest } from "./join-plan.js";
export type { PublishInput } from "./publishing.js";
export type { HistoryInput } from "./history.js";
export type { PresenceSnapshot } from "./room-reads.js";

/** How often the engine forgets idle rooms (Engine.sweep): rooms that retain nothing cost nothing until then. */
const ROOM_SWEEP_MS = 60_000;

/**
 * The broker's domain: sessions, the room index that makes fan-out cost
 * O(subscribers of the room), joins with replay, presence and validation.
 * It knows nothing of transports; the server adapts it to the wire.
 */
export class Broker {
  readonly engine: Engine;
  readonly config: BrokerConfig;
  private readonly now: () => number;
  private readonly sessions = new Map<string, Session>();
  private readonly durableSessions = new Set<Session>();
  private readonly grace: PresenceGrace;
  private readonly index: RoomIndex;
  /** Compiles filters within the configured limits, once per text. */
  private readonly filters: FilterCompiler;
  private readonly clock: Clock;
  /** Writes every session's queued events once per event-loop turn (after a large flush, once the flush interval passed). */
  readonly flusher: FlushScheduler;
  private readonly presenceOut: PresenceFanOut;
  private readonly stopTicking: (() => void) | undefined;
  private readonly closing = new Closing();
  private lastSweepMs: number;
  private readonly publishing: PublishPath;
  /** What joining and leaving rooms (room-membership.ts) use of this broker. */
  private readonly memberships: MembershipContext;
  private readonly quotas: UserQuotas;
  /** What every session shares (session.ts). */
  private readonly sessionHost: SessionHost;
  /** GetHistory and GetPresence (room-reads.ts). */
  private readonly reads: RoomReads;
  /** Bytes queued for all sessions together (queueBytesTotal). */
  readonly queueBudget: QueueBudget;
  /** Sessions behind their readers, which publishers wait for (reader-backlog.ts). */
  readonly readerBacklog: ReaderBacklog;
  /** Observable counters (tests, metrics). */
  readonly stats: BrokerStats = newBrokerStats();
  /** With measureLatency: from receiving a publish to its commit and to its fan-out's write (publish-latency.ts). */
  readonly latency: PublishLatency;
  private readonly measureLatency: boolean;
  private readonly log: Logger;
  /** Engine failures become UNAVAILABLE, counted and logged (engine-calls.ts). */
  private readonly callEngine: EngineCalls["call"];

  constructor(options: BrokerOptions) {
    this.config = options.config;
    this.readerBacklog = new ReaderBacklog(this.config.readerStallMs);
    this.quotas = new UserQuotas(this.config.userSessionsMax, this.config.userRoomsPerSecond, this.config.maxRoomsPerSession);
    this.queueBudget = new QueueBudget(this.config.queueBytesTotal, () => this.sessions.values());
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.callEngine = new EngineCalls(() => this.engine.name, this.stats, this.log).call;
    this.flusher = new FlushScheduler(this.config.flushIntervalMs);
    this.measureLatency = options.measureLatency ?? false;
    this.latency = new PublishLatency(() => this.flusher.wake());
    if (this.measureLatency) this.flusher.afterFlush = () => this.latency.flushed();
    this.grace = new PresenceGrace(this.config.presenceGraceMs, (room, id) => this.engine.presenceRemove(room, id), this.clock);
    this.index = new RoomIndex(
      (name) => this.callEngine(() => this.engine.watch(name)),
      (name) => this.engine.unwatch(name),
    );
    this.now = () => this.clock.now();
    this.presenceOut = new PresenceFanOut(this.index, this.flusher, this.config.presenceEventsMax, () => this.now());
    this.filters = FilterCompiler.of(this.config);
    this.engine = options.engine({
      retention: {
        historySize: this.config.historySize,
        historyTtlMs: this.config.historyTtlMs,
        dedupeWindowMs: this.config.dedupeWindowMs,
      },
      listener: (room, event) => this.fanOut(room, event),
      now: this.now,
    });
    this.publishing = new PublishPath({
      config: this.config,
      engine: () => this.engine,
      now: this.now,
      quotas: this.quotas,
      stats: this.stats,
      latency: this.measureLatency ? this.latency : undefined,
      assertOpen: () => this.closing.assertOpen(),
      callEngine: this.callEngine,
    });
    this.memberships = {
      index: this.index,
      readHistory: this.readHistory,
      now: this.now,
      callEngine: (call) => this.callEngine(() => call(this.engine)),
      presenceOff: (room) => this.presenceOut.off(room),
      presenceFrom: () => this.presenceOut.next,
    };
    this.reads = new RoomReads({
      quotas: this.quotas,
      filters: this.filters,
      now: this.now,
      readHistory: this.readHistory,
      presenceList: (room) => this.callEngine(() => this.engine.presenceList(room)),
    });
    this.sessionHost = {
      limits: { events: this.config.sessionQueueLimit, bytes: this.config.sessionQueueBytes },
      counters: this.stats,
      scheduler: this.flusher,
      budget: this.queueBudget,
      backlog: this.readerBacklog,
      // Cut off as too slow: gone for everyone at once (presence, room index), whatever the transport does.
      onCutOff: (cut) => void this.closeSession(cut),
    };
    this.lastSweepMs = this.now();
    const periods = [this.config.heartbeatIntervalMs, this.config.ackDeadlineMs].filter((p) => p > 0);
    if (periods.length > 0) {
      const tick = Math.max(20, Math.floor(Math.min(...periods) / 4));
      this.stopTicking = this.clock.setInterval(() => this.tick(), tick);
    }
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Rooms and patterns held by at least one session of this node. */
  get roomCount(): number {
    return this.index.roomCount + this.index.patternCount;
  }

  /**
   * Undefined when every subscriber of `rooms` keeps up; else resolves once
   * those that fell behind (half their queue used) and still read caught up.
   * Publishing transports wait on it before they read or publish more to
   * these rooms: a publisher goes at its slowest reading subscriber's pace
   * instead of getting it cut off, and publishers to other rooms never wait
   * (reader-backlog.ts).
   */
  readersKeepingUp(rooms: Iterable<{ room: string }>): Promise<void> | undefined {
    return this.readerBacklog.waitForRooms(rooms);
  }

  /** Estimated bytes queued for every session and not yet handed to its stream (O(sessions): for scrapes). */
  get queuedBytes(): number {
    let bytes = 0;
    for (const session of this.sessions.values()) bytes += session.pendingBytes;
    return bytes;
  }

  // ---- publishing (publishing.ts) ----------------------------------------

  /** Validates, rate-limits and stores one message; fan-out follows from the engine. */
  publish(identity: Identity, input: PublishInput): Promise<PublishResult> {
    return this.publishing.publish(identity, input);
  }

  /** Several messages of one caller, in order, each with its own outcome (PublishPath.publishMany). */
  publishMany(identity: Identity, inputs: PublishInput[]): Promise<Array<PublishResult | BrokerError>> {
    return this.publishing.publishMany(identity, inputs);
  }

  private fanOut(room: string, event: RoomEvent): void {
    const now = this.now();
    if (event.type === "presence") return this.presenceOut.change(room, event, now);
    // The room's presence changes of this turn go first: one order per room.
    this.presenceOut.flushRoom(room);
    if (this.measureLatency && event.type === "message") this.latency.fanned(event.message);
    this.index.forEach(
      room,
      (session) => session.deliver(room, event, now),
      (session, pattern) => session.deliverViaPattern(room, pattern, event, now, (r) => mayRead(session.identity, r)),
    );
  }

  // ---- sessions ---------------------------------------------------------

  /**
   * Opens a session; its first queued event is `session_started`. A
   * `subscriber` name makes it durable: (user, subscriber) keeps its acks.
   */
  openSession(identity: Identity, device: string, subscriber = "", previousSessionId = ""): Session {
    const user = identity.user;
    this.closing.assertOpen();
    validateShortText(device, "device", 64);
    validateSubscriber(subscriber);
    const durableKey = subscriber === "" ? undefined : `${user}/${subscriber}`;
    this.quotas.openSession(identity);
    const session = new Session(newUuid(), identity, device, this.now(), durableKey, this.sessionHost);
    this.sessions.set(session.id, session);
    if (durableKey !== undefined) this.durableSessions.add(session);
    this.log.debug({ session: session.id, user, device, ...(subscriber ? { subscriber } : {}) }, "session opened");
    // A reconnect inside the grace period takes the old session's presence over.
    const adopted = this.grace.takeOver(previousSessionId, user);
    if (adopted) {
      session.presenceId = adopted.presenceId;
      session.adopted = adopted.rooms;
    }
    session.queue.push({ type: "session_started", sessionId: session.id, user, heartbeatIntervalMs: this.config.heartbeatIntervalMs }, this.now());
    return session;
  }

  /** The live session `id`, which must belong to `user`. */
  getSession(id: string, user: string): Session {
    if (!id) throw invalidArgument("session_id: must not be empty", "INVALID_REQUEST", { field: "session_id" });
    const session = this.sessions.get(id);
    if (!session || session.isEnded)
      throw new BrokerError("not_found", `session "${id.slice(0, 64)}" is not live; start one with Subscribe`, { reason: "SESSION_NOT_FOUND" });
    if (session.user !== user) throw new BrokerError("permission_denied", "session belongs to another user", { reason: "SESSION_FORBIDDEN" });
    return session;
  }

  /**
   * Joins rooms with optional resume positions. Validation happens before
   * anything changes and throws synchronously, so a caller can reject a bad
   * request before its stream sends a byte.
   */
  join(session: Session, requests: RoomRequest[]): Promise<void> {
    this.closing.assertOpen();
    const { rooms, patterns } = planJoin(session, requests, this.config.maxRoomsPerSession, this.filters);
    this.quotas.touch(session.identity, [...rooms.map((r) => r.room), ...patterns.keys()], this.now());
    return Promise.all([
      ...[...patterns].map(([pattern, filter]) => joinPattern(this.memberships, session, pattern, filter)),
      ...rooms.map((request) => joinRoom(this.memberships, session, request)),
    ]).then(() => {});
  }

  /** Leaves rooms and patterns; all are checked before any is left. */
  async leave(session: Session, rooms: string[]): Promise<void> {
    checkLeave(rooms);
    await leaveRooms(this.memberships, session, rooms, true);
  }

  /**
   * Ends a session (stream closed, client gone, or broker closing) and sends
   * its presence leaves: at once, or with `linger` (the connection ended
   * without a goodbye) after the presence grace period, unless a reconnect
   * takes the presence over first.
   */
  async closeSession(session: Session, error?: BrokerError, drain?: boolean, linger = false): Promise<void> {
    session.end(error, drain);
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.quotas.closeSession(session.user);
    this.durableSessions.delete(session);
    this.logClosed(session, linger);
    const presence = session.presenceRooms();
    const keep = linger && !this.closing.started && this.config.presenceGraceMs > 0 && presence.length > 0;
    // An entry that could not be removed (engine down) expires with its lease, or goes at the engine's restart.
    await leaveRooms(this.memberships, session, [...session.patterns.keys(), ...session.rooms.keys()], false, keep).catch(() => {});
    if (!keep) {
      // Rooms adopted from a predecessor and not joined again.
      if (session.adopted.size > 0) await this.settleAdoption(session);
      return;
    }
    this.grace.hold(session.id, session.presenceId, session.user, new Set([...presence, ...session.adopted]));
  }

  /** One line per session that ends; a slow consumer's cut-off is a warning (its client must resume). */
  private logClosed(session: Session, linger: boolean): void {
    const ended = session.error;
    const fields = { session: session.id, user: session.user, rooms: session.rooms.size, ...(ended ? { reason: ended.reason } : {}) };
    if (ended?.reason === "SLOW_CONSUMER")
      this.log.warn({ ...fields, ...ended.metadata }, "slow consumer cut off");
    else this.log.debug({ ...fields, ...(linger ? { gone: true } : {}) }, "session closed");
  }

  /** Sets a session's state in every room it holds and tells the rooms. */
  setPresence(session: Session, state: "online" | "away"): Promise<void> {
    return setPresence(this.memberships, session, state);
  }

  /**
   * After the first join of a session that took over another's presence:
   * rooms of the old session that were not joined again are left now.
   */
  async settleAdoption(session: Session): Promise<void> {
    const stale = [...session.adopted];
    session.adopted.clear();
    await Promise.allSettled(stale.map((room) => this.engine.presenceRemove(room, session.presenceId)));
  }

  /** Acknowledges, for the session's durable subscriber, everything up to each position (room-membership.ts). */
  ack(session: Session, acks: Array<{ room: string; position: Position | undefined }>): Promise<void> {
    return acknowledge(this.memberships, session, acks);
  }

  private tick(): void {
    const now = this.now();
    if (this.config.heartbeatIntervalMs > 0) {
      const idleSince = now - this.config.heartbeatIntervalMs;
      // One event for every idle stream of this tick: encoded once, one frame shared by all (event-encoding.ts).
      const heartbeat: SessionEvent = { type: "heartbeat", timeMs: now };
      for (const session of this.sessions.values()) if (session.queue.lastActivityMs <= idleSince) session.queue.push(heartbeat, now);
    }
    this.publishing.prune(now);
    this.quotas.prune(now);
    if (this.engine.sweep && now - this.lastSweepMs >= ROOM_SWEEP_MS) {
      this.lastSweepMs = now;
      // Best effort: a failed sweep (engine unavailable) is tried again next time.
      this.engine.sweep().catch(() => {});
    }
    if (this.config.ackDeadlineMs > 0) {
      const due = now - this.config.ackDeadlineMs;
      for (const session of this.durableSessions) session.redeliver(due, now);
    }
  }

  /** Admins only: deletes the room's history and starts a new epoch; holders get a reset. */
  async clearHistory(identity: Identity, room: string): Promise<Position> {
    this.closing.assertOpen();
    if (!identity.admin) throw new BrokerError("permission_denied", "ClearHistory needs the admin role", { reason: "ADMIN_REQUIRED" });
    validateRoom(room);
    return this.callEngine(() => this.engine.clear(room));
  }

  // ---- queries ----------------------------------------------------------

  history(identity: Identity, input: HistoryInput): Promise<HistoryPage> {
    return this.reads.history(identity, input);
  }

  presence(identity: Identity, room: string): Promise<PresenceSnapshot> {
    return this.reads.presence(identity, room);
  }

  private readonly readHistory: ReadHistory = (room, query) => this.callEngine(() => this.engine.history(room, query));

  // ---- lifecycle --------------------------------------------------------

  /**
   * Ends every stream with UNAVAILABLE (clients resume elsewhere or later),
   * removes this node's presence entries, closes the engine.
   *
   * No stream is told of presence leaves: the sessions did not leave, the
   * broker did. Announcing them made every client show everyone as gone,
   * and clients that missed some of the leaves (their own stream ended
   * first) kept different lists after the restart. Instead, a client that
   * resubscribes replaces its view of each room with `subscribed.present`
   * of the broker it reaches (pubsub.proto, Subscribe), so all converge.
   */
  async close(): Promise<void> {
    // A PublishStream stops reading and ends with UNAVAILABLE after the results of what it read.
    if (!this.closing.start()) return;
    this.stopTicking?.();
    const shuttingDown = new BrokerError("unavailable", "broker is shutting down; reconnect and resume from your last positions", {
      reason: "SHUTTING_DOWN",
    });
    const sessions = [...this.sessions.values()];
    // Every stream ends first (draining what it has queued), so no leave below reaches one of them…
    for (const session of sessions) session.end(shuttingDown, true);
    // …then the entries go, so an engine shared with other nodes keeps no ghosts (only those nodes hear the leaves).
    await Promise.allSettled([...sessions.map((s) => this.closeSession(s, shuttingDown, true)), this.grace.releaseAll()]);
    await this.engine.close();
  }

  /** Calls `listener` once when the broker starts closing (closing.ts), at once if it has; returns the unsubscribe. */
  onClose(listener: (error: BrokerError) => void): () => void {
    return this.closing.onStart(listener);
  }
}
