/**
 * Per-room reorder buffer: the piece that turns at-least-once, possibly
 * reordered delivery on the wire into "in order, exactly once" for the
 * application.
 *
 * Pure and synchronous: no timers, no I/O. The owner feeds it messages as
 * they arrive (push), asks which hole to fill (missing), feeds it the
 * history it fetched (fill), and re-anchors it when the broker says where a
 * (re)subscription starts (rebase). Every call returns what became
 * deliverable, in order.
 *
 * Guarantees, per buffer:
 * - items are delivered in increasing sequence, each sequence at most once,
 *   and without a hole: between two delivered items of one epoch there is
 *   either nothing or a `reset` output that says why;
 * - items of another epoch are never mixed into the current lineage: a new
 *   epoch first produces a `reset`, and epochs once left are ignored;
 * - epoch "" means the room had no lineage yet (it was read or joined before
 *   its first publish): the first real epoch seen after it is adopted without
 *   a reset, since a lineage starts at sequence 1 and nothing of it was missed.
 */

export interface Sequenced {
  epoch: string;
  sequence: bigint;
}

export interface BufferPosition {
  epoch: string;
  /** Last sequence delivered (or skipped over by a reset); 0n before the first. */
  sequence: bigint;
}

export type ResetReason =
  /** The room's lineage changed (history cleared, broker store reset). */
  | "epoch_changed"
  /** Messages existed that can no longer be fetched (history trimmed). */
  | "lost";

export type ReorderOutput<T> =
  | { type: "deliver"; item: T }
  | {
      type: "reset";
      reason: ResetReason;
      /** Delivery continues after this position; everything before is stale or gone. */
      position: BufferPosition;
      /** For "lost" within one epoch: how many sequences were skipped. */
      skipped: bigint;
    };

export interface HistoryFill<T> {
  /** Messages returned by the history query, any order. */
  items: T[];
  /** The room's epoch according to the history response. */
  epoch: string;
  /** Oldest sequence the broker still retains; 0n if none. */
  firstSequence: bigint;
}

export class ReorderBuffer<T extends Sequenced> {
  private epoch: string;
  private delivered: bigint;
  private readonly held = new Map<bigint, T>();
  /** Filtered runs announced ahead of time: after sequence k, skip to v. */
  private readonly skips = new Map<bigint, bigint>();
  private readonly retiredEpochs = new Set<string>();
  /** Items dropped as duplicates or stale, for metrics and tests. */
  droppedCount = 0;

  constructor(start: BufferPosition) {
    this.epoch = start.epoch;
    this.delivered = start.sequence;
  }

  get position(): BufferPosition {
    return { epoch: this.epoch, sequence: this.delivered };
  }

  get heldCount(): number {
    return this.held.size;
  }

  /**
   * The hole that holds delivery back: sequences in (after, before) are
   * missing while `before` is already held. Undefined when nothing is held.
   */
  missing(): { epoch: string; after: bigint; before: bigint } | undefined {
    if (this.held.size === 0) return undefined;
    return { epoch: this.epoch, after: this.delivered, before: this.minHeld() };
  }

  /** A message arrived from the stream (or anywhere else). */
  push(item: T): ReorderOutput<T>[] {
    const out: ReorderOutput<T>[] = [];
    this.accept(item, out);
    return out;
  }

  /**
   * History fetched for `missing()` arrived. Whatever it cannot supply any
   * more (older than firstSequence) is declared lost with a reset, and
   * delivery continues after it.
   */
  fill(fill: HistoryFill<T>): ReorderOutput<T>[] {
    const out: ReorderOutput<T>[] = [];
    this.adoptFirstEpoch(fill.epoch);
    if (fill.epoch !== this.epoch) {
      if (this.retiredEpochs.has(fill.epoch)) return out;
      this.switchEpoch(fill.epoch, 0n, out);
    }
    for (const item of [...fill.items].sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0)))
      this.accept(item, out);
    if (this.held.size > 0) {
      const next = this.delivered + 1n;
      const retained = fill.firstSequence === 0n ? this.minHeld() : fill.firstSequence;
      if (retained > next) {
        const resumeAfter = (retained < this.minHeld() ? retained : this.minHeld()) - 1n;
        const skipped = resumeAfter - this.delivered;
        this.delivered = resumeAfter;
        out.push({ type: "reset", reason: "lost", position: this.position, skipped });
        this.drain(out);
      }
    }
    return out;
  }

  /**
   * The broker (re)started this room's subscription at `position`.
   * `recovered` says whether it replays everything after our own position;
   * if not, whatever lies between is lost and a reset says so.
   */
  rebase(position: BufferPosition, recovered: boolean): ReorderOutput<T>[] {
    const out: ReorderOutput<T>[] = [];
    this.adoptFirstEpoch(position.epoch);
    if (recovered && position.epoch === this.epoch) return out;
    if (position.epoch !== this.epoch) {
      this.switchEpoch(position.epoch, position.sequence, out);
    } else if (position.sequence > this.delivered) {
      const skipped = position.sequence - this.delivered;
      this.delivered = position.sequence;
      for (const seq of [...this.held.keys()]) if (seq <= this.delivered) this.held.delete(seq);
      out.push({ type: "reset", reason: "lost", position: this.position, skipped });
    }
    this.drain(out);
    return out;
  }

  /**
   * Nothing up to `sequence` is missing (a filter removed what was not
   * delivered): move past it without a reset and deliver what follows.
   */
  skipThrough(position: BufferPosition, after: bigint = this.delivered): ReorderOutput<T>[] {
    const out: ReorderOutput<T>[] = [];
    this.adoptFirstEpoch(position.epoch);
    if (position.epoch !== this.epoch || position.sequence <= this.delivered) return out;
    if (after > this.delivered) {
      // We still miss `after` itself: the skip applies once it is delivered.
      const known = this.skips.get(after);
      if (known === undefined || known < position.sequence) this.skips.set(after, position.sequence);
      return out;
    }
    this.skipTo(position.sequence);
    this.drain(out);
    return out;
  }

  private skipTo(sequence: bigint): void {
    this.delivered = sequence;
    for (const seq of [...this.held.keys()]) if (seq <= sequence) this.held.delete(seq);
  }

  private accept(item: T, out: ReorderOutput<T>[]): void {
    this.adoptFirstEpoch(item.epoch);
    if (item.epoch !== this.epoch) {
      if (this.retiredEpochs.has(item.epoch)) {
        this.droppedCount++;
        return;
      }
      // A new lineage: nothing of the old one may follow. Its history starts
      // at 1, so anything before this item is fetched like any other hole.
      this.switchEpoch(item.epoch, 0n, out);
    }
    if (item.sequence <= this.delivered || this.held.has(item.sequence)) {
      this.droppedCount++;
      return;
    }
    if (item.sequence !== this.delivered + 1n) {
      this.held.set(item.sequence, item);
      return;
    }
    this.delivered = item.sequence;
    out.push({ type: "deliver", item });
    this.drain(out);
  }

  /** Epoch "" with nothing delivered: the room had no lineage yet, and its first one is simply taken on. */
  private adoptFirstEpoch(epoch: string): void {
    if (this.epoch === "" && this.delivered === 0n && epoch !== "") this.epoch = epoch;
  }

  private switchEpoch(epoch: string, sequence: bigint, out: ReorderOutput<T>[]): void {
    this.retiredEpochs.add(this.epoch);
    this.epoch = epoch;
    this.delivered = sequence;
    this.held.clear();
    this.skips.clear();
    out.push({ type: "reset", reason: "epoch_changed", position: this.position, skipped: 0n });
  }

  private drain(out: ReorderOutput<T>[]): void {
    for (;;) {
      const skip = this.skips.get(this.delivered);
      if (skip !== undefined) {
        this.skips.delete(this.delivered);
        if (skip > this.delivered) this.skipTo(skip);
        continue;
      }
      const next = this.held.get(this.delivered + 1n);
      if (!next) return;
      this.held.delete(next.sequence);
      this.delivered = next.sequence;
      out.push({ type: "deliver", item: next });
    }
  }

  private minHeld(): bigint {
    let min: bigint | undefined;
    for (const seq of this.held.keys()) if (min === undefined || seq < min) min = seq;
    return min!;
  }
}
