import type { RoomEvent } from "../engine/engine.js";
import type { FlushScheduler } from "./outbox.js";
import { PresenceBatches, type PresenceChangesEvent, type PresenceMember } from "./presence-batches.js";
import type { RoomIndex } from "./room-index.js";
import type { Session } from "./session.js";

/**
 * Presence changes on their way to a room's sessions: one batch per room
 * and turn for the live members (presence-batches.ts), handed out before
 * the room's next message or reset and otherwise when the turn's streams
 * are written; each change at once to sessions still joining (they park
 * it and check it against the presence list their join read); and nothing
 * in a room with more members on this node than `--presence-events-max`
 * (GetPresence still answers there).
 */
export class PresenceFanOut {
  private readonly batches = new PresenceBatches();

  constructor(
    private readonly index: RoomIndex,
    private readonly flusher: FlushScheduler,
    private readonly eventsMax: number,
    private readonly now: () => number,
  ) {
    // A turn's presence changes go out as batches before the turn's streams are written.
    flusher.beforeFlush = () => this.batches.emitAll((room, visit) => this.visitLiveMembers(room, visit));
  }

  /** The first batched change a member going live now receives. */
  get next(): number {
    return this.batches.next;
  }

  /** Too many members on this node for presence events (presenceEventsMax). */
  off(room: string): boolean {
    return this.eventsMax > 0 && this.index.sessionsOf(room) > this.eventsMax;
  }

  /** A presence change the engine reported for `room`. */
  change(room: string, event: RoomEvent & { type: "presence" }, now: number): void {
    if (this.off(room)) return;
    this.batches.add(room, event.kind, event.entry);
    this.flusher.wake();
    // Sessions still joining the room park the change (checked against their presence list at join);
    // the index knows them, so a change costs O(joiners), not O(members).
    this.index.forEachJoining(room, (session) => session.deliver(room, event, now));
  }

  /** Hands the room's batched changes to its live sessions now: its next event must follow them. */
  flushRoom(room: string): void {
    if (!this.batches.pending) return;
    this.batches.emit(room, (visit) => this.visitLiveMembers(room, visit));
  }

  private visitLiveMembers(room: string, visit: (member: PresenceMember) => void): void {
    const now = this.now();
    this.index.forEach(
      room,
      (session) => {
        const membership = session.rooms.get(room);
        if (!membership || membership.joining || membership.presenceFrom === undefined) return;
        visit(new LiveMember(membership.presenceFrom, session, now));
      },
      () => {},
    );
  }
}

/**
 * A live member as the batches visit it. A class, not an object literal with
 * an arrow function: run through tsx (esbuild's keepNames), every such
 * function gets its name set by Object.defineProperty when it is made, about
 * 300 ns and 250 bytes each, and this is made once per member per flush.
 */
class LiveMember implements PresenceMember {
  constructor(
    readonly liveFrom: number,
    private readonly session: Session,
    private readonly now: number,
  ) {}

  push(event: PresenceChangesEvent): void {
    this.session.queue.push(event, this.now);
  }
}
