import type { PresenceEntry } from "../engine/engine.js";

/** Presence changes of one room, as one event on a stream. */
export interface PresenceChangesEvent {
  type: "presence_changes";
  room: string;
  /** Final once handed out: later changes of the room go into the next batch. */
  changes: PresenceChange[];
}

export interface PresenceChange {
  kind: "join" | "leave" | "update";
  entry: PresenceEntry;
  /** Order of the change among all presence changes of this broker. */
  seq: number;
  /**
   * Set by a transport once it encoded the change for `encodedFor` (a room):
   * one change goes into the shared batch and into each late joiner's own.
   */
  encoded?: Uint8Array;
  encodedFor?: string;
}

/** A live member of a room, as the batches see it. */
export interface PresenceMember {
  /** The first change seq this member gets in batches (earlier ones reached it otherwise, see joinRoom in room-membership.ts). */
  liveFrom: number;
  push(event: PresenceChangesEvent): void;
}

/**
 * The presence changes of each room within one event-loop turn, handed to
 * the room's live members as one event each: a mass join of N sessions
 * costs a member one event per turn, encoded once for all members, instead
 * of N events. A room's batch is handed out at the end of the turn, or
 * before the room's next message or reset fans out, so presence and
 * messages keep one order per room.
 *
 * A member that went live during the turn (it just joined) gets only the
 * changes from its going live on, in a batch of its own: the earlier ones
 * reached it through its join (the presence list at join, and the changes
 * parked while it joined).
 */
export class PresenceBatches {
  private readonly open = new Map<string, PresenceChange[]>();
  private seq = 0;

  /** The seq the next change gets: a member going live now starts there. */
  get next(): number {
    return this.seq + 1;
  }

  get pending(): boolean {
    return this.open.size > 0;
  }

  /** Records a change of `room`; returns its seq. */
  add(room: string, kind: "join" | "leave" | "update", entry: PresenceEntry): number {
    const change = { kind, entry, seq: ++this.seq };
    const changes = this.open.get(room);
    if (changes) changes.push(change);
    else this.open.set(room, [change]);
    return change.seq;
  }

  /** Hands the room's batch (if any) to its live members. */
  emit(room: string, members: (visit: (member: PresenceMember) => void) => void): void {
    const changes = this.open.get(room);
    if (!changes) return;
    this.open.delete(room);
    const first = changes[0]!.seq;
    let shared: PresenceChangesEvent | undefined;
    members((member) => {
      if (member.liveFrom <= first) {
        member.push((shared ??= { type: "presence_changes", room, changes }));
        return;
      }
      const own = changes.filter((c) => c.seq >= member.liveFrom);
      if (own.length > 0) member.push({ type: "presence_changes", room, changes: own });
    });
  }

  /** Hands out every room's batch (end of the turn). */
  emitAll(members: (room: string, visit: (member: PresenceMember) => void) => void): void {
    for (const room of [...this.open.keys()]) this.emit(room, (visit) => members(room, visit));
  }
}
