/**
 * Timers that work in Node and in browsers. Node's setTimeout returns a
 * Timeout object with unref(), a browser's a number; the SDK's background
 * timers (gap fills, watchdog, idle, acks, publish retries) must never keep a
 * Node process alive on their own, and must still compile for the page.
 */
export type Timer = ReturnType<typeof setTimeout>;

/** Lets the process exit while `timer` is pending (Node); a no-op where timers have no such notion. */
export function unref(timer: Timer): Timer {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
