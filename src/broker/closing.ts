import { BrokerError } from "./errors.js";

/**
 * Whether the broker is closing, and who is told when it starts: calls that
 * are not sessions (PublishStream) stop reading and end with the error
 * that every call gets from then on (UNAVAILABLE, SHUTTING_DOWN: retry
 * against another node or later).
 */
export class Closing {
  private closing = false;
  private readonly listeners = new Set<(error: BrokerError) => void>();

  get started(): boolean {
    return this.closing;
  }

  /** Starts closing and tells every listener; false when it had already started. */
  start(): boolean {
    if (this.closing) return false;
    this.closing = true;
    const error = closedError();
    for (const listener of [...this.listeners]) listener(error);
    this.listeners.clear();
    return true;
  }

  /** Calls `listener` once when closing starts (at once if it has). Returns the unsubscribe. */
  onStart(listener: (error: BrokerError) => void): () => void {
    if (this.closing) {
      listener(closedError());
      return () => {};
    }
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Throws what a call gets once the broker is closing. */
  assertOpen(): void {
    if (this.closing) throw closedError();
  }
}

function closedError(): BrokerError {
  return new BrokerError("unavailable", "broker is shutting down; retry against another node or later", { reason: "SHUTTING_DOWN" });
}
