import type { PresenceEntry, RoomEvent } from "../engine/engine.js";

/**
 * A joining session's view of a room's presence: the engine's list, taken
 * while the room's live events are parked (RoomMembership.pending), and the
 * parked events that change it. Sent as `subscribed.present` followed by
 * those events, so the client's list is exact at every point of its stream:
 * no change is missing, and none it already holds comes again.
 *
 * `listedFrom`/`listedTo` are the lengths of `pending` when presenceList was
 * called and when it returned. Events parked before the call are in the
 * list (the engine delivered them before it was read); events parked after
 * it returned are not. Those parked while the list was being read may or may
 * not be (an in-process engine has no such window; a networked one may
 * deliver an event after a read that already saw it): each is forwarded
 * unless the list, with the events forwarded before it, already holds it.
 */
export function changesAfterSnapshot(
  pending: RoomEvent[],
  listedFrom: number,
  listedTo: number,
  present: PresenceEntry[],
): RoomEvent[] {
  // Built at the first presence event to check: most joins find none parked, and the list may hold thousands.
  let view: Map<string, PresenceEntry> | undefined;
  return pending.filter((event, i) => {
    if (event.type !== "presence") return true;
    if (i < listedFrom) return false;
    view ??= new Map(present.map((entry) => [entry.sessionId, entry]));
    const held = view.get(event.entry.sessionId);
    if (i < listedTo && (event.kind === "leave" ? held === undefined : held !== undefined && sameEntry(held, event.entry)))
      return false;
    if (event.kind === "leave") view.delete(event.entry.sessionId);
    else view.set(event.entry.sessionId, event.entry);
    return true;
  });
}

function sameEntry(a: PresenceEntry, b: PresenceEntry): boolean {
  return (
    a === b ||
    (a.user === b.user &&
      a.device === b.device &&
      a.state === b.state &&
      a.joinedAtMs === b.joinedAtMs &&
      a.sinceMs === b.sinceMs &&
      a.lastActiveMs === b.lastActiveMs)
  );
}
