/**
 * Logs of events a client can cause at will (bad tokens, an engine outage
 * failing every call) must not let it flood the log: the first `perInterval`
 * events of each interval are logged, the rest only counted, and the next
 * event logged after a quiet spell says how many were left out
 * (`suppressed`). The counters in /metrics still see every one.
 */
export class LogThrottle {
  private windowStart = -Infinity;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly perInterval: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Calls `log` with the number of events left out since the last line, or counts this one as left out. */
  run(log: (suppressed: number) => void): void {
    const now = this.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged >= this.perInterval) {
      this.suppressed++;
      return;
    }
    this.logged++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    log(suppressed);
  }
}
