import { systemClock, type Clock } from "../broker/clock.js";

/** What the keepalive needs of an HTTP/2 session (a ServerHttp2Session has all of it). */
export interface PingableSession {
  readonly closed: boolean;
  readonly destroyed: boolean;
  ping(callback: (error: Error | null) => void): boolean;
  destroy(): void;
}

export interface KeepaliveOptions {
  /** How often every session is PINGed; 0 turns the keepalive off. */
  intervalMs: number;
  /** A session that answered no PING for this long is destroyed. */
  deadTimeoutMs: number;
  clock?: Clock;
}

/**
 * Node's HTTP/2 server sends no PING by itself, and TCP keeps a frozen or
 * cut-off peer's connection "open" for a long time. Every session is PINGed;
 * one that answered nothing for deadTimeoutMs is destroyed, which ends its
 * streams (and so its sessions' presence, after the grace period).
 */
export class Keepalive<S extends PingableSession = PingableSession> {
  private readonly lastHeard = new Map<S, number>();
  private readonly clock: Clock;
  private readonly stop: (() => void) | undefined;

  constructor(private readonly options: KeepaliveOptions) {
    this.clock = options.clock ?? systemClock;
    this.stop = options.intervalMs > 0 ? this.clock.setInterval(() => this.tick(), options.intervalMs) : undefined;
  }

  /** Starts watching a session; it counts as heard from now. */
  add(session: S): void {
    this.lastHeard.set(session, this.clock.now());
  }

  delete(session: S): void {
    this.lastHeard.delete(session);
  }

  close(): void {
    this.stop?.();
    this.lastHeard.clear();
  }

  private tick(): void {
    const now = this.clock.now();
    for (const [session, heard] of this.lastHeard) {
      if (session.destroyed || session.closed) {
        this.lastHeard.delete(session);
        continue;
      }
      if (now - heard > this.options.deadTimeoutMs) {
        this.lastHeard.delete(session);
        session.destroy();
        continue;
      }
      try {
        session.ping((error) => {
          if (!error && this.lastHeard.has(session)) this.lastHeard.set(session, this.clock.now());
        });
      } catch {
        // Too many unanswered PINGs in flight: the peer is not reading; the deadline above handles it.
      }
    }
  }
}
