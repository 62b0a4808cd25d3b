import type { PresenceEntry, RoomListener } from "./engine.js";
import type { WatchSet } from "./watch-set.js";

/**
 * Presence of the engines that hold it in this process (memory, sqlite:
 * one node): per room, the entries by session id, and a presence event to
 * the room's listener when the room is watched. Presence is not stored: a
 * restart starts with nobody here, and clients that resubscribe join again.
 */
export class LocalPresence {
  private readonly rooms = new Map<string, Map<string, PresenceEntry>>();

  constructor(
    private readonly watchers: WatchSet,
    private readonly emit: RoomListener,
  ) {}

  /** Someone is present in the room (sweep keeps it). */
  has(name: string): boolean {
    return this.rooms.has(name);
  }

  set(name: string, entry: PresenceEntry, kind: "join" | "update"): void {
    let entries = this.rooms.get(name);
    if (!entries) this.rooms.set(name, (entries = new Map()));
    entries.set(entry.sessionId, entry);
    if (this.watchers.has(name)) this.emit(name, { type: "presence", kind, entry });
  }

  /** False when the session had no entry in the room. */
  remove(name: string, sessionId: string): boolean {
    const entries = this.rooms.get(name);
    const entry = entries?.get(sessionId);
    if (!entries || !entry) return false;
    entries.delete(sessionId);
    if (entries.size === 0) this.rooms.delete(name);
    if (this.watchers.has(name)) this.emit(name, { type: "presence", kind: "leave", entry });
    return true;
  }

  /** The room's entries, oldest join first. */
  list(name: string): PresenceEntry[] {
    const entries = [...(this.rooms.get(name)?.values() ?? [])];
    return entries.sort((a, b) => a.joinedAtMs - b.joinedAtMs);
  }
}
