import { performance } from "node:perf_hooks";
import type { StoredMessage } from "../engine/engine.js";
import { LatencyHistogram } from "./stats.js";

/**
 * The broker's publish latencies (with measureLatency; /metrics): seconds
 * from receiving a publish to its engine's commit (`commit`), and to the end
 * of the flush that handed its fan-out to the subscribers' streams
 * (`write`), once per message, not per subscriber.
 */
export class PublishLatency {
  readonly commit = new LatencyHistogram();
  readonly write = new LatencyHistogram();
  /**
   * When each message committed on this node since the last flush was
   * received (performance.now()). A local engine fans a message out before
   * its publish resolves, so by the next flush every entry has met its
   * fan-out: the map is emptied at every flush (cheaper than a WeakMap,
   * whose entries weigh on every garbage collection).
   */
  private readonly receivedAt = new Map<StoredMessage, number>();
  /** Messages fanned out since the last flush. */
  private fannedOut: StoredMessage[] = [];

  /** `wake`: makes sure a flush follows (afterFlush then calls flushed()). */
  constructor(private readonly wake: () => void) {}

  /** A publish received at `started` committed `message` at `now` (performance.now(), ms). */
  committed(message: StoredMessage, started: number, now: number): void {
    this.commit.observe((now - started) / 1000);
    // Only a message fanned out in this turn is written at its end: nothing to
    // remember for the others (no one listening, or another node's feed fans it out later).
    if (this.fannedOut.length === 0) return;
    this.receivedAt.set(message, started);
    this.wake();
  }

  /** `message` was queued for its subscribers' streams. */
  fanned(message: StoredMessage): void {
    this.fannedOut.push(message);
    this.wake();
  }

  /**
   * After a flush: every message fanned out before it was handed to its
   * subscribers' streams then (a stream under backpressure writes later).
   * Messages committed on this node are timed from their arrival; others
   * (another node's, or the redis engine's, whose fan-out arrives through
   * Redis as new objects) from their time stamp, to the millisecond.
   */
  flushed(): void {
    const messages = this.fannedOut;
    if (messages.length === 0) return this.receivedAt.clear();
    this.fannedOut = [];
    const now = performance.now();
    let wallNow: number | undefined;
    for (const message of messages) {
      const received = this.receivedAt.get(message);
      if (received !== undefined) this.write.observe((now - received) / 1000);
      else this.write.observe(Math.max(0, ((wallNow ??= Date.now()) - message.timeMs) / 1000));
    }
    this.receivedAt.clear();
  }
}
