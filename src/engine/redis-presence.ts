import type { PresenceEntry } from "./engine.js";

/**
 * Presence across nodes, kept honest with leases. Every entry in Redis
 * carries an expiry; its node pushes the expiry out every `ttlMs / 3` for
 * the sessions it holds (touch). A node that dies stops touching, so its
 * sessions' entries expire within `ttlMs`; any node listening to the room
 * sweeps expired entries every `sweepMs` and publishes their leaves (the
 * sweep script is atomic, so each entry leaves exactly once however many
 * nodes sweep). A dead node's sessions are therefore gone from everyone's
 * presence within ttlMs + sweepMs (plus clock skew between the nodes).
 *
 * This class is the node-side bookkeeping: which entries this node owns, and
 * the two timers. Redis access is injected.
 */
export interface PresenceLeaseOptions {
  ttlMs: number;
  now: () => number;
  /** Push the expiry of the node's entries in one room out to `expiresAt` (re-adding lost ones). */
  touch: (room: string, entries: PresenceEntry[], expiresAt: number) => Promise<unknown>;
  /** Expire the room's entries past their lease, publishing leaves. */
  sweep: (room: string) => Promise<unknown>;
  /** Rooms this node listens to by name (where a leave has an audience). */
  rooms: () => Iterable<string>;
}

export class PresenceLeases {
  private readonly owned = new Map<string, Map<string, PresenceEntry>>();
  private readonly toucher: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: PresenceLeaseOptions) {
    this.toucher = setInterval(() => this.touchAll(), Math.max(50, Math.floor(options.ttlMs / 3)));
    this.sweeper = setInterval(() => this.sweepAll(), this.sweepMs);
    this.toucher.unref();
    this.sweeper.unref();
  }

  /** How often the rooms this node listens to are swept. */
  get sweepMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.options.ttlMs / 4)));
  }

  /** When an entry set now expires unless touched. */
  expiresAt(): number {
    return this.options.now() + this.options.ttlMs;
  }

  /** How long Redis keeps a room's presence keys nobody touches any more. */
  get keyTtlMs(): number {
    return this.options.ttlMs * 3;
  }

  own(room: string, entry: PresenceEntry): void {
    let entries = this.owned.get(room);
    if (!entries) this.owned.set(room, (entries = new Map()));
    entries.set(entry.sessionId, entry);
  }

  disown(room: string, sessionId: string): void {
    const entries = this.owned.get(room);
    if (!entries?.delete(sessionId)) return;
    if (entries.size === 0) this.owned.delete(room);
  }

  private touchAll(): void {
    const expiresAt = this.expiresAt();
    // Failures (Redis down) are retried by the next round; entries expire only after a whole TTL without one.
    for (const [room, entries] of this.owned) void this.options.touch(room, [...entries.values()], expiresAt).catch(() => {});
  }

  private sweepAll(): void {
    for (const room of this.options.rooms()) void this.options.sweep(room).catch(() => {});
  }

  stop(): void {
    clearInterval(this.toucher);
    clearInterval(this.sweeper);
  }
}
