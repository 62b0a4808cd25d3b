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
  /** Sessions holding queued bytes now. */
  private readonly holders = new Set<QueueHolder>();
  /** Streams cut off by this bound so far (tests, metrics). */
  cuts = 0;

  constructor(private readonly limit: number) {}

  get total(): number {
    return this.bytes;
  }

  add(holder: QueueHolder, bytes: number): void {
    this.bytes += bytes;
    this.holders.add(holder);
    if (this.limit > 0 && this.bytes > this.limit) this.shed();
  }

  /** The holder handed `bytes` over (or dropped them); `empty`: it holds nothing now. */
  release(holder: QueueHolder, bytes: number, empty: boolean): void {
    this.bytes -= bytes;
    if (empty) this.holders.delete(holder);
  }

  /** Cuts the largest holders until the total fits; O(holders), and only when over the limit. */
  private shed(): void {
    while (this.bytes > this.limit && this.holders.size > 0) {
      let largest: QueueHolder | undefined;
      for (const holder of this.holders) if (!largest || holder.pendingBytes > largest.pendingBytes) largest = holder;
      const held = largest!.pendingBytes;
      this.cuts++;
      largest!.cutOff(
        new BrokerError(
          "resource_exhausted",
          `broker overloaded: subscribers hold more than ${this.limit} bytes queued in total, and this stream held the most (${held} bytes); resubscribe with your last positions to resume`,
          { reason: "BROKER_OVERLOADED", metadata: { queued_bytes: String(held), limit_bytes: String(this.limit) } },
        ),
      );
      // A holder that did not let go (cannot happen with Session) must not loop forever.
      this.holders.delete(largest!);
    }
  }
}
