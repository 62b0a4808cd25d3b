import { BrokerError } from "./errors.js";

/** What the budget can see of a session: its queued bytes, and how to cut it off. */
export interface QueueHolder {
  readonly pendingBytes: number;
  /** Ends the stream with `error`, dropping its queue (which releases its bytes). */
  cutOff(error: BrokerError): void;
}

/**
 * The bound on bytes queued for all subscribers of a broker together (each
 * session also has its own bound). Sessions report what they queue and
 * hand over; when the total passes the limit, the sessions holding the most
 * are cut off (BROKER_OVERLOADED) until it is back under it. The publish
 * that queued the last bytes is committed and acknowledged all the same:
 * the broker sheds its slowest readers, never its writers.
 */
export class QueueBudget {
  private bytes = 0;
  /** Streams cut off by this bound so far (tests, metrics). */
  cuts = 0;

  /**
   * `holders`: every session that may hold queued bytes, walked only when
   * the total is over the limit. Not a set kept per push: adding and
   * removing a session at every event and flush cost more than the rest of
   * the accounting together (an in-process fan-out's profile: 14% of it).
   */
  constructor(
    private readonly limit: number,
    private readonly holders: () => Iterable<QueueHolder>,
  ) {}

  get total(): number {
    return this.bytes;
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (this.limit > 0 && this.bytes > this.limit) this.shed();
  }

  /** A holder handed `bytes` over (or dropped them). */
  release(bytes: number): void {
    this.bytes -= bytes;
  }

  /** Cuts the largest holders until the total fits; O(holders), and only when over the limit. */
  private shed(): void {
    const cut = new Set<QueueHolder>();
    while (this.bytes > this.limit) {
      let largest: QueueHolder | undefined;
      for (const holder of this.holders())
        if (holder.pendingBytes > 0 && !cut.has(holder) && (!largest || holder.pendingBytes > largest.pendingBytes)) largest = holder;
      if (!largest) return;
      const held = largest.pendingBytes;
      this.cuts++;
      // A holder that did not let go (cannot happen with Session) is not chosen again: no endless loop.
      cut.add(largest);
      largest.cutOff(
        new BrokerError(
          "resource_exhausted",
          `broker overloaded: subscribers hold more than ${this.limit} bytes queued in total, and this stream held the most (${held} bytes); resubscribe with your last positions to resume`,
          { reason: "BROKER_OVERLOADED", metadata: { queued_bytes: String(held), limit_bytes: String(this.limit) } },
        ),
      );
    }
  }
}
