import { Code, ConnectError } from "@connectrpc/connect";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import type { HistoryOptions, HistoryResult } from "./client.js";
import { ReorderBuffer, type ReorderOutput } from "./reorder-buffer.js";
import { BacklogGate } from "./backlog-gate.js";
import { CausalGate, type CausalPlaces, type GateClock, type GateRelease } from "./causal-gate.js";
import { expandDependencies } from "./dependency-refs.js";
import { HistoryFill } from "./history-fill.js";

const NO_REFS = new Uint8Array(0);

/** GetHistory returns at most this many messages per call. */
const MAX_BACKLOG = 1000;

type Place = { epoch: string; sequence: bigint };

/** What a subscription's delivery needs from the subscription (room filters, history reads) and hands back to it. */
export interface DeliveryHost {
  filter(room: string): string | undefined;
  history(room: string, options: HistoryOptions): Promise<HistoryResult>;
  /** What leaves the causal gate, in order: a message the application may see now, or a reset. */
  release(room: string, output: GateRelease<Message>): void;
  /** The last messages before a room's first subscription, ahead of anything live of it. */
  backlog(room: string, messages: Message[]): void;
  warn(error: ConnectError): void;
}

export interface DeliveryOptions {
  gapFillDelayMs: number;
  causalWaitMs: number;
  causalClock?: GateClock;
  /** Rooms held and positions released by every subscription of the client (their gates wait on each other's rooms). */
  causalPlaces?: CausalPlaces;
}

/**
 * The path of one subscription's messages from its stream to the
 * application, room by room: the reorder buffer (each room in order, exactly
 * once, holes read from history), the backlog gate (a room's backlog before
 * its live messages) and the causal gate (a message after its dependencies
 * in the rooms held). The Subscription owns the connection and the session
 * and feeds this what the stream brings; a room has a buffer here exactly
 * while it is held, so a message of any other room is dropped on arrival.
 */
export class RoomDelivery {
  private readonly buffers = new Map<string, ReorderBuffer<Message>>();
  /** Per room, the newest message the current stream sent: compact dependencies are refs into its list. */
  private readonly streamLast = new Map<string, Message>();
  /** Holes and causal dependencies read from history (history-fill.ts). */
  private readonly fills: HistoryFill;
  /** Rooms whose live output waits for their backlog (see fetchBacklog). */
  private readonly backlogs = new BacklogGate<ReorderOutput<Message>>();
  /** Between the rooms' ordered outputs and the application: causal order across rooms (causal-gate.ts). */
  private readonly gate: CausalGate<Message>;

  constructor(
    private readonly host: DeliveryHost,
    options: DeliveryOptions,
  ) {
    this.fills = new HistoryFill(
      {
        buffer: (room) => this.buffers.get(room),
        filter: (room) => host.filter(room),
        history: (room, query) => host.history(room, query),
        output: (room, outputs) => this.output(room, outputs),
        reached: (room, buffer) => this.gate.reached(room, buffer.position),
        warn: (error) => host.warn(error),
      },
      options.gapFillDelayMs,
    );
    this.gate = new CausalGate<Message>({
      maxWaitMs: options.causalWaitMs,
      clock: options.causalClock,
      places: options.causalPlaces,
      need: (dependency) => this.fills.need(dependency),
      release: (room, output) => host.release(room, output),
    });
  }

  /** Starts delivering `room` after `position`; the causal gate counts everything up to it as passed. */
  track(room: string, position: Place): void {
    this.buffers.set(room, new ReorderBuffer<Message>(position));
    this.gate.track(room, position);
  }

  /** Whether `room` is delivered (it has a buffer). */
  tracks(room: string): boolean {
    return this.buffers.has(room);
  }

  /** The last position delivered of `room` (what a resume starts from). */
  position(room: string): Place | undefined {
    return this.buffers.get(room)?.position;
  }

  positions(): Map<string, Place> {
    return new Map([...this.buffers].map(([room, buffer]) => [room, buffer.position]));
  }

  rooms(): IterableIterator<string> {
    return this.buffers.keys();
  }

  /** A new stream: its compact dependencies point only into what it sends itself. */
  streamStarted(): void {
    this.streamLast.clear();
  }

  /** The room subscribed again at `position` (a reconnect): the buffer keeps its place, or reports a loss or a new lineage. */
  rebase(room: string, position: Place, recovered: boolean): void {
    const buffer = this.buffers.get(room);
    if (buffer) this.output(room, buffer.rebase(position, recovered));
  }

  /** A message from the stream (dropped unless its room is delivered). */
  message(message: Message): void {
    const buffer = this.buffers.get(message.room);
    if (!buffer) return;
    this.output(message.room, buffer.push(this.wholeDependencies(message)));
    this.fills.scheduleGap(message.room);
  }

  /** The broker's filter passed over everything of `room` up to `position` (after `after`). */
  watermark(room: string, position: Place, after: bigint): void {
    const buffer = this.buffers.get(room);
    if (!buffer) return;
    this.output(room, buffer.skipThrough(position, after));
    // What the filter removed counts as passed for messages that depend on it.
    this.gate.reached(room, buffer.position);
  }

  /**
   * The last messages before a room's first subscription (at `position`),
   * emitted as one backlog ahead of anything live of the room: what it
   * delivers meanwhile is held back, so the application sees the room in order.
   */
  fetchBacklog(room: string, position: Place, limit: number): void {
    const fetch = async () => {
      try {
        const page = await this.host.history(room, {
          before: position.sequence + 1n,
          limit: Math.min(limit, MAX_BACKLOG),
          direction: "backward",
          filter: this.host.filter(room),
        });
        if (!this.backlogs.isHolding(room) || page.epoch !== position.epoch) return;
        const messages = page.messages.filter((m) => m.sequence <= position.sequence);
        if (messages.length > 0) this.host.backlog(room, messages);
      } catch (error) {
        this.host.warn(ConnectError.from(error));
      }
    };
    this.backlogs.hold(room, fetch, (held) => this.output(room, held));
  }

  /** The room is no longer held: nothing of it is delivered, filled or waited for any more. */
  forget(room: string): void {
    this.buffers.delete(room);
    this.streamLast.delete(room);
    this.backlogs.drop(room);
    this.gate.forget(room);
    this.fills.forget(room);
  }

  close(): void {
    this.fills.close();
    this.gate.close();
  }

  private output(room: string, outputs: ReorderOutput<Message>[]): void {
    if (this.backlogs.offer(room, outputs)) return;
    this.gate.push(room, outputs);
  }

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
        this.host.warn(
          new ConnectError(`room ${room}: the compact dependencies of ${message.sequence} do not fit the message before it; it waits only for those it names`, Code.DataLoss),
        );
      message.dependencyRefs = NO_REFS;
      message.sameDependencies = false;
    }
    // Redeliveries of older messages come whole and leave the newest in place.
    if (!before || before.epoch !== message.epoch || before.sequence < message.sequence) this.streamLast.set(room, message);
    return message;
  }
}
