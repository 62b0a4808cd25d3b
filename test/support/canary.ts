import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/es/grpc/health/v1/health_pb.js";
import { clientFor } from "./broker.js";

/**
 * A well-behaved client beside an attack: it publishes to a room of its own
 * every 10 ms and receives it, and asks grpc.health.v1 every 50 ms, and
 * records how long each took. A broker frozen by one hostile request shows
 * up as deliveries and health checks that take seconds.
 */
export interface Canary {
  /** p99s of the calm second measured before the canary was handed over. */
  baseline: { p99LagMs: number; p99HealthMs: number };
  /** Forgets what was measured so far (the attack starts now). */
  reset(): Promise<void>;
  stop(): Promise<CanaryReport>;
}

export interface CanaryReport {
  /** The canary before the attack (its first second), on this machine as it is now. */
  baseline: { p99LagMs: number; p99HealthMs: number };
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

/**
 * Starts the canary in a process of its own (test/support/canary-process.ts),
 * so that what it measures is the broker, not the test process's own work
 * (an attack driven from the test process, 1,100 sockets, a flood of calls).
 */
export async function startCanary(url: string): Promise<Canary> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./canary-process.ts", import.meta.url)), url], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let errors = "";
  const waiters: Array<(line: Record<string, unknown>) => void> = [];
  child.stderr.on("data", (d) => (errors = (errors + d).slice(-4000)));
  child.stdout.on("data", (d) => {
    output += d;
    for (let i = output.indexOf("\n"); i >= 0; i = output.indexOf("\n")) {
      const line = output.slice(0, i);
      output = output.slice(i + 1);
      if (line.startsWith("{")) waiters.shift()?.(JSON.parse(line) as Record<string, unknown>);
    }
  });
  const next = (command?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the canary process did not answer ${command ?? "ready"}: ${errors}`)), 20_000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      if (command) child.stdin.write(`${command}\n`);
    });
  child.once("exit", (code) => {
    for (const waiter of waiters.splice(0)) waiter({ error: `the canary process exited (${code}): ${errors}` });
  });
  const ready = await next();
  if (ready.error) throw new Error(String(ready.error));
  return {
    baseline: ready.baseline as Canary["baseline"],
    async reset() {
      await next("reset");
    },
    async stop() {
      const report = await next("stop");
      if (report.error) throw new Error(String(report.error));
      child.stdin.end();
      return report as unknown as CanaryReport;
    },
  };
}

/** The canary in this process (canary-process.ts runs it in a process of its own). */
export async function runCanary(url: string): Promise<Canary> {
  const room = `canary-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const subscription = clientFor(url, "canary-reader").subscribe([room]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the canary did not subscribe to ${room} within 10 s`)), 10_000);
    subscription.on((event) => {
      if (event.type !== "subscribed" || event.room !== room) return;
      clearTimeout(timer);
      resolve();
    });
  });
  const publisher = clientFor(url, "canary-writer");
  const sent = new Map<string, number>();
  const lags: number[] = [];
  const arrivals: number[] = [];
  subscription.on((event) => {
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
  // A calm second first: what the canary measures on this machine as it is
  // now (a shared two-core machine may be busy), before any attack starts.
  await new Promise((r) => setTimeout(r, BASELINE_MS));
  const baseline = { p99LagMs: percentile(lags, 99), p99HealthMs: percentile(checks, 99) };
  lags.length = 0;
  checks.length = 0;
  arrivals.length = 0;
  return {
    baseline,
    async reset() {
      lags.length = 0;
      checks.length = 0;
      arrivals.length = 0;
    },
    async stop() {
      // The last ones in flight arrive, then stop.
      await new Promise((r) => setTimeout(r, 200));
      running = false;
      await Promise.all([publishing, checking]);
      await subscription.close();
      session.destroy();
      let maxGap = 0;
      for (let i = 1; i < arrivals.length; i++) maxGap = Math.max(maxGap, arrivals[i]! - arrivals[i - 1]!);
      return {
        baseline,
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

const BASELINE_MS = 1000;

/** The bar: the canary is served within 100 ms (p99) while the broker is attacked. Reported, and warned about when missed. */
export const SERVED_WITHIN_MS = 100;

/**
 * What a test asserts: p99 within 250 ms, or three times the canary's own calm
 * baseline when the shared machine is slower than that. The 100 ms bar is the
 * figure every run prints; asserting it made CI fail on a neighbour's load
 * (113 ms health p99 against a calm 38 ms, with the attack refused as it
 * should be). A broker that parses or evaluates a hostile request on its loop
 * stalls for hundreds of ms to seconds per request, far over this.
 */
export const ASSERTED_WITHIN_MS = 250;

/**
 * Asserts the canary kept being served during an attack: deliveries and
 * health checks at p99 within ASSERTED_WITHIN_MS (or 3× the calm baseline),
 * and never a stall or a health check over 1 s, which is what a broker frozen
 * by one request shows (seconds). Prints the report, and a warning when the
 * 100 ms bar was missed.
 */
export function assertServed(report: CanaryReport, what: string): void {
  const summary = `${what}: ${JSON.stringify(report)}`;
  console.log(`canary during ${summary}`);
  const lagLimit = Math.max(ASSERTED_WITHIN_MS, 3 * report.baseline.p99LagMs);
  const healthLimit = Math.max(ASSERTED_WITHIN_MS, 3 * report.baseline.p99HealthMs);
  if (!(report.p99LagMs < SERVED_WITHIN_MS && report.p99HealthMs < SERVED_WITHIN_MS))
    console.warn(`canary over ${SERVED_WITHIN_MS} ms during ${what} (calm baseline ${report.baseline.p99LagMs.toFixed(0)} / ${report.baseline.p99HealthMs.toFixed(0)} ms); asserted against ${lagLimit.toFixed(0)} / ${healthLimit.toFixed(0)} ms`);
  assert.ok(report.delivered > 10, `the canary was served: ${summary}`);
  assert.ok(report.p99LagMs < lagLimit, `canary p99 delivery lag under ${lagLimit.toFixed(0)} ms: ${summary}`);
  assert.ok(report.maxGapMs < 1000, `no canary stall over 1 s: ${summary}`);
  assert.ok(report.healthChecks > 3 && report.p99HealthMs < healthLimit, `health answered within ${healthLimit.toFixed(0)} ms: ${summary}`);
  assert.ok(report.maxHealthMs < 1000, `no health check over 1 s or failed: ${summary}`);
}

/** Resident memory of a process (a spawned broker), bytes. */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}
