import { ConnectError } from "@connectrpc/connect";
import { isRetryable, retryDelay, type BackoffPolicy, type RetryContext } from "./retry.js";
import { unref } from "./timers.js";

export interface QueuedPublish<R> {
  /** Sends the request once; the queue calls it again on retryable failures. */
  send: () => Promise<R>;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  attempts: number;
  /** Call order. */
  seq: number;
}

export interface PublishQueueOptions {
  /** Publishes of one room on the wire at once. */
  maxInFlight: number;
  /** Give up (reject) after this many attempts of one publish. */
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** What the retry policy needs to know of the client. */
  retry?: RetryContext;
}

/**
 * One publisher's queue for one room: publish FIFO with several in flight,
 * retried safely.
 *
 * Every publish carries a client_message_id, so the broker stores a retried
 * message once. Requests leave in call order, and the broker sequences them
 * in arrival order. When one fails with a retryable error (dropped
 * connection, UNAVAILABLE), nothing new is sent until every request in flight
 * has settled; then every unacknowledged request is sent again, in the
 * original order. A request that had in fact been stored comes back as a
 * duplicate with its original position, so the room still holds this
 * publisher's messages in the order they were sent.
 */
export class PublishQueue<R> {
  private readonly waiting: QueuedPublish<R>[] = [];
  private inFlight = 0;
  private paused = false;
  private failures = 0;
  /** The failure that paused the queue: its RetryInfo (a rate limit) sets the least wait. */
  private lastError: unknown;
  private calls = 0;

  constructor(private readonly options: PublishQueueOptions) {}

  push(send: () => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ send, resolve, reject, attempts: 0, seq: this.calls++ });
      this.pump();
    });
  }

  get pending(): number {
    return this.waiting.length + this.inFlight;
  }

  private pump(): void {
    while (!this.paused && this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const item = this.waiting.shift()!;
      this.inFlight++;
      item.attempts++;
      item.send().then(
        (result) => {
          this.failures = 0;
          item.resolve(result);
          this.settled();
        },
        (error: unknown) => {
          if (isRetryable(error, this.options.retry) && item.attempts < this.options.maxAttempts) {
            this.lastError = error;
            this.retryLater(item);
          } else {
            item.reject(ConnectError.from(error));
          }
          this.settled();
        },
      );
    }
  }

  /** Failed requests go back in front, in their original order. */
  private readonly retries: QueuedPublish<R>[] = [];

  private retryLater(item: QueuedPublish<R>): void {
    this.paused = true;
    this.retries.push(item);
  }

  private settled(): void {
    this.inFlight--;
    if (!this.paused) return this.pump();
    if (this.inFlight > 0) return;
    // Everything in flight has settled: resend the failed ones first, in order.
    this.retries.sort((a, b) => a.seq - b.seq);
    this.waiting.unshift(...this.retries.splice(0));
    const delay = retryDelay(this.lastError, this.failures++, this.options.backoff);
    unref(
      setTimeout(() => {
        this.paused = false;
        this.pump();
      }, delay),
    );
  }
}

/** Web Crypto's randomUUID: global in Node 20 and in browsers (secure contexts, which include http://localhost). */
export const newClientMessageId = (): string => globalThis.crypto.randomUUID();
