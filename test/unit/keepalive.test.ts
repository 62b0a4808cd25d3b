import assert from "node:assert/strict";
import { afterEach, describe, it, vi } from "vitest";
import { Keepalive, type PingableSession } from "../../src/server/keepalive.js";

/** A session whose peer answers PINGs only while `answering`. */
class FakeSession implements PingableSession {
  closed = false;
  destroyed = false;
  answering = true;
  pings = 0;
  ping(callback: (error: Error | null) => void): boolean {
    this.pings++;
    if (this.answering) queueMicrotask(() => callback(null));
    return true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

describe("HTTP/2 keepalive on the fake clock", () => {
  afterEach(() => vi.useRealTimers());

  it("PINGs every interval and destroys a session silent for the dead timeout, not before", async () => {
    vi.useFakeTimers();
    const keepalive = new Keepalive<FakeSession>({ intervalMs: 1000, deadTimeoutMs: 2500 });
    const alive = new FakeSession();
    const frozen = new FakeSession();
    keepalive.add(alive);
    keepalive.add(frozen);
    frozen.answering = false;
    await vi.advanceTimersByTimeAsync(2000);
    assert.deepEqual([alive.pings, frozen.pings], [2, 2]);
    assert.equal(frozen.destroyed, false, "2 s of silence is within the 2.5 s timeout");
    await vi.advanceTimersByTimeAsync(1000);
    assert.equal(frozen.destroyed, true, "destroyed once silent past the timeout");
    assert.equal(alive.destroyed, false);
    await vi.advanceTimersByTimeAsync(10_000);
    assert.equal(alive.destroyed, false, "a session that answers stays");
    assert.equal(frozen.pings, 2, "a destroyed session is forgotten");
    keepalive.close();
  });

  it("forgets closed sessions and does nothing when turned off", async () => {
    vi.useFakeTimers();
    const off = new Keepalive<FakeSession>({ intervalMs: 0, deadTimeoutMs: 1 });
    const idle = new FakeSession();
    off.add(idle);
    await vi.advanceTimersByTimeAsync(10_000);
    assert.deepEqual([idle.pings, idle.destroyed], [0, false]);
    const on = new Keepalive<FakeSession>({ intervalMs: 100, deadTimeoutMs: 1000 });
    const closed = new FakeSession();
    on.add(closed);
    closed.closed = true;
    await vi.advanceTimersByTimeAsync(500);
    assert.deepEqual([closed.pings, closed.destroyed], [0, false]);
    on.close();
  });
});
