import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/es/grpc/health/v1/health_pb.js";
import { clientFor } from "./broker.js";
import type { Recorder } from "./recorder.js";
import { Recorder as RecorderClass } from "./recorder.js";

/**
 * A well-behaved client beside an attack: it publishes to a room of its own
 * every 10 ms and receives it, and asks grpc.health.v1 every 50 ms, and
 * records how long each took. A broker frozen by one hostile request shows
 * up as deliveries and health checks that take seconds.
 */
export interface Canary {
  /** Delivery lag (publish → receive) of every canary message, ms. */
  lags: number[];
  /** Health check round trips, ms (a failed check counts as Infinity). */
  health: number[];
  stop(): Promise<CanaryReport>;
}

export interface CanaryReport {
  delivered: number;
  p99LagMs: number;
  maxLagMs: number;
  /** The longest stretch without a delivery, ms. */
  maxGapMs: number;
  healthChecks: number;
  p99HealthMs: number;
  maxHealthMs: number;
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Infinity;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

export async function startCanary(url: string): Promise<Canary> {
  const room = `canary-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const subscriber: Recorder = new RecorderClass(clientFor(url, "canary-reader").subscribe([room]));
  await subscriber.subscribedTo(room);
  const publisher = clientFor(url, "canary-writer");
  const sent = new Map<string, number>();
  const lags: number[] = [];
  const arrivals: number[] = [];
  subscriber.subscription.on((event) => {
    if (event.type !== "message") return;
    const at = performance.now();
    const from = sent.get(event.message.content);
    if (from !== undefined) lags.push(at - from);
    arrivals.push(at);
  });
  const session = http2.connect(url);
  session.on("error", () => {});
  const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
  const checks: number[] = [];
  let running = true;
  let n = 0;
  const publishing = (async () => {
    while (running) {
      const content = `c${n++}`;
      sent.set(content, performance.now());
      void publisher.publish(room, content).catch(() => {});
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const checking = (async () => {
    while (running) {
      const start = performance.now();
      try {
        await health.check({ service: "" }, { timeoutMs: 5000 });
        checks.push(performance.now() - start);
      } catch {
        checks.push(Infinity);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    lags,
    health: checks,
    async stop() {
      // The last ones in flight arrive, then stop.
      await new Promise((r) => setTimeout(r, 200));
      running = false;
      await Promise.all([publishing, checking]);
      await subscriber.subscription.close();
      session.destroy();
      let maxGap = 0;
      for (let i = 1; i < arrivals.length; i++) maxGap = Math.max(maxGap, arrivals[i]! - arrivals[i - 1]!);
      return {
        delivered: lags.length,
        p99LagMs: percentile(lags, 99),
        maxLagMs: Math.max(0, ...lags),
        maxGapMs: maxGap,
        healthChecks: checks.length,
        p99HealthMs: percentile(checks, 99),
        maxHealthMs: Math.max(0, ...checks),
      };
    },
  };
}

/** Resident memory of a process (a spawned broker), bytes. */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}
