import { BrokerError } from "./errors.js";
import type { EventSink, Flushable, FlushScheduler } from "./outbox.js";
import type { QueueBudget } from "./queue-budget.js";
import { eventBytes } from "./queued-events.js";
import type { Reader, ReaderBacklog } from "./reader-backlog.js";
import type { SessionEvent } from "./session.js";
import type { BrokerStats } from "./stats.js";

/** A session's own bounds (BrokerConfig.sessionQueueLimit, sessionQueueBytes). */
export interface QueueLimits {
  events: number;
  bytes: number;
}

/**
 * What one session's stream has yet to carry, and how that stream ends.
 * The session decides what a subscriber gets (rooms, filters, acks); this
 * decides how much of it may wait and when it leaves, so that a reader
 * slower than its rooms costs the broker a bounded amount and nothing else.
 *
 * Its contract:
 * - Events leave in the order pushed, everything queued at once: one sink
 *   write per flush of the FlushScheduler, never one per event. A sink that
 *   says wait (write returns false) gets nothing until it calls resume().
 * - At most `limits.events` events and `limits.bytes` estimated bytes
 *   (eventBytes) wait. The event that would pass either ends the stream
 *   with RESOURCE_EXHAUSTED (SLOW_CONSUMER): what waited is dropped, not
 *   sent, and `onCutOff` runs once, from a microtask, so the broker removes
 *   the session everywhere whatever the transport does.
 * - Half of either bound used makes the session *behind* for the
 *   ReaderBacklog (publishers to its rooms wait) until the queue is handed
 *   over; half used or a waiting sink makes it `crowded` for producers
 *   that can wait (a replay: roomToQueue()).
 * - Every queued byte is added to the broker-wide QueueBudget and released
 *   when handed over or dropped; message events count as `sent` when handed
 *   to the sink and as `dropped` when a cut-off drops them.
 * - After end(), pushes are ignored; end() hands the queue over first when
 *   it drains (shutdown), else drops it (a slow consumer is not fed its
 *   backlog).
 */
export class SessionQueue implements Flushable {
  private events: SessionEvent[] = [];
  /** Estimated bytes of the queued events. */
  private queuedBytes = 0;
  /** Message events in the queue, counted once per flush as sent (or as dropped). */
  private queuedMessages = 0;
  private sink: EventSink | undefined;
  /** Told the backlog it fell behind, and has not handed its queue over since. */
  private behind = false;
  /** In the scheduler's list for the next flush. */
  private scheduled = false;
  /** The sink said it cannot take more until resume(). */
  private paused = false;
  private endError: BrokerError | undefined;
  private ended = false;
  private sinkEnded = false;
  /** Waiting in roomToQueue(). */
  private producers: Array<() => void> = [];
  /** Broker clock of the last event queued, for idle heartbeats. */
  lastActivityMs: number;

  constructor(
    readonly limits: QueueLimits,
    nowMs: number,
    /** The broker's counters, shared by every session. */
    private readonly counters: BrokerStats,
    private readonly scheduler: FlushScheduler,
    /** The broker-wide bound on queued bytes, which this queue reports to. */
    private readonly budget: QueueBudget,
    /** Where the session is said to fall behind and catch up, for publishers to wait. */
    private readonly backlog: ReaderBacklog,
    /** The session, as the backlog knows it. */
    private readonly reader: Reader,
    /** Called once when the stream was cut off (slow consumer, or the budget chose it). */
    private readonly onCutOff: () => void,
  ) {
    this.lastActivityMs = nowMs;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** How the stream ended: undefined while live or after a clean end. */
  get error(): BrokerError | undefined {
    return this.endError;
  }

  /** Estimated bytes queued and not yet handed to the sink. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Queue one event; a consumer that fell too far behind (events or bytes) is cut off. */
  push(event: SessionEvent, nowMs: number): void {
    if (this.ended) return;
    const bytes = eventBytes(event);
    if (this.events.length >= this.limits.events || this.queuedBytes + bytes > this.limits.bytes) {
      this.cutOffSlow();
      return;
    }
    this.events.push(event);
    this.queuedBytes += bytes;
    if (event.type === "message") this.queuedMessages++;
    if (!this.behind && (this.events.length >= this.limits.events / 2 || this.queuedBytes >= this.limits.bytes / 2)) {
      this.behind = true;
      this.backlog.fellBehind(this.reader);
    }
    this.lastActivityMs = nowMs;
    // May cut this session off (or others) when the broker's total is exceeded.
    this.budget.add(bytes);
    if (this.ended) return;
    if (!this.scheduled && !this.paused && this.sink) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
  }

  /** Starts delivering to `sink` (the transport's stream writer). */
  attach(sink: EventSink): void {
    this.sink = sink;
    if (this.ended) this.finish();
    else if (this.events.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
  }

  /** Called by the scheduler: hands the queued events to the sink as one batch. */
  flush(): void {
    this.scheduled = false;
    if (!this.sink || this.paused || this.sinkEnded || this.events.length === 0) return;
    const events = this.take();
    this.paused = !this.sink.write(events);
    if (!this.paused) this.wakeProducers();
  }

  /** The sink can take more again (its stream drained). */
  resume(): void {
    this.paused = false;
    if (this.events.length > 0 && !this.scheduled && !this.sinkEnded) {
      this.scheduled = true;
      this.scheduler.schedule(this);
    }
    if (!this.crowded) this.wakeProducers();
  }

  /** Half the queue's limit is used (events or bytes): a producer that can wait (a replay) should. */
  get crowded(): boolean {
    return this.events.length >= this.limits.events / 2 || this.queuedBytes >= this.limits.bytes / 2 || this.paused;
  }

  /** Resolves once the stream took what was queued (or the session ended). */
  roomToQueue(): Promise<void> {
    if (this.ended || !this.crowded) return Promise.resolve();
    return new Promise<void>((resolve) => this.producers.push(resolve));
  }

  private wakeProducers(): void {
    if (this.producers.length === 0) return;
    const waiting = this.producers;
    this.producers = [];
    for (const wake of waiting) wake();
  }

  /** Cuts the stream off as a slow consumer (SLOW_CONSUMER), saying how much it held and `when`. */
  cutOffSlow(when = ""): void {
    this.cutOff(slowConsumer(this.events.length, this.queuedBytes, when));
  }

  /** Ends the stream with `error` (a slow consumer), dropping its queue, and has the broker remove the session at once. */
  cutOff(error: BrokerError): void {
    if (this.ended) return;
    this.counters.slowConsumers++;
    this.end(error, false);
    // Not from inside the fan-out or the budget's loop that got here.
    queueMicrotask(this.onCutOff);
  }

  /**
   * End the stream: cleanly (no error) or with the error given. With `drain`
   * the events already queued go out before the error (shutdown); without it
   * they are dropped (a slow consumer is not fed its backlog). Idempotent.
   */
  end(error?: BrokerError, drain = error === undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    if (!drain) {
      this.counters.dropped += this.queuedMessages;
      this.drain();
    }
    if (this.sink) this.finish();
    this.wakeProducers();
  }

  /** Hands what is left (a draining end) and the end to the sink, once. */
  private finish(): void {
    if (this.sinkEnded || !this.sink) return;
    this.sinkEnded = true;
    // Shutdown drains even a paused stream: the transport buffers the rest before its trailers.
    if (this.events.length > 0) this.sink.write(this.take());
    this.sink.end(this.endError);
  }

  /** Takes every queued event, oldest first (the stream writer, or a test, consumes them). */
  drain(): SessionEvent[] {
    const events = this.events;
    this.events = [];
    if (this.queuedBytes > 0) this.budget.release(this.queuedBytes);
    this.queuedBytes = 0;
    this.queuedMessages = 0;
    if (this.behind) {
      this.behind = false;
      this.backlog.caughtUp(this.reader);
    }
    return events;
  }

  /** Takes every queued event for the sink, counting its messages as sent. */
  private take(): SessionEvent[] {
    this.counters.sent += this.queuedMessages;
    return this.drain();
  }

  /**
   * Batches of queued events, oldest first, at most `maxBatch` each, until
   * the stream ends (for transports that pull, like connect-node's
   * streaming handlers; see end() for what happens to the queue then).
   * `onEnd` hears of the end as it happens, before the consumer pulls again.
   */
  async *batches(maxBatch: number, onEnd?: (error: BrokerError | undefined) => void): AsyncGenerator<SessionEvent[]> {
    const ready: SessionEvent[][] = [];
    let done = false;
    let wake: (() => void) | undefined;
    this.attach({
      write: (events) => {
        ready.push(events);
        wake?.();
        // One batch at a time: the next flush waits until this one was yielded.
        return false;
      },
      end: (error) => {
        done = true;
        wake?.();
        // Told even while the consumer is suspended at a yield (a reader that stopped reading).
        onEnd?.(error);
      },
    });
    for (;;) {
      const batch = ready.shift();
      if (batch) {
        for (let i = 0; i < batch.length; i += maxBatch) yield i === 0 && batch.length <= maxBatch ? batch : batch.slice(i, i + maxBatch);
        if (ready.length === 0) this.resume();
        continue;
      }
      if (done) {
        if (this.endError) throw this.endError;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }
}

function slowConsumer(events: number, bytes: number, when: string): BrokerError {
  return new BrokerError(
    "resource_exhausted",
    `subscriber too slow${when ? ` ${when}` : ""}: ${events} events (${bytes} bytes) queued; resubscribe with your last positions to resume`,
    { reason: "SLOW_CONSUMER", metadata: { queued_events: String(events), queued_bytes: String(bytes) } },
  );
}
