import { systemClock, type Clock } from "./clock.js";

/**
 * Presence of sessions that ended without a goodbye, kept for a grace
 * period: a reconnect that names the old session takes it over (no leave,
 * no join); otherwise the entries are removed when the period ends.
 */
export class PresenceGrace {
  private readonly held = new Map<string, { user: string; rooms: Set<string>; cancel: () => void }>();

  constructor(
    private readonly graceMs: number,
    private readonly remove: (room: string, presenceId: string) => Promise<unknown>,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Keeps `presenceId`'s entries in `rooms` for the grace period. */
  hold(presenceId: string, user: string, rooms: Set<string>): void {
    const cancel = this.clock.setTimeout(() => {
      this.held.delete(presenceId);
      for (const room of rooms) void this.remove(room, presenceId).catch(() => {});
    }, this.graceMs);
    this.held.set(presenceId, { user, rooms, cancel });
  }

  /** The rooms of a held presence, now taken over by a new session of the same user; undefined if none. */
  takeOver(presenceId: string, user: string): Set<string> | undefined {
    const held = presenceId ? this.held.get(presenceId) : undefined;
    if (!held || held.user !== user) return undefined;
    held.cancel();
    this.held.delete(presenceId);
    return held.rooms;
  }

  /** Removes every held entry now (shutdown). */
  async releaseAll(): Promise<void> {
    const held = [...this.held];
    this.held.clear();
    for (const [, { cancel }] of held) cancel();
    await Promise.allSettled(held.flatMap(([id, { rooms }]) => [...rooms].map((room) => this.remove(room, id))));
  }
}
