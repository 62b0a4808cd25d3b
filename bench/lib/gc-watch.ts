import { PerformanceObserver, constants, type PerformanceEntry } from "node:perf_hooks";

/** Garbage collections of this process (the load generator) during a window. */
export interface GcUse {
  /** Full (mark-compact) collections. */
  major: number;
  /** Time paused in every collection, ms. */
  pausedMs: number;
  /** The longest pause, ms. */
  longestMs: number;
}

/**
 * Watches this process's garbage collections until the returned function is
 * called, which gives what it saw. A latency measured here includes the
 * load generator's own pauses: this says how much of a tail they can be.
 */
export function gcWindow(): () => GcUse {
  const use: GcUse = { major: 0, pausedMs: 0, longestMs: 0 };
  const count = (entries: PerformanceEntry[]) => {
    for (const entry of entries) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) use.major++;
      use.pausedMs += entry.duration;
      if (entry.duration > use.longestMs) use.longestMs = entry.duration;
    }
  };
  const observer = new PerformanceObserver((list) => count(list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  return () => {
    // Entries still buffered come with takeRecords().
    count(observer.takeRecords());
    observer.disconnect();
    return use;
  };
}

/** A broker child's full collections between two of its readings (EventLoopTimes.gc): "N (X ms paused)". */
export function gcSpent(a: { major: number; majorMs: number } | undefined, b: { major: number; majorMs: number } | undefined): string {
  if (!a || !b) return "n/a";
  return `${b.major - a.major} (${(b.majorMs - a.majorMs).toFixed(0)} ms paused)`;
}
