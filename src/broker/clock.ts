/**
 * Time as a dependency: the broker, presence grace, ack deadlines,
 * heartbeats and the server's keepalive read the time and set timers only
 * through a Clock, so tests move time (vitest fake timers, or a clock of
 * their own) instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `callback` once after `ms`; the returned function cancels it. Timers never keep the process alive. */
  setTimeout(callback: () => void, ms: number): () => void;
  /** Runs `callback` every `ms`; the returned function stops it. */
  setInterval(callback: () => void, ms: number): () => void;
}

/**
 * The process's clock. It looks the timer functions up at each call, so
 * vi.useFakeTimers() installed after a broker was built still controls it.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const timer = globalThis.setTimeout(callback, ms);
    timer.unref?.();
    return () => globalThis.clearTimeout(timer);
  },
  setInterval(callback, ms) {
    const timer = globalThis.setInterval(callback, ms);
    timer.unref?.();
    return () => globalThis.clearInterval(timer);
  },
};
