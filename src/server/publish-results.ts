import { BrokerError } from "../broker/errors.js";
import type { PublishResult } from "../engine/engine.js";

/** The outcome of one message of a stream: stored (its result) or not (its error). */
export interface PublishOutcome {
  clientMessageId: string;
  outcome: PublishResult | BrokerError;
}

interface Slot {
  clientMessageId: string;
  result: PublishOutcome | undefined;
}

/**
 * Results waiting that are handed on as soon as the callback that settled
 * them returns, instead of at the end of the event-loop turn. A turn that
 * reads a publisher's window of 1,024 messages in several socket chunks
 * would otherwise hold every acknowledgement until its last chunk was
 * published, while the publisher, with nothing left to send, waits idle
 * (bench ingest, 3 runs each: ~116k -> 143-153k acknowledged publishes/s).
 * Fewer wait for the turn's end, after the deliveries that turn queued were
 * written: a publisher of a few messages at a time is not acknowledged
 * ahead of its subscribers' streams.
 */
const EARLY_RESULTS = 64;

/**
 * The results of a PublishStream (or PublishBatch), in the order its
 * messages arrived, whatever order their publishes settle in. Settled
 * results are handed on in batches, once per event-loop turn (or once
 * EARLY_RESULTS are waiting): one stream message acknowledges every message
 * of a burst.
 *
 * Anything but a BrokerError from a publish is a bug: it fails the stream.
 */
export class PublishResults {
  private readonly slots: Slot[] = [];
  private head = 0;
  /** Slots dropped from the front so far (indexes given out before stay valid). */
  private trimmed = 0;
  /** A flush is due at the end of the turn (setImmediate) / when the current callback returns (process.nextTick). */
  private scheduled = false;
  private tickDue = false;
  /** `done` was called. */
  private ended = false;
  private inputDone = false;
  private endError: unknown;
  private failure: unknown;

  /** `emit` receives each batch of results in order; `done` once every result was emitted (or with the failure). */
  constructor(
    private readonly emit: (results: PublishOutcome[]) => void,
    private readonly done: (error?: unknown) => void,
  ) {}

  /** Several messages, in arrival order, and their outcomes as one promise (Broker.publishMany). */
  addMany(clientMessageIds: string[], outcomes: Promise<Array<PublishResult | BrokerError>>): void {
    const first = this.trimmed + this.slots.length;
    for (const clientMessageId of clientMessageIds) this.slots.push({ clientMessageId, result: undefined });
    outcomes.then(
      (settled) => {
        for (let i = 0; i < settled.length; i++) {
          const slot = this.slots[first - this.trimmed + i];
          if (slot) slot.result = { clientMessageId: slot.clientMessageId, outcome: settled[i]! };
        }
        this.schedule();
      },
      (error: unknown) => {
        if (!(error instanceof BrokerError)) return this.fail(error);
        for (let i = 0; i < clientMessageIds.length; i++) {
          const slot = this.slots[first - this.trimmed + i];
          if (slot) slot.result = { clientMessageId: slot.clientMessageId, outcome: error };
        }
        this.schedule();
      },
    );
  }

  /** One message, in arrival order, and its publish. */
  add(clientMessageId: string, publish: Promise<PublishResult>): void {
    const slot: Slot = { clientMessageId, result: undefined };
    this.slots.push(slot);
    publish.then(
      (result) => this.settle(slot, result),
      (error: unknown) => {
        if (error instanceof BrokerError) this.settle(slot, error);
        else this.fail(error);
      },
    );
  }

  /**
   * No more messages will come (the client half-closed, or the batch is
   * complete); `error`: the stream then ends with it instead of OK, once
   * every result before was handed on (the broker is shutting down).
   */
  close(error?: unknown): void {
    this.inputDone = true;
    this.endError ??= error;
    this.schedule();
  }

  /** The input failed (a stream error): stop. */
  fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error ?? new Error("publish stream failed");
    this.schedule();
  }

  get pending(): number {
    return this.slots.length - this.head;
  }

  private settle(slot: Slot, outcome: PublishResult | BrokerError): void {
    slot.result = { clientMessageId: slot.clientMessageId, outcome };
    this.schedule();
  }

  private schedule(): void {
    if (!this.tickDue && this.slots.length - this.head >= EARLY_RESULTS) {
      this.tickDue = true;
      process.nextTick(this.flushEarly);
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushTurn);
  }

  private readonly flushEarly = (): void => {
    this.tickDue = false;
    this.flush();
  };

  private readonly flushTurn = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.ended) return;
    if (this.failure !== undefined) {
      this.ended = true;
      return this.done(this.failure);
    }
    const ready: PublishOutcome[] = [];
    while (this.head < this.slots.length && this.slots[this.head]!.result) ready.push(this.slots[this.head++]!.result!);
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.trimmed += this.head;
      this.head = 0;
    }
    if (ready.length > 0) this.emit(ready);
    if (this.inputDone && this.head === this.slots.length) {
      this.ended = true;
      this.done(this.endError);
    }
  }
}
