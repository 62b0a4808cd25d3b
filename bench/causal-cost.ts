/**
 * The broker's CPU per publish with and without causal dependencies, on one
 * broker child (memory engine): each round publishes N messages over
 * PublishStream (window 1024, 64 per request) to a fresh room with SUBS
 * subscribers asking for compact dependencies, once with the dependencies
 * of a publisher active in 8 rooms (one moving every 10 publishes, as the
 * fan-out's seqcast-causal row: bench/lib/causal.ts) and once without, the
 * order alternating. Prints each round and the medians.
 *
 *   node --import tsx bench/causal-cost.ts            # ROUNDS=8 N=100000 SUBS=1
 *   ONLY=on BENCH_CPU_PROF=/tmp/prof node --import tsx bench/causal-cost.ts   # a CPU profile of one side
 */
import { randomUUID } from "node:crypto";
import { TOKEN } from "./drivers/seqcast.js";
import { connect, LeanPublishStream, subscribe, type PublishMessage } from "./lean-client.js";
import { startBroker } from "./lib/broker-process.js";
import { BenchCausalContext } from "./lib/causal.js";
import { cpuSeconds } from "./lib/proc.js";

const SUBS = Number(process.env.SUBS ?? 1);
const N = Number(process.env.N ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 8);
const ONLY = process.env.ONLY; // "on" or "off": one side only (for a profile)
const WINDOW = Number(process.env.WINDOW ?? 1024);
const BATCH = Number(process.env.BATCH ?? 64);

const broker = await startBroker("memory");
const causal = new BenchCausalContext(8, 10);
const payload = Buffer.alloc(256, 1);
const results: Record<"on" | "off", number[]> = { on: [], off: [] };
/** The load generator's own CPU µs per delivery (publisher and subscribers, this process). */
const benchResults: Record<"on" | "off", number[]> = { on: [], off: [] };

/** One round: broker CPU µs per publish, this process's CPU µs per delivery. */
async function round(room: string): Promise<{ us: number; benchUs: number; perSecond: number }> {
  const connections = Array.from({ length: SUBS }, () => connect(broker.url));
  let received = 0;
  let started = 0;
  let startedAll!: () => void;
  let finish!: () => void;
  const allStarted = new Promise<void>((resolve) => (startedAll = resolve));
  const done = new Promise<void>((resolve) => (finish = resolve));
  for (const c of connections)
    subscribe(c, TOKEN, [{ room }], {
      subscribed: () => void (++started === SUBS && startedAll()),
      message: () => void (++received === N * SUBS && finish()),
      ended: () => {},
    });
  await allStarted;
  const publisher = connect(broker.url);
  let acked = 0;
  let sent = 0;
  let wake: (() => void) | undefined;
  const stream = new LeanPublishStream(publisher, TOKEN, () => {
    acked++;
    if (wake && sent - acked < WINDOW / 2) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const cpu0 = cpuSeconds(broker.pid)!;
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  while (sent < N) {
    if (sent - acked >= WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    const batch: PublishMessage[] = [];
    for (let i = 0; i < BATCH && sent < N; i++, sent++) batch.push({ room, payload, clientMessageId: randomUUID(), dependencies: causal.next() });
    if (!stream.publish(batch)) await stream.whenWritable();
  }
  await done;
  const cpu = cpuSeconds(broker.pid)! - cpu0;
  const own = process.cpuUsage(own0);
  const seconds = (performance.now() - t0) / 1000;
  for (const c of connections) c.close();
  publisher.close();
  return { us: (cpu * 1e6) / N, benchUs: (own.user + own.system) / (N * SUBS), perSecond: N / seconds };
}

for (let r = 0; r < ROUNDS; r++) {
  const sides = ONLY ? [ONLY === "on"] : r % 2 ? [true, false] : [false, true];
  for (const on of sides) {
    causal.on = on;
    const { us, benchUs, perSecond } = await round(`causal-cost-${r}-${on ? "on" : "off"}`);
    results[on ? "on" : "off"].push(us);
    benchResults[on ? "on" : "off"].push(benchUs);
    console.log(
      `round ${r + 1} causal ${on ? "on " : "off"}: ${us.toFixed(2)} µs broker CPU per publish, ${benchUs.toFixed(3)} µs bench CPU per delivery, ${perSecond.toFixed(0)} publishes/s`,
    );
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
if (results.on.length && results.off.length)
{
  console.log(`median: off ${median(results.off).toFixed(2)} µs, on ${median(results.on).toFixed(2)} µs, +${(median(results.on) - median(results.off)).toFixed(2)} µs per publish`);
  console.log(`bench CPU per delivery, median: off ${median(benchResults.off).toFixed(3)} µs, on ${median(benchResults.on).toFixed(3)} µs`);
}
await broker.stop();
process.exit(0);
