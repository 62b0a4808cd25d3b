import { test as base } from "vitest";
import type { BrokerConfig } from "../../src/broker/config.js";
import type { SeqcastClient } from "../../src/client/client.js";
import type { SubscriptionOptions } from "../../src/client/subscription.js";
import type { RunningServer } from "../../src/server/server.js";
import { clientFor, GRPC, startBroker, type ProtocolCase } from "./broker.js";
import { exited, spawnServe, type ServeProcess } from "./processes.js";
import { Recorder } from "./recorder.js";
import type { TestClaims } from "./tokens.js";

export interface BrokerFixtures {
  /**
   * Settings of the broker each test gets; a describe block changes them with
   * `test.override({ brokerConfig: { … } })`.
   */
  brokerConfig: Partial<BrokerConfig>;
  /** A fresh in-process broker per test (memory engine, port 0), closed after it. */
  broker: RunningServer;
  /** Runs `fn` after the test (last registered, first run), whether it passed or not. */
  cleanup: (fn: () => unknown) => void;
  /** A client of the test's broker, authenticated as `user`. */
  client: (user: string, p?: ProtocolCase, claims?: TestClaims) => SeqcastClient;
  /** Subscribes `user` to rooms and records what the application sees; closed after the test. */
  subscribe: (user: string, rooms: string[], p?: ProtocolCase, options?: SubscriptionOptions & { claims?: TestClaims }) => Recorder;
  /** `seqcast serve` in a process of its own (see spawnServe); killed with SIGKILL after the test. */
  serve: (args?: string[], env?: NodeJS.ProcessEnv) => Promise<ServeProcess>;
}

/** vitest's `test` with a broker, clients, subscriptions and cleanup that cannot be forgotten. */
export const test = base.extend<BrokerFixtures>({
  brokerConfig: [{}, { injected: false }],
  cleanup: async ({}, use) => {
    const closers: Array<() => unknown> = [];
    await use((fn) => void closers.push(fn));
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch(() => {});
  },
  broker: async ({ brokerConfig }, use) => {
    const server = await startBroker(brokerConfig);
    await use(server);
    await server.close();
  },
  client: async ({ broker }, use) => {
    await use((user, p = GRPC, claims) => clientFor(broker.url, user, p, claims));
  },
  subscribe: async ({ broker }, use) => {
    const open: Recorder[] = [];
    await use((user, rooms, p = GRPC, options = {}) => {
      const { claims, ...subscriptionOptions } = options;
      const recorder = new Recorder(clientFor(broker.url, user, p, claims).subscribe(rooms, { device: "test", ...subscriptionOptions }));
      open.push(recorder);
      return recorder;
    });
    await Promise.allSettled(open.map((r) => r.subscription.close()));
  },
  serve: async ({}, use) => {
    const started: ServeProcess[] = [];
    await use(async (args, env) => {
      const process = await spawnServe(args, env);
      started.push(process);
      return process;
    });
    for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.all(started.map(({ child }) => exited(child)));
  },
});

export { describe, expect, vi } from "vitest";
export { PROTOCOLS, GRPC, clientFor, startBroker, type ProtocolCase } from "./broker.js";
export { Recorder } from "./recorder.js";
export { startCuttableProxy, type CuttableProxy } from "./proxy.js";
export { testToken, TEST_SECRET, testAuthenticate, type TestClaims } from "./tokens.js";
export { waitUntil, pause } from "./wait.js";
export { exited, spawnServe, type ServeProcess } from "./processes.js";
