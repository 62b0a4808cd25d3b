import type { ReorderOutput } from "./reorder-buffer.js";
import { unref } from "./timers.js";

/**
 * The causal gate: between the per-room ordered streams (one ReorderBuffer
 * per room) and the application. A message is released only after every
 * dependency it carries (Message.dependencies) in a room this subscription
 * holds has been released; a room's outputs keep their order (a held
 * message holds back the rest of its room, never another room).
 *
 * What counts as met, for a dependency (room, epoch, sequence):
 * - a room not held by the subscription: ignored (it can never arrive);
 * - the message's own room: met, per-room order already gives it;
 * - a held room whose released position is at or past it in the same epoch
 *   (messages before a room's subscription started count as passed: they
 *   will never be delivered, and a `reset` that skipped them passed them).
 * Anything else waits: the owner is asked (`need`) to fetch it from history,
 * since a delayed room stream may not even know it is behind. After
 * `maxWaitMs` from its arrival the message is released anyway, with the
 * dependencies still unmet: a trimmed or cleared dependency, or one in a
 * room the subscriber cannot read, never stalls it forever.
 *
 * Pure bookkeeping apart from the one timer of the earliest deadline; time
 * comes from an injectable clock so tests move it.
 */

export interface Dependency {
  room: string;
  epoch: string;
  sequence: bigint;
}

/** What the gate reads of a message. seqcast.v1.Message has this shape. */
export interface CausalItem {
  room: string;
  epoch: string;
  sequence: bigint;
  dependencies: readonly Dependency[];
}

export interface GateClock {
  now(): number;
  /** Runs `callback` once after `ms`; returns a function that cancels it. */
  setTimeout(callback: () => void, ms: number): () => void;
}

export const systemGateClock: GateClock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const timer = unref(setTimeout(callback, ms));
    return () => clearTimeout(timer);
  },
};

export type GateRelease<T> =
  /** `unmet` is empty unless the message was released after the wait with these dependencies still undelivered. */
  | { type: "deliver"; item: T; unmet: Dependency[] }
  | Extract<ReorderOutput<T>, { type: "reset" }>;

export interface CausalGateOptions<T> {
  /** How long a message may wait for its dependencies (ms) before it is released anyway. */
  maxWaitMs: number;
  clock?: GateClock;
  /** Whether the subscription holds `room` (dependencies elsewhere are ignored). */
  holds(room: string): boolean;
  /** A waiting message needs `dependency`, which its room's stream has not brought yet: fetch it if possible. */
  need(dependency: Dependency): void;
  /** Everything leaves through here, in causal order. */
  release(room: string, output: GateRelease<T>): void;
}

interface Waiting<T> {
  output: ReorderOutput<T>;
  deadline: number;
  /** need() was called for its unmet dependencies. */
  asked: boolean;
}

interface Place {
  epoch: string;
  sequence: bigint;
}

export class CausalGate<T extends CausalItem> {
  /** Per room, the last position released (or where the room's delivery starts). */
  private readonly places = new Map<string, Place>();
  /** Per room, outputs waiting behind a message whose dependencies are unmet; absent when none wait. */
  private readonly queues = new Map<string, Waiting<T>[]>();
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;
  private readonly clock: GateClock;

  constructor(private readonly options: CausalGateOptions<T>) {
    this.clock = options.clock ?? systemGateClock;
  }

  /** Where `room`'s delivery starts (a new ReorderBuffer's position): anything up to it counts as passed. */
  track(room: string, start: Place): void {
    if (!this.places.has(room)) this.places.set(room, { epoch: start.epoch, sequence: start.sequence });
  }

  /** The room was left: what waited in it is dropped, and dependencies on it are ignored from now on. */
  forget(room: string): void {
    this.places.delete(room);
    this.queues.delete(room);
    this.pump();
  }

  /** Messages waiting, all rooms together (for tests and metrics). */
  get waitingCount(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  /** A room's ordered outputs (ReorderBuffer's), in order. */
  push(room: string, outputs: ReorderOutput<T>[]): void {
    if (outputs.length === 0) return;
    const queue = this.queues.get(room);
    if (queue) {
      const deadline = this.clock.now() + this.options.maxWaitMs;
      for (const output of outputs) queue.push({ output, deadline, asked: false });
      this.pump();
      return;
    }
    // The hot path: nothing of the room waits; release what is met, queue from the first that is not.
    let released = false;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs[i]!;
      if (output.type === "deliver" && output.item.dependencies.length > 0 && this.unmet(output.item).length > 0) {
        const deadline = this.clock.now() + this.options.maxWaitMs;
        this.queues.set(room, outputs.slice(i).map((o) => ({ output: o, deadline, asked: false })));
        this.pump();
        return;
      }
      this.pass(room, output, []);
      released = true;
    }
    if (released && this.queues.size > 0) this.pump();
  }

  /** Re-examines every waiting room: after a release, a fetch, or the deadline timer. */
  pump(): void {
    const now = this.clock.now();
    let progress = true;
    while (progress) {
      progress = false;
      for (const [room, queue] of this.queues) {
        while (queue.length > 0) {
          const head = queue[0]!;
          const unmet = head.output.type === "deliver" ? this.unmet(head.output.item) : [];
          if (unmet.length > 0 && head.deadline > now) {
            if (!head.asked) {
              head.asked = true;
              for (const dependency of unmet) this.options.need(dependency);
            }
            break;
          }
          queue.shift();
          this.pass(room, head.output, unmet);
          progress = true;
          // A listener may have left the room (or several) meanwhile.
          if (this.queues.get(room) !== queue) break;
        }
        if (queue.length === 0 && this.queues.get(room) === queue) this.queues.delete(room);
      }
    }
    this.armTimer();
  }

  /** Stops the timer; nothing is released afterwards unless pushed again. */
  close(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Infinity;
    this.queues.clear();
  }

  private pass(room: string, output: ReorderOutput<T>, unmet: Dependency[]): void {
    if (output.type === "deliver") {
      this.places.set(room, { epoch: output.item.epoch, sequence: output.item.sequence });
      this.options.release(room, { type: "deliver", item: output.item, unmet });
    } else {
      this.places.set(room, { epoch: output.position.epoch, sequence: output.position.sequence });
      this.options.release(room, output);
    }
  }

  private unmet(item: T): Dependency[] {
    let unmet: Dependency[] | undefined;
    for (const dependency of item.dependencies) {
      if (dependency.room === item.room || !this.options.holds(dependency.room)) continue;
      const place = this.places.get(dependency.room);
      if (place && place.epoch === dependency.epoch && place.sequence >= dependency.sequence) continue;
      (unmet ??= []).push(dependency);
    }
    return unmet ?? NONE;
  }

  /** One timer, at the earliest deadline of a waiting head (heads of a room arrive in order, so theirs is the room's earliest). */
  private armTimer(): void {
    let earliest = Infinity;
    for (const queue of this.queues.values()) if (queue[0] && queue[0].deadline < earliest) earliest = queue[0].deadline;
    if (earliest === this.timerAt) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = earliest;
    if (earliest === Infinity) return;
    this.cancelTimer = this.clock.setTimeout(
      () => {
        this.cancelTimer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, earliest - this.clock.now()),
    );
  }
}

const NONE: Dependency[] = [];
