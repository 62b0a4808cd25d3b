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

/**
 * One flush per event-loop turn for all sessions with queued events: the
 * fan-out of every publish handled in this turn is written with one write per
 * stream, after the turn's I/O callbacks ran (setImmediate), not one write
 * per event.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled = false;

  /** Runs first in every flush: what queues events at the end of a turn (presence batches). */
  beforeFlush: (() => void) | undefined;
  /** Runs last in every flush, once the turn's events were handed to the streams (latency metrics). */
  afterFlush: (() => void) | undefined;

  schedule(session: Flushable): void {
    this.dirty.push(session);
    this.wake();
  }

  /** Makes sure a flush runs at the end of this turn (for beforeFlush). */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** Flushes now what is scheduled (tests, shutdown). */
  readonly run = (): void => {
    this.scheduled = false;
    this.beforeFlush?.();
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    this.afterFlush?.();
  };
}
