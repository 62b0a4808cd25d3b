import { isPattern, matchesPattern } from "../names/patterns.js";

/**
 * Which rooms a node listens to: counted room names and counted patterns
 * (`sports.*`, `sports.>`), shared by the engines. Inboxes (`@user`) are
 * never matched by a pattern.
 */
export class WatchSet {
  private readonly rooms = new Map<string, number>();
  private readonly patterns = new Map<string, number>();

  add(name: string): void {
    const map = isPattern(name) ? this.patterns : this.rooms;
    map.set(name, (map.get(name) ?? 0) + 1);
  }

  remove(name: string): void {
    const map = isPattern(name) ? this.patterns : this.rooms;
    const count = map.get(name) ?? 0;
    if (count > 1) map.set(name, count - 1);
    else map.delete(name);
  }

  /** Whether this exact room or pattern is watched (not: whether a pattern covers a room). */
  includes(name: string): boolean {
    return (isPattern(name) ? this.patterns : this.rooms).has(name);
  }

  /** Every watched room and pattern, once each. */
  *names(): IterableIterator<string> {
    yield* this.rooms.keys();
    yield* this.patterns.keys();
  }

  /** The rooms watched by name. */
  roomNames(): IterableIterator<string> {
    return this.rooms.keys();
  }

  /** O(1) for watched rooms; O(patterns) otherwise. */
  has(room: string): boolean {
    if ((this.rooms.get(room) ?? 0) > 0) return true;
    if (this.patterns.size === 0 || room.startsWith("@")) return false;
    for (const pattern of this.patterns.keys()) if (matchesPattern(pattern, room)) return true;
    return false;
  }
}
