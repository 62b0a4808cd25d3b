/**
 * Synchronous work in slices: a loop that filters a page of history or a
 * replay gives the event loop back after `budgetMs`, so one client's filtered
 * read (up to a page of messages, each evaluation bounded by
 * --filter-max-cost) does not stall everyone else's (issue 10 §1).
 *
 *     const slice = new TimeSlice();
 *     for (const m of page) { if (slice.due()) await slice.yield(); … }
 */
export class TimeSlice {
  private since = performance.now();

  constructor(private readonly budgetMs = 10) {}

  /** Whether the slice has used its budget. */
  due(): boolean {
    return performance.now() - this.since >= this.budgetMs;
  }

  /** Lets pending I/O and timers run (setImmediate: after the poll phase), then starts a new slice. */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}
