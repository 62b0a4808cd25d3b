import type { PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";

/**
 * Who is in each room, as a subscription's stream says: the broker's list at
 * every `subscribed` (Subscribed.present), changed by the presence events
 * that follow it. One entry per session; a user with two devices has two.
 *
 * A new `subscribed` for a room replaces what was known of it: after a
 * reconnect (to a restarted broker too) every client ends up with the list
 * of the broker it reached, whatever it missed while away.
 */
export class PresenceView {
  private readonly rooms = new Map<string, Map<string, PresenceEntry>>();

  /** The room's presence is `entries` (the broker's list at subscribe). */
  reset(room: string, entries: readonly PresenceEntry[]): void {
    this.rooms.set(room, new Map(entries.map((entry) => [entry.sessionId, entry])));
  }

  /**
   * Applies a presence event; false when it changes nothing known (a leave
   * of a session not listed), which is then no news for the application.
   */
  apply(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): boolean {
    let sessions = this.rooms.get(room);
    if (!sessions) this.rooms.set(room, (sessions = new Map()));
    if (kind === "leave") return sessions.delete(entry.sessionId);
    sessions.set(entry.sessionId, entry);
    return true;
  }

  /** The room's sessions, oldest join first. */
  list(room: string): PresenceEntry[] {
    const entries = [...(this.rooms.get(room)?.values() ?? [])];
    return entries.sort((a, b) => Number((a.joinedAt?.seconds ?? 0n) - (b.joinedAt?.seconds ?? 0n)) || (a.joinedAt?.nanos ?? 0) - (b.joinedAt?.nanos ?? 0));
  }

  forget(room: string): void {
    this.rooms.delete(room);
  }
}
