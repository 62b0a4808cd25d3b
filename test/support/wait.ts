import { vi } from "vitest";

/**
 * Waits until `check` holds (vi.waitFor underneath); on timeout the error
 * says what was awaited and, if given as a function, what was seen instead.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    },
    { timeout: timeoutMs, interval: 10 },
  );
}

/** Lets time pass where a test must show that something does NOT happen meanwhile. */
export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
