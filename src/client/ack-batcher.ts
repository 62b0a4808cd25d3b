import type { Timer } from "./timers.js";

/** A room position to acknowledge. */
export interface AckPosition {
  epoch: string;
  sequence: bigint;
}

/**
 * Cumulative acks, batched: per room only the highest position is kept, and
 * one Ack call carries every room's, at most once per interval.
 */
export class AckBatcher {
  private readonly pending = new Map<string, AckPosition>();
  private timer: Timer | undefined;

  /** `send` returns false when it cannot send now (no live session): the acks are kept. */
  constructor(
    private readonly intervalMs: number,
    private readonly send: (acks: Array<[string, AckPosition]>) => Promise<boolean>,
  ) {}

  queue(room: string, position: AckPosition): void {
    const queued = this.pending.get(room);
    if (queued && queued.epoch === position.epoch && queued.sequence >= position.sequence) return;
    this.pending.set(room, position);
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const acks = [...this.pending];
    this.pending.clear();
    if (await this.send(acks)) return;
    for (const [room, position] of acks) if (!this.pending.has(room)) this.pending.set(room, position);
  }
}
