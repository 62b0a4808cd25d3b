/**
 * What measuring publish latencies costs the broker's fan-out, in one
 * process, alternating: 100 sessions whose sinks take every batch, the memory
 * engine, BENCH_COST_BATCH publishes per event-loop turn; CPU time per
 * delivery (ns) with `measureLatency` off and on, median of 10 runs each (BENCH_COST_RUNS).
 * The counters behind /metrics are always on (plain additions), so "off" is
 * the broker without the histograms, not without metrics.
 *
 *   node --import tsx bench/metrics-cost.ts
 *
 * Alternating within one process keeps the neighbours' noise out of the
 * comparison better than two `npm run bench` runs on a shared machine.
 */
import { Broker } from "../src/broker/broker.js";
import { defaultBrokerConfig } from "../src/broker/config.js";
import { createMemoryEngine } from "../src/engine/memory.js";

const SUBSCRIBERS = 100;
const BATCH = Number(process.env.BENCH_COST_BATCH ?? 10);
const TURNS = 2000;
const RUNS = Number(process.env.BENCH_COST_RUNS ?? 10);

async function nsPerDelivery(measureLatency: boolean): Promise<number> {
  const broker = new Broker({
    config: { ...defaultBrokerConfig, publishRate: 0, heartbeatIntervalMs: 0, ackDeadlineMs: 0 },
    engine: createMemoryEngine,
    measureLatency,
  });
  let delivered = 0;
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const session = broker.openSession({ user: `u${i}`, admin: false }, "bench");
    session.attach({ write: (events) => ((delivered += events.length), true), end: () => {} });
    await broker.join(session, [{ room: "r" }]);
  }
  await new Promise((resolve) => setImmediate(resolve));
  delivered = 0;
  const publisher = { user: "pub", admin: false };
  const input = { room: "r", content: "hello world", payload: new Uint8Array(0), attributes: {}, clientMessageId: "" };
  const before = process.cpuUsage();
  for (let turn = 0; turn < TURNS; turn++) {
    await broker.publishMany(publisher, Array.from({ length: BATCH }, () => input));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const cpu = process.cpuUsage(before);
  await broker.close();
  const deliveries = TURNS * BATCH * SUBSCRIBERS;
  if (delivered !== deliveries) throw new Error(`delivered ${delivered}, expected ${deliveries}`);
  return ((cpu.user + cpu.system) * 1000) / deliveries;
}

const runs = { off: [] as number[], on: [] as number[] };
for (let i = 0; i < 3; i++) {
  await nsPerDelivery(false);
  await nsPerDelivery(true);
}
for (let i = 0; i < RUNS; i++) {
  runs.off.push(await nsPerDelivery(false));
  runs.on.push(await nsPerDelivery(true));
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
// Each "on" run against the "off" run just before it: the neighbours' load changes slower than that.
const differences = runs.on.map((on, i) => on - runs.off[i]!);
console.log(
  `CPU per delivery (${SUBSCRIBERS} subscribers, ${BATCH} publishes per turn), median of ${RUNS}: ` +
    `latency histograms off ${median(runs.off).toFixed(1)} ns, on ${median(runs.on).toFixed(1)} ns; ` +
    `median paired difference ${median(differences).toFixed(1)} ns (${differences.map((d) => d.toFixed(0)).join(", ")})`,
);
