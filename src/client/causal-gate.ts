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
 * "Held" and "released" are the client's, not one subscription's: every
 * subscription of a SeqcastClient shares one CausalPlaces, so a private
 * message on an inbox subscription waits for a room delivered by another
 * subscription of the same client (as `seqcast chat` has them).
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
  /** Rooms held and positions released, shared by the gates of one client (default: this gate's own). */
  places?: CausalPlaces;
  /** A waiting message needs `dependency`, which its room's stream has not brought yet: fetch it if possible. */
  need(dependency: Dependency): void;
  /** Everything leaves through here, in causal order. */
  release(room: string, output: GateRelease<T>): void;
}

interface Waiting<T> {
  /** An output of the room, or the point its buffer had reached without output (a filter's watermark). */
  output: ReorderOutput<T> | { type: "reached"; position: Place };
  deadline: number;
  /** need() was called for its unmet dependencies. */
  asked: boolean;
}

interface Place {
  epoch: string;
  sequence: bigint;
}

/**
 * Which rooms a client holds (counted: several subscriptions may hold one)
 * and, per room, the furthest position delivered to the application: what
 * every gate of the client checks dependencies against.
 */
export class CausalPlaces {
  private readonly places = new Map<string, Place>();
  private readonly holders = new Map<string, number>();
  private readonly gates = new Set<{ pump(): void; readonly waitingCount: number }>();

  holds(room: string): boolean {
    return this.holders.has(room);
  }

  get(room: string): Place | undefined {
    return this.places.get(room);
  }

  /** A gate holds `room` (its starting position comes through advance()). */
  hold(room: string): void {
    this.holders.set(room, (this.holders.get(room) ?? 0) + 1);
  }

  /** A gate no longer holds `room`. */
  drop(room: string): void {
    const n = (this.holders.get(room) ?? 0) - 1;
    if (n > 0) return void this.holders.set(room, n);
    this.holders.delete(room);
    this.places.delete(room);
  }

  /** `room` was delivered up to `place` (or starts there): positions move forward within an epoch; another epoch replaces. */
  advance(room: string, place: Place): void {
    const known = this.places.get(room);
    if (known && known.epoch === place.epoch && known.sequence >= place.sequence) return;
    this.places.set(room, { epoch: place.epoch, sequence: place.sequence });
  }

  attach(gate: { pump(): void; readonly waitingCount: number }): void {
    this.gates.add(gate);
  }

  detach(gate: { pump(): void; readonly waitingCount: number }): void {
    this.gates.delete(gate);
  }

  /** Something was released by `from`: the client's other gates re-examine what waits. */
  notify(from: object): void {
    for (const gate of this.gates) if (gate !== from && gate.waitingCount > 0) gate.pump();
  }
}

export class CausalGate<T extends CausalItem> {
  /** Rooms held and positions released, of the whole client. */
  private readonly places: CausalPlaces;
  /** Rooms this gate holds. */
  private readonly own = new Set<string>();
  private pumping = false;
  private pumpAgain = false;
  /** Per room, outputs waiting behind a message whose dependencies are unmet; absent when none wait. */
  private readonly queues = new Map<string, Waiting<T>[]>();
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;
  private readonly clock: GateClock;

  constructor(private readonly options: CausalGateOptions<T>) {
    this.clock = options.clock ?? systemGateClock;
    this.places = options.places ?? new CausalPlaces();
    this.places.attach(this);
  }

  /** Where `room`'s delivery starts (a new ReorderBuffer's position): anything up to it counts as passed. */
  track(room: string, start: Place): void {
    if (!this.own.has(room)) {
      this.own.add(room);
      this.places.hold(room);
    }
    this.places.advance(room, start);
  }

  /** The room was left: what waited in it is dropped, and dependencies on it are ignored from now on. */
  forget(room: string): void {
    this.queues.delete(room);
    if (this.own.delete(room)) {
      this.places.drop(room);
      this.pump();
      this.places.notify(this);
    }
  }

  /**
   * The room's buffer moved to `position` without delivering (a filter
   * removed what lay between): dependencies up to it are passed, once
   * everything the room output before it is released.
   */
  reached(room: string, position: Place): void {
    const queue = this.queues.get(room);
    if (queue) {
      queue.push({ output: { type: "reached", position }, deadline: this.clock.now(), asked: true });
      return;
    }
    if (!this.own.has(room)) return;
    this.places.advance(room, position);
    if (this.queues.size > 0) this.pump();
    this.places.notify(this);
  }

  /** Messages waiting, all rooms together (for tests and metrics). */
  get waitingCount(): number {
    let n = 0;
    for (const queue of this.queues.values()) for (const waiting of queue) if (waiting.output.type !== "reached") n++;
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
    if (released) {
      if (this.queues.size > 0) this.pump();
      this.places.notify(this);
    }
  }

  /** Re-examines every waiting room: after a release, a fetch, the deadline timer, or another gate's release. */
  pump(): void {
    // A listener (or another gate) may call back in while we release: loop here instead of nesting.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    let releasedAny = false;
    try {
      do {
        this.pumpAgain = false;
        releasedAny = this.pumpOnce() || releasedAny;
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
    this.armTimer();
    if (releasedAny) this.places.notify(this);
  }

  private pumpOnce(): boolean {
    const now = this.clock.now();
    let releasedAny = false;
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
          releasedAny = true;
          // A listener may have left the room (or several) meanwhile.
          if (this.queues.get(room) !== queue) break;
        }
        if (queue.length === 0 && this.queues.get(room) === queue) this.queues.delete(room);
      }
    }
    return releasedAny;
  }

  /** Stops the timer and lets go of the rooms; nothing is released afterwards. */
  close(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Infinity;
    this.queues.clear();
    for (const room of this.own) this.places.drop(room);
    this.own.clear();
    this.places.detach(this);
    this.places.notify(this);
  }

  private pass(room: string, output: Waiting<T>["output"], unmet: Dependency[]): void {
    if (output.type === "reached") {
      this.places.advance(room, output.position);
      return;
    }
    if (output.type === "deliver") {
      this.places.advance(room, output.item);
      this.options.release(room, { type: "deliver", item: output.item, unmet });
    } else {
      // A reset moves the room on (a new epoch replaces the old position).
      this.places.advance(room, output.position);
      this.options.release(room, output);
    }
  }

  private unmet(item: T): Dependency[] {
    let unmet: Dependency[] | undefined;
    for (const dependency of item.dependencies) {
      if (dependency.room === item.room || !this.places.holds(dependency.room)) continue;
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
