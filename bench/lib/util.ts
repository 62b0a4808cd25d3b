import { performance } from "node:perf_hooks";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A progress line on stdout, stamped with the seconds since the run started. */
export const log = (...args: unknown[]) => console.log(`[${(performance.now() / 1000).toFixed(1).padStart(6)}s]`, ...args);

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** Counts problems and keeps the first few for the report. */
export class Problems {
  count = 0;
  readonly samples: string[] = [];
  add(text: string): void {
    this.count++;
    if (this.samples.length < 10) this.samples.push(text);
  }
}

/** Polls `done` every 2 ms until it holds or `timeoutMs` passed; returns whether it held. */
export async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(2);
  }
  return true;
}
