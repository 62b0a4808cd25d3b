import { BrokerError } from "./errors.js";
import type { BrokerStats } from "./stats.js";
import type { Logger } from "../log/logger.js";
import { LogThrottle } from "../log/throttle.js";

/**
 * How the broker calls its engine: a failure is the storage being
 * unavailable, which callers may retry, so it becomes UNAVAILABLE
 * (ENGINE_UNAVAILABLE) with the engine's message and keeps its cause;
 * it is counted (stats.engineErrors) and logged, a few lines a second at
 * most (an outage fails every call). BrokerErrors pass through as they are.
 */
export class EngineCalls {
  private readonly errorLog = new LogThrottle(5, 1000);

  constructor(
    private readonly engineName: () => string,
    private readonly stats: BrokerStats,
    private readonly log: Logger,
  ) {}

  readonly call = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      this.stats.engineErrors++;
      const message = String((error as Error)?.message ?? error);
      const engine = this.engineName();
      this.errorLog.run((suppressed) => this.log.warn({ engine, error: message, ...(suppressed ? { suppressed } : {}) }, "engine call failed"));
      throw new BrokerError("unavailable", `storage engine ${engine} failed: ${message}`, { reason: "ENGINE_UNAVAILABLE", cause: error });
    }
  };
}
