/**
 * The engine: storage and cross-node distribution behind one interface.
 *
 * Every method is async so that a networked engine (Redis) fits the same
 * shape as the in-memory and embedded ones. Every engine must pass the one
 * conformance suite in test/engine/conformance.ts.
 *
 * Contract, for every implementation:
 *
 * - Positions. A room's lineage is identified by its epoch, an opaque string
 *   that is created with the room's first write (publish) and replaced
 *   whenever the lineage can no longer be continued (the room's history was
 *   cleared, an in-memory engine restarted). Within one epoch, sequences
 *   start at 1 and increase by exactly 1 per published message: no holes, no
 *   reuse. Sequence 0 means "before the first message".
 *
 * - Reads create nothing. position(), history(), presence and watching of a
 *   room that was never written answer epoch "" ("no lineage yet") and
 *   sequence 0, and leave nothing in the store: a client reading 20,000
 *   names must not make 20,000 rooms. The first publish creates the room
 *   and its epoch; its first message is sequence 1, so a reader that saw
 *   ("", 0) has missed nothing of that lineage. clear() of such a room is a
 *   no-op answering ("", 0) and fans out nothing. Presence of a room is
 *   dropped with its last entry.
 *
 * - Publish is atomic per room: assigning the next sequence, appending to the
 *   history (and trimming it by size and age), and fanning the message out to
 *   every broker node's room listeners happen as one step. Listeners of one
 *   room receive its messages in sequence order, each exactly once, and only
 *   messages published after their listen() promise resolved.
 *
 * - History keeps at most `historySize` messages per room, and none older
 *   than `historyTtlMs`. Trimming only ever removes the oldest messages.
 *
 * - Idempotency: a draft with a non-empty clientMessageId whose (room,
 *   sender, clientMessageId) was stored within `dedupeWindowMs` is not stored
 *   again; publish returns the original message (its id, position, time and
 *   body, never the retry's body; engines that keep bodies only in history
 *   may return an empty body once retention dropped the original) with
 *   `duplicate: true` and fans nothing out. The check is part of the same
 *   atomic step.
 *
 * - Acks: per durable subscriber and room, the highest acknowledged position.
 *   Within one epoch it only moves forward; an ack of another epoch replaces
 *   it (the room was reset). Durable engines persist acks like messages.
 *
 * - Presence entries are per room and session; engines may expire them (so
 *   a crashed broker node does not leave ghosts forever).
 *
 * - Several nodes: engines that share one store (broker nodes on one Redis)
 *   keep every rule above across nodes: one sequence per room, every node's
 *   listeners get the same order, and presence, acks and idempotency keys are
 *   shared. A node that dies without removing its presence entries loses
 *   them within a bound the engine documents (the conformance suite's
 *   SharedStore.presenceTtlMs).
 *
 * - Availability: an engine backed by a server (Redis) may be unable to
 *   serve for a while. Its calls then reject (the broker answers UNAVAILABLE,
 *   which clients retry), and it reports so through the optional status() /
 *   onStatusChange(), which the server turns into grpc.health.v1
 *   NOT_SERVING. It recovers by itself: listeners get every event they missed
 *   meanwhile, in order, or a reset when the lineage was lost.
 */

/**
 * A causal dependency of a message: the position of another message (any
 * room) that subscribers should see first. Engines store them with the
 * message, unchanged and in order, and never interpret them.
 */
export interface Dependency {
  room: string;
  epoch: string;
  sequence: bigint;
}

/** A message as stored by the engine. Sequences are bigint end to end. */
export interface StoredMessage {
  id: string;
  room: string;
  epoch: string;
  sequence: bigint;
  sender: string;
  content: string;
  payload: Uint8Array;
  attributes: Record<string, string>;
  /** Broker clock, milliseconds since the Unix epoch. */
  timeMs: number;
  clientMessageId: string;
  /**
   * Causal dependencies as published (absent or empty: none). Every engine
   * returns them with the message, live and from history.
   */
  dependencies?: readonly Dependency[];
}

/** What a publisher asks to store; the engine assigns id, epoch, sequence. */
export type MessageDraft = Omit<StoredMessage, "id" | "epoch" | "sequence">;

export interface PublishResult {
  message: StoredMessage;
  /** A retry of a message already stored: nothing new was stored or fanned out. */
  duplicate: boolean;
}

export interface Position {
  epoch: string;
  /** Newest sequence in the epoch; 0n when the room holds no message yet. */
  sequence: bigint;
}

export interface HistoryQuery {
  /** Exclusive lower bound; 0n = from the oldest retained. */
  after: bigint;
  /** Exclusive upper bound; 0n = up to the newest. */
  before: bigint;
  /** Maximum number of messages, >= 1. */
  limit: number;
  /** Which end of the range `limit` keeps. Results are ascending either way. */
  direction: "forward" | "backward";
}

export interface HistoryPage {
  messages: StoredMessage[];
  /** The room's current position. */
  position: Position;
  /** Oldest retained sequence, 0n when nothing is retained. */
  firstSequence: bigint;
  /** The range held more than `limit` messages. */
  hasMore: boolean;
}

export type PresenceState = "online" | "away";

export interface PresenceEntry {
  user: string;
  sessionId: string;
  device: string;
  state: PresenceState;
  joinedAtMs: number;
  /** When the session entered its current state. */
  sinceMs: number;
  /** The session's last activity. */
  lastActiveMs: number;
}

/**
 * Events fanned out to every node listening on a room, in the order the
 * engine committed them. Presence events travel on the same ordered channel
 * as messages so subscribers see both in one order.
 */
export type RoomEvent =
  | { type: "message"; message: StoredMessage }
  /** The room's history was cleared: a new epoch starts at `position` (sequence 0). */
  | { type: "reset"; position: Position }
  | { type: "presence"; kind: "join" | "leave" | "update"; entry: PresenceEntry };

export type RoomListener = (room: string, event: RoomEvent) => void;

export interface RetentionPolicy {
  /** Messages kept per room (>= 1). */
  historySize: number;
  /** Maximum age of a kept message in ms; 0 = no age limit. */
  historyTtlMs: number;
  /** How long a clientMessageId is remembered for deduplication, ms; 0 = never. */
  dedupeWindowMs: number;
}

/** "ok", or "unavailable": calls fail until the engine's server is reachable again. */
export type EngineStatus = "ok" | "unavailable";

export interface EngineStatusReport {
  status: EngineStatus;
  /** For logs and operators: what is wrong (or what it is connected to). */
  reason: string;
}

/** What an engine holds in the broker's own memory, for operators (GET /metrics). */
export interface EngineMemoryReport {
  /** Retained messages held in this process (the memory engine): bytes of the chunks held, and of the records still retained in them. */
  history?: { allocatedBytes: number; liveBytes: number };
  /** Idempotency keys held in this process, and the bytes of the table that holds them. */
  idempotencyKeys: number;
  idempotencyKeyBytes: number;
}

/** What an engine that stores on this machine's disk (sqlite) is doing, for operators (GET /metrics). */
export interface EngineStorageReport {
  /** Write transactions committed since the start (group commits, clears and deferred trims included), and the messages committed in them. */
  transactions: number;
  messages: number;
  /** Bytes of the database file and of its write-ahead log (0 for a database in memory). */
  fileBytes: number;
  walBytes: number;
  /** The checkpoint worker: passes since the start, and whether it runs (false: it stopped and SQLite checkpoints at commit; undefined: none, by configuration). */
  checkpointPasses: number;
  checkpointWorker: boolean | undefined;
  /** Message rows retention keeps, and rows from the sweep's position to the log's end (the kept ones there and dead ones the sweep has yet to delete). */
  retainedRows: number;
  unsweptRows: number;
  /** Rows the sweep read since the start. */
  rowsSwept: number;
}

export interface Engine {
  /** Human-readable name for logs and metrics ("memory", "sqlite", "redis"). */
  readonly name: string;

  /**
   * Sequence, store and fan out one message; resolves once it is stored (and,
   * for durable engines, committed). Atomic per room, see the module comment.
   */
  publish(draft: MessageDraft): Promise<PublishResult>;

  /**
   * Optional: several drafts in order, as if publish() were called for each
   * in turn (same atomicity per message, same sequencing order), settled by
   * one promise: a failure of the engine rejects it for all. Engines that
   * batch anyway (group commit, pipelines) spare a promise per message.
   */
  publishBatch?(drafts: MessageDraft[]): Promise<PublishResult[]>;

  /** Retained messages of the room's current epoch in a sequence range (epoch "" and nothing for a room never written). */
  history(room: string, query: HistoryQuery): Promise<HistoryPage>;

  /**
   * Deletes the room's history and idempotency keys and starts a new epoch
   * at sequence 0, atomically with respect to publishes; fans out a reset.
   */
  clear(room: string): Promise<Position>;

  /** The room's current position; ("", 0n) for a room never written, which it does not create. */
  position(room: string): Promise<Position>;

  /**
   * Start delivering the room's events to the engine's listener. Resolves
   * once every event published afterwards is guaranteed to be delivered.
   * Calls are counted: the room is unwatched after as many unwatch() calls.
   * `name` may be a pattern (`sports.*`, `sports.>`): then the events of every
   * matching room, including rooms created later, are delivered; inboxes
   * (`@user`) never match a pattern.
   */
  watch(room: string): Promise<void>;
  unwatch(room: string): Promise<void>;

  /** Add or replace a presence entry and fan out the event. */
  presenceSet(room: string, entry: PresenceEntry, kind: "join" | "update"): Promise<void>;
  /** Remove a presence entry and fan out a leave; false if it was absent. */
  presenceRemove(room: string, sessionId: string): Promise<boolean>;
  /**
   * The room's entries, oldest join first. Reflects at least every change
   * whose event the listener received before the call (a joining session's
   * `subscribed.present` is read while its live events are parked; see
   * src/broker/presence-snapshot.ts for events that race with the read).
   */
  presenceList(room: string): Promise<PresenceEntry[]>;

  /** Record that `subscriber` acknowledged everything up to `position` in the room. */
  ackSet(subscriber: string, room: string, position: Position): Promise<void>;
  /** The highest acknowledged position, if any. */
  ackGet(subscriber: string, room: string): Promise<Position | undefined>;

  /**
   * Optional: forgets idle rooms, from memory and from storage. A room is
   * idle when it retains no message (all trimmed by age, or cleared), holds
   * no idempotency key within the window, no presence entry and no durable
   * subscriber's ack, and is not watched. A forgotten room reads as one never
   * written, ("", 0): a client resuming from its old position is told
   * `recovered = false`, never fed a hole. Resolves with how many were
   * forgotten. The broker calls it now and then (idle rooms cost nothing
   * until then).
   */
  sweep?(): Promise<number>;

  /**
   * Optional: engines that depend on a server report whether they can serve
   * now. Engines without it are always available.
   */
  status?(): EngineStatusReport;
  /** Optional, with status(): calls `listener` on every change; returns an unsubscribe function. */
  onStatusChange?(listener: (report: EngineStatusReport) => void): () => void;

  /** Optional: what the engine holds in this process's memory (engines that keep history or keys here). */
  memory?(): EngineMemoryReport;

  /** Optional: what the engine's storage on this machine's disk is doing (sqlite). */
  storage?(): EngineStorageReport;

  /**
   * Stop timers and connections once the calls already made have settled: a
   * publish made before close() is stored and resolves (the broker may close
   * while a call is in flight). Further calls reject.
   */
  close(): Promise<void>;
}

/** Engines are created with the listener the broker fans out from. */
export interface EngineOptions {
  retention: RetentionPolicy;
  listener: RoomListener;
  /** Clock, injectable for TTL tests. */
  now?: () => number;
}
