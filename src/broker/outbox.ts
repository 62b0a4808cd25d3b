import { performance } from "node:perf_hooks";
import { setTimeout as realSetTimeout } from "node:timers";
import type { BrokerError } from "./errors.js";
import type { SessionEvent } from "./session.js";

/**
 * Where a session's events go: the stream writer of one transport. The
 * broker hands it everything a session queued since the last flush as one
 * batch, so a burst of events becomes one stream write.
 */
export interface EventSink {
  /**
   * Takes a batch, oldest first. Returns false when the stream cannot take
   * more for now (backpressure): the session then keeps queueing (bounded)
   * until the sink calls `session.resume()`.
   */
  write(events: SessionEvent[]): boolean;
  /**
   * The session ended: cleanly (no error) or with the error to report.
   * Queued events were written before (shutdown drains) or dropped (a slow
   * consumer is not fed its backlog).
   */
  end(error: BrokerError | undefined): void;
}

/** What the scheduler flushes: a session with queued events. */
export interface Flushable {
  flush(): void;
}

/** A flush that wrote to at least this many streams makes the next one wait for the flush interval. */
export const LARGE_FLUSH_STREAMS = 32;

/** The clock and timer a FlushScheduler waits with (tests inject their own). */
export interface FlushTimers {
  now(): number;
  setTimeout(run: () => void, ms: number): void;
}

/**
 * The real clock (node:timers, performance.now()), never a test's fake one:
 * the interval changes when bytes leave, not what is delivered or in which order.
 */
const realTimers: FlushTimers = { now: () => performance.now(), setTimeout: (run, ms) => void realSetTimeout(run, ms) };

/**
 * One flush per event-loop turn for all sessions with queued events: the
 * fan-out of every publish handled in this turn is written with one write per
 * stream, after the turn's I/O callbacks ran (setImmediate), not one write
 * per event.
 *
 * Under load the batching is natural: the publishes read in one turn share
 * one write per stream, as NATS's per-client flusher shares its writes.
 *
 * Large fan-outs can also be spaced out (`--flush-interval`, off by
 * default): after a flush that wrote to at least LARGE_FLUSH_STREAMS
 * streams, the next one starts no sooner than `intervalMs` after it, so the
 * messages of those milliseconds share one write per stream. It trades
 * latency for CPU: a stream write costs about the same for one event as for
 * ten (the system call, ~57% of the broker's CPU at 1,000 msg/s to 100
 * streams, not the bytes or the HTTP/2 framing). Measured on the broker's
 * own HTTP/2 (npm run bench, paced 1,000 msg/s × 100 subscribers, 2-core
 * host): 0 ms, p50 ~1.5 ms, p99 ~10 ms, ~75% of a core; 4 ms, p50 ~3 ms, p99
 * ~15 ms, ~53%. A room whose messages come further apart than the interval
 * (chat, 200 msg/s) is flushed at once either way, and so is a small fan-out.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled = false;
  /** When the last large flush started (timers.now(), ms). */
  private lastLargeStart = -Infinity;

  /** Runs first in every flush: what queues events at the end of a turn (presence batches). */
  beforeFlush: (() => void) | undefined;
  /** Runs last in every flush, once the turn's events were handed to the streams (latency metrics). */
  afterFlush: (() => void) | undefined;

  /** `intervalMs`: the least time between the start of a large flush and the next flush (0 = none). */
  constructor(
    private readonly intervalMs = 0,
    private readonly timers: FlushTimers = realTimers,
  ) {}

  schedule(session: Flushable): void {
    this.dirty.push(session);
    this.wake();
  }

  /** Makes sure a flush runs at the end of this turn (for beforeFlush), or once the interval has passed. */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Timers have millisecond resolution: a wait under 1 ms is not worth one.
    const wait = this.intervalMs > 0 ? this.lastLargeStart + this.intervalMs - this.timers.now() : 0;
    if (wait >= 1) this.timers.setTimeout(this.run, wait);
    else setImmediate(this.run);
  }

  /** Flushes now what is scheduled (tests, shutdown). */
  readonly run = (): void => {
    this.scheduled = false;
    const start = this.intervalMs > 0 ? this.timers.now() : 0;
    this.beforeFlush?.();
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    this.afterFlush?.();
    if (dirty.length >= LARGE_FLUSH_STREAMS) this.lastLargeStart = start;
  };
}
