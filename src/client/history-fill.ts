import { ConnectError } from "@connectrpc/connect";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import type { HistoryOptions, HistoryResult } from "./client.js";
import type { Dependency } from "./causal-gate.js";
import type { ReorderBuffer, ReorderOutput } from "./reorder-buffer.js";
import { unref, type Timer } from "./timers.js";

/** What filling rooms from history uses of their subscription (subscription.ts). */
export interface FillHost {
  /** The room's reorder buffer; a different one (or none) once the room was left or joined again. */
  buffer(room: string): ReorderBuffer<Message> | undefined;
  filter(room: string): string | undefined;
  history(room: string, options: HistoryOptions): Promise<HistoryResult>;
  /** Hands the room's ordered outputs on, towards the application. */
  output(room: string, outputs: ReorderOutput<Message>[]): void;
  /** Everything up to the buffer's position counts as passed for causal order (what a filter removed, too). */
  reached(room: string, buffer: ReorderBuffer<Message>): void;
  warn(error: ConnectError): void;
}

/**
 * What a subscription reads from history besides its backlog: the holes of
 * a room's stream (a message missing for gapFillDelayMs), and the causal
 * dependencies the gate waits for that the room's stream has not brought
 * yet. Both read forward, in pages of up to 1,000, into the room's reorder
 * buffer, so whichever of stream and history brings a message first
 * delivers it and the other is dropped as a duplicate.
 */
export class HistoryFill {
  private readonly gapTimers = new Map<string, Timer>();
  private readonly filling = new Set<string>();
  /** Per room, the furthest dependency the gate waits for that the room's stream has not brought (see need). */
  private readonly wanted = new Map<string, Dependency>();
  private readonly fetchingDependencies = new Set<string>();

  constructor(
    private readonly host: FillHost,
    private readonly gapFillDelayMs: number,
  ) {}

  /** After the stream brought a message: a hole in the room that stays open for gapFillDelayMs is read from history. */
  scheduleGap(room: string): void {
    const buffer = this.host.buffer(room);
    if (!buffer?.missing() || this.gapTimers.has(room) || this.filling.has(room)) return;
    const timer = unref(
      setTimeout(() => {
        this.gapTimers.delete(room);
        void this.fillGap(room);
      }, this.gapFillDelayMs),
    );
    this.gapTimers.set(room, timer);
  }

  /**
   * The gate holds a message for `dependency`, in a room whose stream has
   * not brought it (a slow link, a delayed stream, a reconnect): read it
   * from history now rather than wait for the stream. Only within the
   * room's current epoch; anything else (another epoch, trimmed, a room
   * still joining) is left to the stream and, at worst, the gate's wait.
   */
  need(dependency: Dependency): void {
    const known = this.wanted.get(dependency.room);
    if (!known || known.epoch !== dependency.epoch || known.sequence < dependency.sequence) this.wanted.set(dependency.room, dependency);
    if (!this.fetchingDependencies.has(dependency.room)) void this.fetchDependencies(dependency.room);
  }

  /** The room was left: no hole of it is filled any more. */
  forget(room: string): void {
    clearTimeout(this.gapTimers.get(room));
    this.gapTimers.delete(room);
  }

  close(): void {
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
  }

  private async fillGap(room: string): Promise<void> {
    const buffer = this.host.buffer(room);
    const missing = buffer?.missing();
    if (!buffer || !missing) return;
    this.filling.add(room);
    try {
      await this.fill(room, buffer, missing.after, missing.before, missing.epoch);
    } catch (error) {
      this.host.warn(ConnectError.from(error));
    } finally {
      this.filling.delete(room);
    }
    this.scheduleGap(room);
  }

  private async fetchDependencies(room: string): Promise<void> {
    this.fetchingDependencies.add(room);
    try {
      for (;;) {
        const buffer = this.host.buffer(room);
        const wanted = this.wanted.get(room);
        if (!buffer || !wanted || buffer.position.epoch !== wanted.epoch || buffer.position.sequence >= wanted.sequence) break;
        const from = buffer.position.sequence;
        const epoch = await this.fill(room, buffer, from, wanted.sequence + 1n, wanted.epoch);
        if (epoch === undefined) break;
        this.scheduleGap(room);
        // No progress (nothing retained, a filter, another epoch): the gate's wait bounds it.
        if (buffer.position.sequence === from || epoch !== wanted.epoch) break;
      }
    } catch (error) {
      this.host.warn(ConnectError.from(error));
    } finally {
      this.fetchingDependencies.delete(room);
      this.wanted.delete(room);
    }
  }

  /**
   * Reads the sequences between `after` and `before` (both exclusive) of
   * the room's `epoch` into its buffer. With a filter the broker returns
   * only matches: when the page covers the whole range, the rest was
   * filtered, not lost, and the buffer skips through it. Returns the page's
   * epoch, or undefined when the room's buffer changed meanwhile.
   */
  private async fill(room: string, buffer: ReorderBuffer<Message>, after: bigint, before: bigint, epoch: string): Promise<string | undefined> {
    const filter = this.host.filter(room);
    const page = await this.host.history(room, { after, before, limit: 1000, filter });
    if (this.host.buffer(room) !== buffer) return undefined;
    this.host.output(room, buffer.fill({ items: page.messages, epoch: page.epoch, firstSequence: page.firstSequence }));
    if (filter && !page.hasMore && page.epoch === epoch && page.firstSequence <= after + 1n) {
      this.host.output(room, buffer.skipThrough({ epoch, sequence: before - 1n }));
      this.host.reached(room, buffer);
    }
    return page.epoch;
  }
}
