import { systemClock, type Clock } from "./clock.js";

/**
 * Presence of sessions that ended without a goodbye, kept for a grace
 * period: a reconnect that names the old session takes it over (no leave,
 * no join); otherwise the entries are removed when the period ends.
 */
export class PresenceGrace {
  /** By the id of the session that vanished: the one its client names when it reconnects. */
  private readonly held = new Map<string, { presenceId: string; user: string; rooms: Set<string>; cancel: () => void }>();

  constructor(
    private readonly graceMs: number,
    private readonly remove: (room: string, presenceId: string) => Promise<unknown>,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Keeps the entries `presenceId` of session `sessionId` in `rooms` for the
   * grace period. They differ once a session took over its predecessor's
   * presence: a client that reconnects twice names its last session, whose
   * entries still carry the first one's id.
   */
  hold(sessionId: string, presenceId: string, user: string, rooms: Set<string>): void {
    const cancel = this.clock.setTimeout(() => {
      this.held.delete(sessionId);
      for (const room of rooms) void this.remove(room, presenceId).catch(() => {});
    }, this.graceMs);
    this.held.set(sessionId, { presenceId, user, rooms, cancel });
  }

  /** The presence held for `sessionId`, now taken over by a new session of the same user; undefined if none. */
  takeOver(sessionId: string, user: string): { presenceId: string; rooms: Set<string> } | undefined {
    const held = sessionId ? this.held.get(sessionId) : undefined;
    if (!held || held.user !== user) return undefined;
    held.cancel();
    this.held.delete(sessionId);
    return { presenceId: held.presenceId, rooms: held.rooms };
  }

  /** Removes every held entry now (shutdown). */
  async releaseAll(): Promise<void> {
    const held = [...this.held.values()];
    this.held.clear();
    for (const { cancel } of held) cancel();
    await Promise.allSettled(held.flatMap(({ presenceId, rooms }) => [...rooms].map((room) => this.remove(room, presenceId))));
  }
}
