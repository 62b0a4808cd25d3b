/** PINGs the broker has outstanding at once (Node's default). */
const MAX_PINGS = 10;
/** Streams the peer may reset within a second before the connection is closed (HTTP/2 "rapid reset"). */
const MAX_RESETS_PER_SECOND = 1000;

/** The PINGs a connection sent and not yet heard back, by the id in their payload. */
export class Pings {
  private readonly waiting = new Map<number, (error: Error | null) => void>();
  private seq = 0;

  /** The id to send, or undefined when too many are out. */
  add(callback: (error: Error | null) => void): number | undefined {
    if (this.waiting.size >= MAX_PINGS) return undefined;
    const id = ++this.seq >>> 0;
    this.waiting.set(id, callback);
    return id;
  }

  /** The peer's PING ACK. */
  answered(id: number): void {
    const callback = this.waiting.get(id);
    if (!callback) return;
    this.waiting.delete(id);
    callback(null);
  }

  /** The connection ended: every PING out fails. */
  failAll(): void {
    for (const callback of this.waiting.values()) callback(new Error("the HTTP/2 connection closed"));
    this.waiting.clear();
  }
}

/** Counts the peer's stream resets per second: true once over the limit. */
export class ResetRate {
  private count = 0;
  private since = 0;

  overLimit(now = Date.now()): boolean {
    if (now - this.since > 1000) {
      this.since = now;
      this.count = 0;
    }
    return ++this.count > MAX_RESETS_PER_SECOND;
  }
}
