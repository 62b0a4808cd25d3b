import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FlushScheduler, LARGE_FLUSH_STREAMS, type FlushTimers } from "../../src/broker/outbox.js";

/** A clock that only moves when told, and timers that run when the test says. */
function manualTimers(): FlushTimers & { at: number; pending: Array<{ due: number; run: () => void }>; advance(ms: number): void } {
  const timers = {
    at: 1_000,
    pending: [] as Array<{ due: number; run: () => void }>,
    now: () => timers.at,
    setTimeout: (run: () => void, ms: number) => void timers.pending.push({ due: timers.at + ms, run }),
    advance(ms: number) {
      timers.at += ms;
      const due = timers.pending.filter((t) => t.due <= timers.at);
      timers.pending = timers.pending.filter((t) => t.due > timers.at);
      for (const t of due) t.run();
    },
  };
  return timers;
}

interface FakeSession {
  flushes: number;
  /** Events queued since the last flush; a session is scheduled once until flushed (as Session does). */
  queued: number;
  flush(): void;
}

/** `n` sessions that count their flushes. */
function sessions(n: number): FakeSession[] {
  return Array.from({ length: n }, () => ({
    flushes: 0,
    queued: 0,
    flush() {
      this.flushes++;
      this.queued = 0;
    },
  }));
}

/** Queues an event on `session`, scheduling it if it had none queued. */
function queue(scheduler: FlushScheduler, session: FakeSession): void {
  if (session.queued++ === 0) scheduler.schedule(session);
}

describe("FlushScheduler", () => {
  it("flushes every scheduled session once, at the end of the turn", async () => {
    const scheduler = new FlushScheduler(4, manualTimers());
    const [a, b] = sessions(2);
    queue(scheduler, a!);
    queue(scheduler, b!);
    expect(a!.flushes).toBe(0);
    await nextTurn();
    expect([a!.flushes, b!.flushes]).toEqual([1, 1]);
  });

  it("after a large flush, the next waits for the interval; a small one does not delay the next", async () => {
    const timers = manualTimers();
    const scheduler = new FlushScheduler(4, timers);
    const large = sessions(LARGE_FLUSH_STREAMS);
    for (const s of large) queue(scheduler, s);
    await nextTurn();
    expect(large.every((s) => s.flushes === 1)).toBe(true);

    // 1 ms later the room has another message: its flush waits until 4 ms after the last began.
    timers.advance(1);
    for (const s of large) queue(scheduler, s);
    await nextTurn();
    expect(large[0]!.flushes).toBe(1);
    expect(timers.pending.map((t) => t.due)).toEqual([timers.at + 3]);
    timers.advance(2);
    // More events meanwhile join the waiting flush: one write per stream for both.
    for (const s of large) queue(scheduler, s);
    expect(large[0]!.queued).toBe(2);
    timers.advance(1);
    expect(large.every((s) => s.flushes === 2)).toBe(true);

    // A message further apart than the interval is flushed in its own turn.
    timers.advance(5);
    queue(scheduler, large[0]!);
    await nextTurn();
    expect(large[0]!.flushes).toBe(3);
    // That flush was small: the next does not wait either.
    timers.advance(1);
    queue(scheduler, large[0]!);
    await nextTurn();
    expect(large[0]!.flushes).toBe(4);
    expect(timers.pending).toEqual([]);
  });

  it("with interval 0 every flush runs in its turn", async () => {
    const timers = manualTimers();
    const scheduler = new FlushScheduler(0, timers);
    const large = sessions(LARGE_FLUSH_STREAMS * 2);
    for (let round = 1; round <= 3; round++) {
      for (const s of large) queue(scheduler, s);
      await nextTurn();
      expect(large[0]!.flushes).toBe(round);
    }
    expect(timers.pending).toEqual([]);
  });
});
