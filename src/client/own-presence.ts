import { unref, type Timer } from "./timers.js";

export type OwnState = "online" | "away";

/**
 * A session's own presence state (online or away): as the application sets
 * it, or as the idle clock moves it (SubscriptionOptions.awayAfterMs: away
 * after that long without markActive()). A change is sent at once; a new
 * session starts online at the broker, so "away" is sent again then.
 */
export class OwnPresence {
  private state: OwnState = "online";
  private idleTimer: Timer | undefined;

  constructor(
    /** Tells the broker (nothing while no session runs: sessionStarted() catches up). */
    private readonly send: (state: OwnState) => Promise<void>,
    private readonly awayAfterMs: number | undefined,
    private readonly isClosed: () => boolean,
  ) {}

  /** Saying what is already so sends nothing: every call would be an update event for everyone in the rooms. */
  async set(state: OwnState): Promise<void> {
    if (this.state === state) return;
    this.state = state;
    await this.send(state);
  }

  /** The user did something: back online if away, and the idle clock restarts. */
  markActive(): void {
    if (this.state === "away") void this.set("online").catch(() => {});
    this.armIdleTimer();
  }

  /** A new session started, online: restore "away" if that is where we were, and restart the idle clock. */
  sessionStarted(): void {
    if (this.state === "away") void this.send("away");
    this.armIdleTimer();
  }

  stop(): void {
    clearTimeout(this.idleTimer);
  }

  private armIdleTimer(): void {
    if (this.awayAfterMs === undefined || this.isClosed()) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = unref(
      setTimeout(() => {
        if (this.state === "online") void this.set("away").catch(() => {});
      }, this.awayAfterMs),
    );
  }
}
