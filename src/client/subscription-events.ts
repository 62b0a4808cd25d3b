import type { ConnectError } from "@connectrpc/connect";
import { SubscriptionState, type SubscriptionEvent, type SubscriptionListener } from "./subscription-types.js";

/**
 * A subscription's observable side: its state, changed only through
 * setState() (which emits the transition with its reason), and the
 * application's listeners, each shielded from the others' exceptions.
 */
export class SubscriptionEvents {
  private current = SubscriptionState.Connecting;
  private readonly listeners = new Set<SubscriptionListener>();

  get state(): SubscriptionState {
    return this.current;
  }

  get closed(): boolean {
    return this.current === SubscriptionState.Closed;
  }

  on(listener: SubscriptionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the state becomes `state` (or rejects if it closes first). */
  waitFor(state: SubscriptionState): Promise<void> {
    if (this.current === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on((event) => {
        if (event.type !== "state") return;
        if (event.to === state) {
          off();
          resolve();
        } else if (event.to === SubscriptionState.Closed) {
          off();
          reject(event.error ?? new Error("subscription closed"));
        }
      });
    });
  }

  setState(to: SubscriptionState, reason: string, error?: ConnectError): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.emit({ type: "state", from, to, reason, error });
  }

  emit(event: SubscriptionEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // An application bug must not break delivery to the other listeners or the stream.
        console.error("seqcast: subscription listener threw:", error);
      }
    }
  }
}
