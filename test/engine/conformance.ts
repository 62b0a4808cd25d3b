import { afterAll, beforeAll, describe } from "vitest";
import type { ConformanceSuite, EngineFactory, EngineHarness, SharedStore } from "./conformance-harness.js";
import { historyConformance } from "./conformance-history.js";
import { sharedStoreConformance } from "./conformance-nodes.js";
import { publishConformance } from "./conformance-publish.js";
import { subscriberConformance } from "./conformance-subscribers.js";

/**
 * The engine conformance suite: the contract of src/engine/engine.ts, run
 * against every engine. Call it from one test file per engine with a factory
 * that builds a fresh, empty engine. Its parts, one a file by area of the
 * contract, register their tests in this one describe block, on engines it
 * opens and closes.
 */
export function engineConformance(name: string, factory: EngineFactory, shared?: SharedStore): void {
  describe(`engine conformance: ${name}`, () => {
    const harnesses: EngineHarness[] = [];
    async function open(retention = { historySize: 100, historyTtlMs: 0, dedupeWindowMs: 120_000 }): Promise<EngineHarness> {
      const events: EngineHarness["events"] = [];
      const clock = { now: 1_700_000_000_000 };
      const engine = await factory({
        retention,
        listener: (room, event) => events.push({ room, event }),
        now: () => clock.now,
      });
      const harness = { engine, events, clock };
      harnesses.push(harness);
      return harness;
    }
    afterAll(async () => {
      await Promise.allSettled(harnesses.map((h) => h.engine.close()));
    });

    // Filled in place rather than assigned: the parts take the object now, while registering their tests.
    const h = {} as EngineHarness;
    beforeAll(async () => {
      Object.assign(h, await open());
    });

    const suite: ConformanceSuite = { h, open };
    publishConformance(suite);
    historyConformance(suite);
    subscriberConformance(suite);
    if (shared) sharedStoreConformance(factory, shared);
  });
}
