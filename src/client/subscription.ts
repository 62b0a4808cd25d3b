import { Code, ConnectError } from "@connectrpc/connect";
import type { PresenceEvent, SubscribeEvent } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { PresenceState, type Message, type PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import type { SeqcastClient } from "./client.js";
import { ReorderBuffer, type ReorderOutput } from "./reorder-buffer.js";
import { AckBatcher, type AckPosition } from "./ack-batcher.js";
import { PresenceView } from "./presence-view.js";
import { BacklogGate } from "./backlog-gate.js";
import { CausalGate, type GateRelease } from "./causal-gate.js";
import { expandDependencies } from "./dependency-refs.js";
import { defaultBackoff, isRetryable, retryDelay, sleep } from "./retry.js";
import { unref, type Timer } from "./timers.js";
import { HistoryFill } from "./history-fill.js";
import {
  PRESENCE_KINDS,
  SubscriptionState,
  type SubscriptionEvent,
  type SubscriptionListener,
  type SubscriptionOptions,
} from "./subscription-types.js";

export { SubscriptionState } from "./subscription-types.js";
export type { SubscriptionEvent, SubscriptionListener, SubscriptionOptions } from "./subscription-types.js";
import { roomNameError } from "../names/rooms.js";
import { isPattern, matchesPattern, patternError } from "../names/patterns.js";

const NO_REFS = new Uint8Array(0);

/** How long a message waits for its causal dependencies by default (ms). */
const DEFAULT_CAUSAL_WAIT_MS = 5000;

/** GetHistory returns at most this many messages per call. */
const MAX_BACKLOG = 1000;

/**
 * A live session over one Subscribe stream, kept alive across failures.
 * Per room it runs a ReorderBuffer: the application sees each room's
 * messages in order, exactly once; holes are filled from history; loss and
 * lineage changes surface as `reset` events, never as silent gaps.
 */
export class Subscription {
  private stateValue = SubscriptionState.Connecting;
  private readonly listeners = new Set<SubscriptionListener>();
  private readonly rooms = new Set<string>();
  private readonly filters = new Map<string, string>();
  private readonly buffers = new Map<string, ReorderBuffer<Message>>();
  /** Per room, the newest message the current stream sent: compact dependencies are refs into its list. */
  private readonly streamLast = new Map<string, Message>();
  /** Holes and causal dependencies read from history (history-fill.ts). */
  private readonly fills: HistoryFill;
  private stream: AbortController | undefined;
  private watchdog: Timer | undefined;
  private heartbeatMs = 0;
  private readonly closed = new AbortController();
  private sessionIdValue: string | undefined;
  private running: Promise<void> | undefined;
  /** Rooms named in the Subscribe request of the current stream. */
  private requested = new Set<string>();
  private readonly acks: AckBatcher;
  /** The session the next Subscribe replaces (presence carries over within the grace period). */
  private previousSessionId = "";
  private ownState: "online" | "away" = "online";
  /** Who is in each room held by name (not via a pattern), kept from the stream. */
  private readonly present = new PresenceView();
  /** Rooms whose live output waits for their backlog (see fetchBacklog). */
  private readonly backlogs = new BacklogGate<ReorderOutput<Message>>();
  private userValue: string | undefined;
  private idleTimer: Timer | undefined;
  /** Between the rooms' ordered outputs and the application: causal order across rooms (causal-gate.ts). */
  private readonly gate: CausalGate<Message>;

  constructor(
    private readonly client: SeqcastClient,
    rooms: string[],
    private readonly options: SubscriptionOptions,
  ) {
    this.acks = new AckBatcher(options.ackIntervalMs ?? 50, (acks) => this.sendAcks(acks));
    this.fills = new HistoryFill(
      {
        buffer: (room) => this.buffers.get(room),
        filter: (room) => this.filters.get(room),
        history: (room, query) => this.client.history(room, query),
        output: (room, outputs) => this.output(room, outputs),
        reached: (room, buffer) => this.gate.reached(room, buffer.position),
        warn: (error) => this.emit({ type: "warning", error }),
      },
      options.gapFillDelayMs ?? 200,
    );
    this.gate = new CausalGate<Message>({
      maxWaitMs: options.causalWaitMs ?? DEFAULT_CAUSAL_WAIT_MS,
      clock: options.causalClock,
      places: client.causalPlaces,
      need: (dependency) => this.fills.need(dependency),
      release: (room, output) => this.release(room, output),
    });
    for (const room of rooms) this.rooms.add(room);
    for (const [room, filter] of Object.entries(options.filters ?? {})) this.filters.set(room, filter);
    for (const [room, position] of Object.entries(options.since ?? {})) this.addBuffer(room, position);
  }

  /** A room's reorder buffer, starting after `position`; the causal gate counts everything up to it as passed. */
  private addBuffer(room: string, position: { epoch: string; sequence: bigint }): void {
    this.buffers.set(room, new ReorderBuffer<Message>(position));
    this.gate.track(room, position);
  }

  get state(): SubscriptionState {
    return this.stateValue;
  }

  /** Id of the current session, while connected. */
  get sessionId(): string | undefined {
    return this.sessionIdValue;
  }

  /** The user the broker knows this session as (from its token), once a session started. */
  get user(): string | undefined {
    return this.userValue;
  }

  /**
   * Who is in `room` (held by name), one entry per session, oldest join
   * first: the broker's list at the last `subscribed`, kept up to date by
   * the presence events since (each of which is also emitted).
   */
  presence(room: string): PresenceEntry[] {
    return this.present.list(room);
  }

  /** Last delivered position per room (what a resume would start from). */
  positions(): Map<string, { epoch: string; sequence: bigint }> {
    return new Map([...this.buffers].map(([room, buffer]) => [room, buffer.position]));
  }

  on(listener: SubscriptionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the subscription reaches `state` (or rejects if it closes first). */
  waitFor(state: SubscriptionState): Promise<void> {
    if (this.stateValue === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on((event) => {
        if (event.type !== "state") return;
        if (event.to === state) {
          off();
          resolve();
        } else if (event.to === SubscriptionState.Closed) {
          off();
          reject(event.error ?? new Error("subscription closed"));
        }
      });
    });
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * Adds a room to the live session (and to every future reconnect). A bad
   * room name is rejected here, with the broker's own check, so it can never
   * poison the next Subscribe of the whole session.
   */
  async join(room: string, options: { filter?: string } = {}): Promise<void> {
    const problem = isPattern(room) ? patternError(room) && `"${room}" ${patternError(room)}` : roomNameError(room);
    if (problem) throw new ConnectError(`room: ${problem}`, Code.InvalidArgument);
    this.rooms.add(room);
    if (options.filter !== undefined) this.filters.set(room, options.filter);
    const sessionId = this.sessionIdValue;
    if (!sessionId) return; // the next (re)connect subscribes it
    try {
      await this.client.rpc.join(
        { sessionId, rooms: [{ room, since: this.buffers.get(room)?.position, filter: this.filters.get(room) }] },
      );
    } catch (error) {
      // The session ended meanwhile; the reconnect will include the room.
      if (ConnectError.from(error).code !== Code.NotFound) {
        this.rooms.delete(room);
        this.filters.delete(room);
        throw error;
      }
    }
  }

  /** Removes a room; no message of it is delivered afterwards. */
  async leave(room: string): Promise<void> {
    this.rooms.delete(room);
    this.filters.delete(room);
    this.buffers.delete(room);
    this.streamLast.delete(room);
    this.present.forget(room);
    this.backlogs.drop(room);
    this.gate.forget(room);
    // Leaving a pattern forgets the rooms it alone brought in.
    if (isPattern(room))
      for (const held of [...this.buffers.keys()])
        if (!this.holds(held)) {
          this.buffers.delete(held);
          this.streamLast.delete(held);
          this.gate.forget(held);
        }
    this.fills.forget(room);
    const sessionId = this.sessionIdValue;
    if (!sessionId) return;
    try {
      await this.client.rpc.leave({ sessionId, rooms: [room] });
    } catch (error) {
      if (ConnectError.from(error).code !== Code.NotFound) throw error;
    }
  }

  /**
   * Acknowledges every message of `room` up to `sequence` (default: the last
   * delivered) for the durable subscriber. Cumulative and batched.
   */
  ack(room: string, sequence?: bigint): void {
    if (this.options.subscriber === undefined) throw new Error("ack() needs a subscription with a subscriber name");
    const buffer = this.buffers.get(room);
    if (!buffer) return;
    const position = buffer.position;
    this.acks.queue(room, { epoch: position.epoch, sequence: sequence ?? position.sequence });
  }

  private async sendAcks(acks: Array<[string, AckPosition]>): Promise<boolean> {
    const sessionId = this.sessionIdValue;
    if (!sessionId) return false;
    try {
      await this.client.rpc.ack(
        { sessionId, acks: acks.filter(([room]) => this.holds(room)).map(([room, position]) => ({ room, position })) },
      );
    } catch (error) {
      // Lost acks only mean redelivery (which the buffer drops) or a resume from an older point.
      this.emit({ type: "warning", error: ConnectError.from(error) });
    }
    return true;
  }

  /**
   * Sets this session's presence state in its rooms (online or away). Saying
   * what is already so sends nothing: every call would be an update event
   * for everyone in those rooms.
   */
  async setPresence(state: "online" | "away"): Promise<void> {
    if (this.ownState === state) return;
    this.ownState = state;
    await this.sendPresence(state);
  }

  /** The user did something: back online if away, and the idle clock restarts. */
  markActive(): void {
    if (this.ownState === "away") void this.setPresence("online").catch(() => {});
    this.armIdleTimer();
  }

  private armIdleTimer(): void {
    if (this.options.awayAfterMs === undefined || this.isClosed()) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = unref(
      setTimeout(() => {
        if (this.ownState === "online") void this.setPresence("away").catch(() => {});
      }, this.options.awayAfterMs),
    );
  }

  private async sendPresence(state: "online" | "away"): Promise<void> {
    const sessionId = this.sessionIdValue;
    if (!sessionId) return; // sent when the next session starts
    try {
      await this.client.rpc.setPresence(
        { sessionId, state: state === "online" ? PresenceState.ONLINE : PresenceState.AWAY },
      );
    } catch (error) {
      this.emit({ type: "warning", error: ConnectError.from(error) });
    }
  }

  /** Ends the session for good; the broker sends presence leaves at once. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    await this.acks.flush();
    // Say goodbye, so the leaves are not held back for the reconnect grace period.
    const sessionId = this.sessionIdValue;
    if (sessionId && this.rooms.size > 0)
      await this.client.rpc
        .leave({ sessionId, rooms: [...this.rooms] }, { timeoutMs: 1000 })
        .catch(() => {});
    if (this.stateValue !== SubscriptionState.Closed) this.setState(SubscriptionState.Closed, "closed by the application");
    this.closed.abort();
    this.stream?.abort();
    this.fills.close();
    clearTimeout(this.watchdog);
    this.gate.close();
    await this.running;
  }

  // ---- connection loop --------------------------------------------------

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.isClosed()) {
      const stream = new AbortController();
      this.stream = stream;
      let failure: ConnectError;
      try {
        this.requested = new Set(this.rooms);
        this.streamLast.clear();
        const responses = this.client.rpc.subscribe(
          {
            rooms: [...this.requested].map((room) => ({
              room,
              since: this.buffers.get(room)?.position,
              filter: this.filters.get(room),
            })),
            device: this.options.device ?? "",
            subscriber: this.options.subscriber ?? "",
            previousSessionId: this.previousSessionId,
            compactDependencies: true,
          },
          { signal: stream.signal },
        );
        for await (const response of responses) {
          this.feedWatchdog();
          for (const event of response.events) {
            if (event.event.case === "sessionStarted") attempt = 0;
            this.handle(event);
          }
        }
        failure = new ConnectError("the broker ended the stream", Code.Unavailable);
      } catch (error) {
        failure = ConnectError.from(error);
      }
      this.sessionIdValue = undefined;
      clearTimeout(this.watchdog);
      if (this.isClosed()) return;
      // Our own abort (watchdog) is a dead connection: retry like any network failure.
      if (!stream.signal.aborted && !isRetryable(failure, this.client.retryContext)) {
        this.setState(SubscriptionState.Closed, failure.rawMessage, failure);
        return;
      }
      this.setState(SubscriptionState.Reconnecting, failure.rawMessage, failure);
      await sleep(retryDelay(failure, attempt++, this.options.backoff ?? defaultBackoff), this.closed.signal);
    }
  }

  /** A room held by name, or matched by one of the patterns subscribed to. */
  private holds(room: string): boolean {
    if (this.rooms.has(room)) return true;
    if (room.startsWith("@")) return false;
    for (const name of this.rooms) if (isPattern(name) && matchesPattern(name, room)) return true;
    return false;
  }

  private isClosed(): boolean {
    return this.stateValue === SubscriptionState.Closed;
  }

  /** A stream that stays silent for several heartbeat intervals is dead, even if TCP has not noticed. */
  private feedWatchdog(): void {
    if (this.heartbeatMs <= 0) return;
    clearTimeout(this.watchdog);
    const silence = this.heartbeatMs * (this.options.missedHeartbeats ?? 3) + 1000;
    this.watchdog = unref(setTimeout(() => this.stream?.abort(), silence));
  }

  private handle(event: SubscribeEvent): void {
    const { event: e } = event;
    switch (e.case) {
      case "sessionStarted":
        this.sessionIdValue = e.value.sessionId;
        this.previousSessionId = e.value.sessionId;
        this.userValue = e.value.user;
        // A new session starts online: restore "away" if that is where we were.
        if (this.ownState === "away") void this.sendPresence("away");
        this.armIdleTimer();
        this.heartbeatMs = e.value.heartbeatIntervalMs;
        this.feedWatchdog();
        this.setState(SubscriptionState.Connected, "session started");
        // Rooms joined while this stream's request was already on its way.
        for (const room of this.rooms)
          if (!this.requested.has(room))
            this.join(room).catch((error) => this.emit({ type: "warning", error: ConnectError.from(error) }));
        return;
      case "subscribed": {
        const { room, position, recovered, resumedFrom, pattern } = e.value;
        if (!position) return;
        if (isPattern(room)) {
          if (this.rooms.has(room)) this.emit({ type: "subscribed", room, epoch: "", sequence: 0n, recovered: false, present: [] });
          return;
        }
        if (!this.holds(room)) return;
        const buffer = this.buffers.get(room);
        // A room matched again after a reconnect: the buffer keeps its place and
        // fills whatever the outage hid from history (a loss is reported).
        if (buffer && pattern) return;
        // A first subscription starts where the replay (if any) starts, else live.
        if (!buffer) this.addBuffer(room, recovered && resumedFrom ? resumedFrom : position);
        // The broker's list replaces ours: after a reconnect it is all that is true.
        if (!pattern) this.present.reset(room, e.value.present);
        this.emit({ type: "subscribed", room, epoch: position.epoch, sequence: position.sequence, recovered, present: this.present.list(room) });
        if (buffer) this.output(room, buffer.rebase(position, recovered));
        else {
          if (!recovered && !pattern && (this.options.backlog ?? 0) > 0 && position.sequence > 0n) this.fetchBacklog(room, position);
          // A durable subscriber starting afresh starts here: without an ack of this point its next run would
          // start afresh again (and show the same backlog), however long it had been running.
          if (!recovered && position.sequence > 0n && this.options.subscriber !== undefined && this.options.ack !== "manual")
            this.acks.queue(room, { epoch: position.epoch, sequence: position.sequence });
        }
        return;
      }
      case "message": {
        // Buffers exist exactly for the rooms held (leave() drops them): no pattern matching per message.
        const buffer = this.buffers.get(e.value.room);
        if (!buffer) return;
        const message = this.wholeDependencies(e.value);
        this.output(message.room, buffer.push(message));
        this.fills.scheduleGap(message.room);
        return;
      }
      case "presence":
        return this.presenceChanged(e.value);
      case "presenceChanges":
        // Several changes of one room batched by the broker: the same as each on its own, in order.
        for (const change of e.value.changes) this.presenceChanged(change);
        return;
      case "unsubscribed":
        this.emit({ type: "unsubscribed", room: e.value.room });
        return;
      case "watermark": {
        const buffer = this.buffers.get(e.value.room);
        if (buffer) {
          this.output(
            e.value.room,
            buffer.skipThrough({ epoch: e.value.epoch, sequence: e.value.sequence }, e.value.afterSequence),
          );
          // What the filter removed counts as passed for messages that depend on it.
          this.gate.reached(e.value.room, buffer.position);
        }
        return;
      }
      case "reset": {
        const buffer = this.buffers.get(e.value.room);
        if (buffer && e.value.position) this.output(e.value.room, buffer.rebase(e.value.position, false));
        return;
      }
      case "heartbeat":
      case undefined:
        return;
    }
  }

  private presenceChanged(change: PresenceEvent): void {
    const kind = PRESENCE_KINDS[change.kind];
    const { room, entry } = change;
    if (kind && entry && this.holds(room) && this.present.apply(room, kind, entry)) this.emit({ type: "presence", room, kind, entry });
  }

  // ---- causal dependencies ------------------------------------------------

  /**
   * A message from the stream with its whole list of dependencies: compact
   * ones (SubscribeRequest.compact_dependencies) are rebuilt from the list of
   * the room's previous message, which the stream sent right before it. The
   * application and the gate then see the list as published.
   */
  private wholeDependencies(message: Message): Message {
    const { room } = message;
    const before = this.streamLast.get(room);
    if (message.dependencyRefs.length > 0 || message.sameDependencies) {
      const follows = before !== undefined && before.epoch === message.epoch && before.sequence === message.sequence - 1n;
      const whole = !follows
        ? undefined
        : message.sameDependencies
          ? before.dependencies.slice()
          : expandDependencies(message.dependencyRefs, message.dependencies, before.dependencies);
      // Never expected: the broker sends refs only right after the message they point into.
      if (whole) message.dependencies = whole;
      else
        this.emit({
          type: "warning",
          error: new ConnectError(`room ${room}: the compact dependencies of ${message.sequence} do not fit the message before it; it waits only for those it names`, Code.DataLoss),
        });
      message.dependencyRefs = NO_REFS;
      message.sameDependencies = false;
    }
    // Redeliveries of older messages come whole and leave the newest in place.
    if (!before || before.epoch !== message.epoch || before.sequence < message.sequence) this.streamLast.set(room, message);
    return message;
  }

  // ---- backlog ----------------------------------------------------------

  /**
   * The last messages before a room's first subscription, emitted as one
   * `backlog` event ahead of anything live of the room: what it delivers
   * meanwhile is held back, so the application sees the room in order.
   */
  private fetchBacklog(room: string, position: { epoch: string; sequence: bigint }): void {
    const limit = Math.min(this.options.backlog ?? 0, MAX_BACKLOG);
    const fetch = async () => {
      try {
        const filter = this.filters.get(room);
        const page = await this.client.history(room, { before: position.sequence + 1n, limit, direction: "backward", filter });
        if (!this.backlogs.isHolding(room) || page.epoch !== position.epoch) return;
        const messages = page.messages.filter((m) => m.sequence <= position.sequence);
        if (messages.length > 0) this.emit({ type: "backlog", room, messages });
      } catch (error) {
        this.emit({ type: "warning", error: ConnectError.from(error) });
      }
    };
    this.backlogs.hold(room, fetch, (held) => this.output(room, held));
  }

  // ---- events -----------------------------------------------------------

  private output(room: string, outputs: ReorderOutput<Message>[]): void {
    if (this.backlogs.offer(room, outputs)) return;
    this.gate.push(room, outputs);
  }

  /** What the causal gate lets through, in order. */
  private release(room: string, out: GateRelease<Message>): void {
    if (out.type === "deliver") {
      const message = out.item;
      this.client.causal.observe(room, message.epoch, message.sequence);
      if (out.unmet.length > 0) this.emit({ type: "message", room, message, unmetDependencies: out.unmet });
      else this.emit({ type: "message", room, message });
      // Listeners have returned: the message is processed.
      if (this.options.subscriber !== undefined && this.options.ack !== "manual")
        this.acks.queue(room, { epoch: message.epoch, sequence: message.sequence });
    } else
      this.emit({
        type: "reset",
        room,
        reason: out.reason,
        epoch: out.position.epoch,
        sequence: out.position.sequence,
        skipped: out.skipped,
      });
  }

  private setState(to: SubscriptionState, reason: string, error?: ConnectError): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.emit({ type: "state", from, to, reason, error });
  }

  private emit(event: SubscriptionEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // An application bug must not break delivery to the other listeners or the stream.
        console.error("seqcast: subscription listener threw:", error);
      }
    }
  }
}
