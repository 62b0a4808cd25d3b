import { isPattern, matchesPattern } from "../names/patterns.js";
import type { Session } from "./session.js";
import { isInbox } from "./validate.js";

/** Sessions of this node listening to one room or pattern, and the engine watch behind them. */
interface Listeners {
  sessions: Set<Session>;
  watching: Promise<void>;
  /** Of a room's sessions, those still joining it (until `live`): presence changes reach them one by one. */
  joining: Set<Session>;
}

/**
 * Which local sessions hold which rooms and patterns. Fan-out to a room costs
 * O(its sessions) plus one match per pattern held on this node; the engine is
 * asked to watch a room or pattern while at least one session holds it.
 */
export class RoomIndex {
  private readonly rooms = new Map<string, Listeners>();
  private readonly patterns = new Map<string, Listeners>();

  constructor(
    private readonly watch: (name: string) => Promise<void>,
    private readonly unwatch: (name: string) => Promise<void>,
  ) {}

  /**
   * Adds a listener of a room or pattern; resolves once the engine delivers
   * its events. A session attached to a room is joining it until `live`.
   */
  attach(session: Session, name: string): Promise<void> {
    const map = this.mapOf(name);
    let listeners = map.get(name);
    if (!listeners) {
      listeners = { sessions: new Set(), watching: this.watch(name), joining: new Set() };
      // A failed watch is reported to the joiner awaiting it; keep it from being "unhandled".
      listeners.watching.catch(() => {});
      map.set(name, listeners);
    }
    listeners.sessions.add(session);
    if (map === this.rooms) listeners.joining.add(session);
    return listeners.watching;
  }

  /** The session went live in `room` (joinRoom): presence changes reach it in batches from now on. */
  live(session: Session, room: string): void {
    this.rooms.get(room)?.joining.delete(session);
  }

  detach(session: Session, name: string): void {
    const map = this.mapOf(name);
    const listeners = map.get(name);
    if (!listeners || !listeners.sessions.delete(session)) return;
    listeners.joining.delete(session);
    if (listeners.sessions.size > 0) return;
    map.delete(name);
    listeners.watching.then(
      () => this.unwatch(name).catch(() => {}),
      () => {},
    );
  }

  /** Visits the sessions holding `room` by name, then those holding a pattern that matches it (never for inboxes). */
  forEach(room: string, byName: (session: Session) => void, byPattern: (session: Session, pattern: string) => void): void {
    const listeners = this.rooms.get(room);
    if (listeners) for (const session of listeners.sessions) byName(session);
    if (this.patterns.size === 0 || isInbox(room)) return;
    for (const [pattern, { sessions }] of this.patterns) {
      if (!matchesPattern(pattern, room)) continue;
      for (const session of sessions) byPattern(session, pattern);
    }
  }

  /** Visits the sessions still joining `room` (attached, not `live` yet). */
  forEachJoining(room: string, visit: (session: Session) => void): void {
    const listeners = this.rooms.get(room);
    if (listeners && listeners.joining.size > 0) for (const session of listeners.joining) visit(session);
  }

  /** Sessions of this node holding `room` by name. */
  sessionsOf(room: string): number {
    return this.rooms.get(room)?.sessions.size ?? 0;
  }

  /** Rooms held by name by at least one session of this node. */
  get roomCount(): number {
    return this.rooms.size;
  }

  /** Patterns held by at least one session of this node. */
  get patternCount(): number {
    return this.patterns.size;
  }

  private mapOf(name: string): Map<string, Listeners> {
    return isPattern(name) ? this.patterns : this.rooms;
  }
}
