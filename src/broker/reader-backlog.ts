import { performance } from "node:perf_hooks";
import { setTimeout as realSetTimeout, clearTimeout as realClearTimeout } from "node:timers";

/**
 * Publishers wait for subscribers that fell behind but are still reading.
 *
 * A session's queue only grows while its stream refuses more (the client
 * has not read what it was sent), and a session whose queue fills is cut off
 * as a slow consumer. Without this, a publisher faster than its readers (one
 * PublishStream at 25,000 msg/s to 100 subscribers) got readers that were
 * reading, only slower, cut off within a second: the broker acknowledged
 * and queued faster than any of them could take.
 *
 * So once a session's queue is half full it is *behind*, and a publisher to
 * one of its rooms waits (the transports stop reading its PublishStream
 * requests; unary calls wait before they publish) until no session of the
 * rooms it published to is behind. Publishers to other rooms never wait. A
 * session stops being behind when its stream takes its queue. One that
 * takes nothing for STUCK_AFTER_MS is a stalled reader, not a slow one:
 * publishers stop waiting for it (it is cut off as before once its queue is
 * full) until its stream takes something again. A stalled reader thus holds
 * its rooms' publishers back once, for at most STUCK_AFTER_MS; a slow one
 * slows them to its pace. NATS does the like: it stalls a producer whose
 * consumers are near their pending limit, briefly, before it cuts them off.
 * STUCK_AFTER_MS is the default of `--reader-stall` (BrokerConfig.readerStallMs).
 */
export const STUCK_AFTER_MS = 500;

/** What the backlog knows of a session: the rooms it holds. */
export interface Reader {
  readonly rooms: ReadonlyMap<string, unknown>;
}

interface Waiter {
  /** The readers it waits for that are still behind. */
  readers: Set<Reader>;
  resolve: () => void;
}

export class ReaderBacklog {
  /** Readers behind, with when they fell behind (performance.now()). */
  private readonly behind = new Map<Reader, number>();
  /** Readers that stayed behind past STUCK_AFTER_MS: not waited for until they take something. */
  private readonly stuck = new Set<Reader>();
  private waiters: Waiter[] = [];
  private timer: ReturnType<typeof realSetTimeout> | undefined;
  /** Times publishers waited (metrics, tests). */
  waits = 0;

  constructor(private readonly stuckAfterMs = STUCK_AFTER_MS) {}

  /** Readers publishers wait for now. */
  get size(): number {
    return this.behind.size;
  }

  /**
   * Undefined when no reader of `rooms` is behind; else resolves once those
   * that are caught up (stalled ones aside). What a publisher to `rooms` waits for.
   */
  waitForRooms(rooms: Iterable<{ room: string }>): Promise<void> | undefined {
    if (this.behind.size === 0) return undefined;
    const names = new Set<string>();
    for (const { room } of rooms) names.add(room);
    const readers: Reader[] = [];
    for (const reader of this.behind.keys())
      for (const room of names)
        if (reader.rooms.has(room)) {
          readers.push(reader);
          break;
        }
    return this.wait(readers);
  }

  /** `reader`'s queue reached half its limit. */
  fellBehind(reader: Reader): void {
    if (this.stuck.has(reader) || this.behind.has(reader)) return;
    this.behind.set(reader, performance.now());
  }

  /** `reader`'s stream took its queue, or the session ended. */
  caughtUp(reader: Reader): void {
    this.stuck.delete(reader);
    if (this.behind.delete(reader)) this.settle(reader);
  }

  /**
   * Undefined when none of `readers` (default: every reader behind) is
   * behind; else resolves once none of them is (stalled ones aside).
   */
  wait(readers: Iterable<Reader> = this.behind.keys()): Promise<void> | undefined {
    const waitFor = new Set<Reader>();
    for (const reader of readers) if (this.behind.has(reader)) waitFor.add(reader);
    if (waitFor.size === 0) return undefined;
    this.waits++;
    this.arm();
    return new Promise<void>((resolve) => this.waiters.push({ readers: waitFor, resolve }));
  }

  /** `reader` is no longer waited for: release the publishers that waited for it alone. */
  private settle(reader: Reader): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      waiter.readers.delete(reader);
      if (waiter.readers.size === 0) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
    if (still.length === 0 && this.timer) {
      realClearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private arm(): void {
    if (this.timer) return;
    let oldest = Infinity;
    for (const since of this.behind.values()) oldest = Math.min(oldest, since);
    const due = Math.max(1, oldest + this.stuckAfterMs - performance.now());
    this.timer = realSetTimeout(this.check, due);
    this.timer.unref?.();
  }

  /** Readers behind for too long are stalled: publishers stop waiting for them. */
  private readonly check = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (const [reader, since] of this.behind)
      if (now - since >= this.stuckAfterMs) {
        this.behind.delete(reader);
        this.stuck.add(reader);
        this.settle(reader);
      }
    if (this.waiters.length > 0) this.arm();
  };
}
