import { BrokerError } from "./errors.js";
import type { Identity } from "./identity.js";
import { RateLimiter } from "./rate-limit.js";

/** A room touched again within this long costs nothing: the quota counts distinct rooms per second. */
const RECENT_MS = 1000;

/**
 * Per-user quotas that keep one token from holding the broker's memory and
 * storage: live sessions (Subscribe streams) at once, and distinct rooms
 * touched (read, joined, published to) per second, a token bucket like the
 * publish rate. Admins are exempt: operators' tools list and clear many rooms.
 */
export class UserQuotas {
  private readonly sessions = new Map<string, number>();
  private readonly touches: RateLimiter;
  /** Per user: rooms touched within RECENT_MS, oldest first (re-touching moves a room last). */
  private readonly recent = new Map<string, Map<string, number>>();
  private readonly burst: number;

  constructor(
    private readonly sessionsMax: number,
    private readonly roomsPerSecond: number,
    /** Rooms one request may name at once (a Subscribe of max-rooms rooms must fit the bucket). */
    roomsPerRequest: number,
  ) {
    this.burst = Math.max(2 * roomsPerSecond, roomsPerRequest);
    this.touches = new RateLimiter(roomsPerSecond, this.burst);
  }

  /** Counts a new session of the user, or throws SESSION_QUOTA. */
  openSession(identity: Identity): void {
    const count = this.sessions.get(identity.user) ?? 0;
    if (this.sessionsMax > 0 && !identity.admin && count >= this.sessionsMax)
      throw new BrokerError(
        "resource_exhausted",
        `user "${identity.user.slice(0, 64)}" already holds ${count} live sessions, the most one user may (${this.sessionsMax}); close one first`,
        { reason: "SESSION_QUOTA", metadata: { limit: String(this.sessionsMax) } },
      );
    this.sessions.set(identity.user, count + 1);
  }

  closeSession(user: string): void {
    const count = (this.sessions.get(user) ?? 1) - 1;
    if (count > 0) this.sessions.set(user, count);
    else this.sessions.delete(user);
  }

  /** Takes the quota for touching `rooms`, or throws ROOM_QUOTA with a retry hint. */
  touch(identity: Identity, rooms: Iterable<string>, nowMs: number): void {
    if (this.roomsPerSecond <= 0 || identity.admin) return;
    for (const room of rooms) {
      const wait = this.touchOne(identity.user, room, nowMs);
      if (wait > 0)
        throw new BrokerError(
          "resource_exhausted",
          `user "${identity.user.slice(0, 64)}" touched more than ${this.roomsPerSecond} distinct rooms per second; retry in ${wait} ms`,
          { reason: "ROOM_QUOTA", retryAfterMs: wait, metadata: { rooms_per_second: String(this.roomsPerSecond) } },
        );
    }
  }

  /** 0 when allowed, else the ms until a new room may be touched. */
  private touchOne(user: string, room: string, nowMs: number): number {
    let rooms = this.recent.get(user);
    const at = rooms?.get(room);
    if (at !== undefined && nowMs - at < RECENT_MS) return 0;
    const wait = this.touches.take(user, nowMs);
    if (wait > 0) return wait;
    if (!rooms) this.recent.set(user, (rooms = new Map()));
    rooms.delete(room);
    rooms.set(room, nowMs);
    // Bounded: more rooms than the burst cannot have been touched within a second.
    if (rooms.size > this.burst) rooms.delete(rooms.keys().next().value!);
    return 0;
  }

  /** Forgets what no longer matters: full buckets, touches older than a second. */
  prune(nowMs: number): void {
    this.touches.prune(nowMs);
    for (const [user, rooms] of this.recent) {
      for (const [room, at] of rooms) {
        if (nowMs - at < RECENT_MS) break;
        rooms.delete(room);
      }
      if (rooms.size === 0) this.recent.delete(user);
    }
  }
}
