import { Code, ConnectError } from "@connectrpc/connect";
import type { PresenceEvent, SubscribeEvent } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { PresenceState, type Message, type PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import type { SeqcastClient } from "./client.js";
import { AckBatcher, type AckPosition } from "./ack-batcher.js";
import { PresenceView } from "./presence-view.js";
import type { GateRelease } from "./causal-gate.js";
import { defaultBackoff, isRetryable, retryDelay, sleep } from "./retry.js";
import { unref, type Timer } from "./timers.js";
import { RoomDelivery } from "./room-delivery.js";
import { OwnPresence, type OwnState } from "./own-presence.js";
import { SubscriptionEvents } from "./subscription-events.js";
import { PRESENCE_KINDS, SubscriptionState, type SubscriptionListener, type SubscriptionOptions } from "./subscription-types.js";
import { roomNameError } from "../names/rooms.js";
import { isPattern, matchesPattern, patternError } from "../names/patterns.js";

export { SubscriptionState } from "./subscription-types.js";
export type { SubscriptionEvent, SubscriptionListener, SubscriptionOptions } from "./subscription-types.js";

/** How long a message waits for its causal dependencies by default (ms). */
const DEFAULT_CAUSAL_WAIT_MS = 5000;

/**
 * A live session over one Subscribe stream, kept alive across failures.
 * What the stream brings goes through RoomDelivery (room-delivery.ts): the
 * application sees each room's messages in order, exactly once, after their
 * causal dependencies; holes are filled from history; loss and lineage
 * changes surface as `reset` events, never as silent gaps.
 */
export class Subscription {
  /** State and listeners (subscription-events.ts). */
  private readonly events = new SubscriptionEvents();
  private readonly rooms = new Set<string>();
  private readonly filters = new Map<string, string>();
  /** From the stream to the application, room by room (room-delivery.ts). */
  private readonly delivery: RoomDelivery;
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
  /** Online or away, and the idle clock (own-presence.ts). */
  private readonly own: OwnPresence;
  /** Who is in each room held by name (not via a pattern), kept from the stream. */
  private readonly present = new PresenceView();
  private userValue: string | undefined;

  constructor(
    private readonly client: SeqcastClient,
    rooms: string[],
    private readonly options: SubscriptionOptions,
  ) {
    this.own = new OwnPresence((state) => this.sendPresence(state), options.awayAfterMs, () => this.events.closed);
    this.acks = new AckBatcher(options.ackIntervalMs ?? 50, (acks) => this.sendAcks(acks));
    this.delivery = new RoomDelivery(
      {
        filter: (room) => this.filters.get(room),
        history: (room, query) => this.client.history(room, query),
        release: (room, output) => this.release(room, output),
        backlog: (room, messages) => this.events.emit({ type: "backlog", room, messages }),
        warn: (error) => this.events.emit({ type: "warning", error }),
      },
      {
        gapFillDelayMs: options.gapFillDelayMs ?? 200,
        causalWaitMs: options.causalWaitMs ?? DEFAULT_CAUSAL_WAIT_MS,
        causalClock: options.causalClock,
        causalPlaces: client.causalPlaces,
      },
    );
    for (const room of rooms) this.rooms.add(room);
    for (const [room, filter] of Object.entries(options.filters ?? {})) this.filters.set(room, filter);
    for (const [room, position] of Object.entries(options.since ?? {})) this.delivery.track(room, position);
  }

  get state(): SubscriptionState {
    return this.events.state;
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
    return this.delivery.positions();
  }

  on(listener: SubscriptionListener): () => void {
    return this.events.on(listener);
  }

  /** Resolves when the subscription reaches `state` (or rejects if it closes first). */
  waitFor(state: SubscriptionState): Promise<void> {
    return this.events.waitFor(state);
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
        { sessionId, rooms: [{ room, since: this.delivery.position(room), filter: this.filters.get(room) }] },
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
    this.present.forget(room);
    this.delivery.forget(room);
    // Leaving a pattern forgets the rooms it alone brought in.
    if (isPattern(room)) for (const held of [...this.delivery.rooms()]) if (!this.holds(held)) this.delivery.forget(held);
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
    const position = this.delivery.position(room);
    if (!position) return;
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
      this.events.emit({ type: "warning", error: ConnectError.from(error) });
    }
    return true;
  }

  /**
   * Sets this session's presence state in its rooms (online or away). Saying
   * what is already so sends nothing: every call would be an update event
   * for everyone in those rooms.
   */
  async setPresence(state: "online" | "away"): Promise<void> {
    await this.own.set(state);
  }

  /** The user did something: back online if away, and the idle clock restarts. */
  markActive(): void {
    this.own.markActive();
  }

  private async sendPresence(state: OwnState): Promise<void> {
    const sessionId = this.sessionIdValue;
    if (!sessionId) return; // sent when the next session starts
    try {
      await this.client.rpc.setPresence(
        { sessionId, state: state === "online" ? PresenceState.ONLINE : PresenceState.AWAY },
      );
    } catch (error) {
      this.events.emit({ type: "warning", error: ConnectError.from(error) });
    }
  }

  /** Ends the session for good; the broker sends presence leaves at once. */
  async close(): Promise<void> {
    this.own.stop();
    await this.acks.flush();
    // Say goodbye, so the leaves are not held back for the reconnect grace period.
    const sessionId = this.sessionIdValue;
    if (sessionId && this.rooms.size > 0)
      await this.client.rpc
        .leave({ sessionId, rooms: [...this.rooms] }, { timeoutMs: 1000 })
        .catch(() => {});
    if (!this.events.closed) this.events.setState(SubscriptionState.Closed, "closed by the application");
    this.closed.abort();
    this.stream?.abort();
    this.delivery.close();
    clearTimeout(this.watchdog);
    await this.running;
  }

  // ---- connection loop --------------------------------------------------

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.events.closed) {
      const stream = new AbortController();
      this.stream = stream;
      let failure: ConnectError;
      try {
        this.requested = new Set(this.rooms);
        this.delivery.streamStarted();
        const responses = this.client.rpc.subscribe(
          {
            rooms: [...this.requested].map((room) => ({
              room,
              since: this.delivery.position(room),
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
      if (this.events.closed) return;
      // Our own abort (watchdog) is a dead connection: retry like any network failure.
      if (!stream.signal.aborted && !isRetryable(failure, this.client.retryContext)) {
        this.events.setState(SubscriptionState.Closed, failure.rawMessage, failure);
        return;
      }
      this.events.setState(SubscriptionState.Reconnecting, failure.rawMessage, failure);
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
        this.own.sessionStarted();
        this.heartbeatMs = e.value.heartbeatIntervalMs;
        this.feedWatchdog();
        this.events.setState(SubscriptionState.Connected, "session started");
        // Rooms joined while this stream's request was already on its way.
        for (const room of this.rooms)
          if (!this.requested.has(room))
            this.join(room).catch((error) => this.events.emit({ type: "warning", error: ConnectError.from(error) }));
        return;
      case "subscribed": {
        const { room, position, recovered, resumedFrom, pattern } = e.value;
        if (!position) return;
        if (isPattern(room)) {
          if (this.rooms.has(room)) this.events.emit({ type: "subscribed", room, epoch: "", sequence: 0n, recovered: false, present: [] });
          return;
        }
        if (!this.holds(room)) return;
        const known = this.delivery.tracks(room);
        // A room matched again after a reconnect: the buffer keeps its place and
        // fills whatever the outage hid from history (a loss is reported).
        if (known && pattern) return;
        // A first subscription starts where the replay (if any) starts, else live.
        if (!known) this.delivery.track(room, recovered && resumedFrom ? resumedFrom : position);
        // The broker's list replaces ours: after a reconnect it is all that is true.
        if (!pattern) this.present.reset(room, e.value.present);
        this.events.emit({ type: "subscribed", room, epoch: position.epoch, sequence: position.sequence, recovered, present: this.present.list(room) });
        if (known) this.delivery.rebase(room, position, recovered);
        else {
          const backlog = this.options.backlog ?? 0;
          if (!recovered && !pattern && backlog > 0 && position.sequence > 0n) this.delivery.fetchBacklog(room, position, backlog);
          // A durable subscriber starting afresh starts here: without an ack of this point its next run would
          // start afresh again (and show the same backlog), however long it had been running.
          if (!recovered && position.sequence > 0n && this.options.subscriber !== undefined && this.options.ack !== "manual")
            this.acks.queue(room, { epoch: position.epoch, sequence: position.sequence });
        }
        return;
      }
      case "message":
        // Delivery tracks exactly the rooms held (leave() forgets them): no pattern matching per message.
        this.delivery.message(e.value);
        return;
      case "presence":
        return this.presenceChanged(e.value);
      case "presenceChanges":
        // Several changes of one room batched by the broker: the same as each on its own, in order.
        for (const change of e.value.changes) this.presenceChanged(change);
        return;
      case "unsubscribed":
        this.events.emit({ type: "unsubscribed", room: e.value.room });
        return;
      case "watermark":
        this.delivery.watermark(e.value.room, { epoch: e.value.epoch, sequence: e.value.sequence }, e.value.afterSequence);
        return;
      case "reset":
        if (e.value.position) this.delivery.rebase(e.value.room, e.value.position, false);
        return;
      case "heartbeat":
      case undefined:
        return;
    }
  }

  private presenceChanged(change: PresenceEvent): void {
    const kind = PRESENCE_KINDS[change.kind];
    const { room, entry } = change;
    if (kind && entry && this.holds(room) && this.present.apply(room, kind, entry)) this.events.emit({ type: "presence", room, kind, entry });
  }

  // ---- events -----------------------------------------------------------

  /** What the causal gate lets through, in order. */
  private release(room: string, out: GateRelease<Message>): void {
    if (out.type === "deliver") {
      const message = out.item;
      this.client.causal.observe(room, message.epoch, message.sequence);
      if (out.unmet.length > 0) this.events.emit({ type: "message", room, message, unmetDependencies: out.unmet });
      else this.events.emit({ type: "message", room, message });
      // Listeners have returned: the message is processed.
      if (this.options.subscriber !== undefined && this.options.ack !== "manual")
        this.acks.queue(room, { epoch: message.epoch, sequence: message.sequence });
    } else
      this.events.emit({
        type: "reset",
        room,
        reason: out.reason,
        epoch: out.position.epoch,
        sequence: out.position.sequence,
        skipped: out.skipped,
      });
  }
}
