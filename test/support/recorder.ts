import type { Subscription, SubscriptionEvent } from "../../src/client/subscription.js";
import { waitUntil } from "./wait.js";

/** Records everything a subscription tells its application. */
export class Recorder {
  readonly events: SubscriptionEvent[] = [];
  constructor(readonly subscription: Subscription) {
    subscription.on((event) => this.events.push(event));
  }
  messages(room?: string) {
    return this.events.flatMap((e) => (e.type === "message" && (!room || e.room === room) ? [e.message] : []));
  }
  contents(room?: string): string[] {
    return this.messages(room).map((m) => m.content);
  }
  sequences(room?: string): number[] {
    return this.messages(room).map((m) => Number(m.sequence));
  }
  ofType<T extends SubscriptionEvent["type"]>(type: T): Extract<SubscriptionEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<SubscriptionEvent, { type: T }> => e.type === type);
  }
  /** Resolves once `predicate` holds; rejects after `timeoutMs` with what was seen. */
  async until(predicate: (r: Recorder) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await waitUntil(() => predicate(this), () => `${what} (saw ${this.summary()})`, timeoutMs);
  }
  subscribedTo(room: string): Promise<void> {
    return this.until((r) => r.ofType("subscribed").some((e) => e.room === room), `subscribed to ${room}`);
  }
  summary(): string {
    const counts = new Map<string, number>();
    for (const e of this.events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    return JSON.stringify(Object.fromEntries(counts));
  }
}
