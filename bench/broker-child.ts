/**
 * The seqcast broker as a process of its own, for bench/run.ts: it is measured
 * like nats-server and redis-server (own process, own RSS, own CPU time).
 *
 * Starts an in-memory broker on 127.0.0.1 with a free port and prints one JSON
 * line `{"port":…,"pid":…}` on stdout. It shuts down gracefully and exits on
 * SIGTERM/SIGINT or when its stdin closes (the parent died), so a CPU profile
 * taken with `--cpu-prof` gets written. A line `elu` on stdin is answered with
 * the event-loop utilisation so far (JSON line on stdout).
 *
 * Broker limits are the defaults unless SEQCAST_* variables override them
 * (same variables as `seqcast serve`).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { constants, performance, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { resolveSettings } from "../src/cli/settings.js";
import { createMemoryEngine } from "../src/engine/memory.js";
import type { Engine, EngineOptions } from "../src/engine/engine.js";
import { createSqliteEngine } from "../src/engine/sqlite.js";
import { createAuthenticator } from "../src/server/auth.js";
import { startServer } from "../src/server/server.js";
import { TlsCertificate } from "../src/server/tls.js";

// BENCH_ENGINE=sqlite runs the durable default engine on a file under
// BENCH_DATA_DIR (synchronous=NORMAL, as `seqcast serve` does by default).
// BENCH_ENGINE=redis runs the multi-node engine on BENCH_REDIS_URL (default
// redis://127.0.0.1:6379) under BENCH_REDIS_PREFIX (default a fresh one per
// process: give several broker children the same prefix to make them nodes
// of one deployment). For N workers on one port, run
// `node bin/seqcast.js serve --engine redis --workers N` instead.
const sqlitePath = process.env.BENCH_DATA_DIR ? `${process.env.BENCH_DATA_DIR}/seqcast.db` : undefined;
async function benchEngine(): Promise<(options: EngineOptions) => Engine> {
  if (process.env.BENCH_ENGINE === "sqlite" && sqlitePath)
    return (options) => createSqliteEngine({ ...options, path: sqlitePath });
  if (process.env.BENCH_ENGINE === "redis") {
    // Imported only when asked for, so this child also runs against commits
    // without a Redis engine (bench/profile-before.sh runs it at 487241d).
    const { createRedisEngine } = await import("../src/engine/redis.js");
    return (options) =>
      createRedisEngine({
        ...options,
        url: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
        prefix: process.env.BENCH_REDIS_PREFIX ?? `seqcast-bench:${process.pid}:`,
      });
  }
  return createMemoryEngine;
}
const settings = resolveSettings({}, process.env);
const server = await startServer({
  config: settings.broker,
  // SEQCAST_METRICS=off measures the broker without /metrics and its latency histograms.
  metrics: settings.metrics,
  engine: await benchEngine(),
  // The bench's clients sign their tokens with BENCH_JWT_SECRET (see bench/run.ts).
  authenticate: await (async () => {
    const auth = await createAuthenticator({ secret: new TextEncoder().encode(process.env.BENCH_JWT_SECRET ?? "bench") });
    return (header: string | null) => auth.authenticate(header);
  })(),
  port: 0,
  host: "127.0.0.1",
  // SEQCAST_TLS_CERT and SEQCAST_TLS_KEY: TLS, as `seqcast serve --tls-cert --tls-key` (the fan-out's "seqcast-tls" row).
  tls: settings.tlsCert ? TlsCertificate.load({ cert: settings.tlsCert, key: settings.tlsKey }) : undefined,
});

// BENCH_HEAP_SAMPLE=FILE: a sampling heap profile of everything allocated
// from start to stop, collected or not (where the garbage comes from), written
// to FILE on stop (summarize it with bench/heap-summary.ts); "%p" in FILE is
// the child's pid, so a scenario's children (one per row) each keep theirs.
const heapSampleFile = process.env.BENCH_HEAP_SAMPLE?.replaceAll("%p", String(process.pid));
const heapSampler = heapSampleFile ? new Session() : undefined;
if (heapSampler) {
  heapSampler.connect();
  heapSampler.post("HeapProfiler.startSampling", {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
}

// The collections so far, reported with the event-loop times: how much of an
// idle or paced phase was the collector (its main-thread pauses; helper
// threads' CPU shows only in the process's CPU time).
const gc = { major: 0, majorMs: 0, minor: 0, minorMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      gc.major++;
      gc.majorMs += entry.duration;
    } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      gc.minor++;
      gc.minorMs += entry.duration;
    }
  }
}).observe({ entryTypes: ["gc"] });

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Never hang on a stuck client: exit after 3 s whatever happens.
  setTimeout(() => process.exit(code), 3000).unref();
  if (heapSampler && heapSampleFile)
    await new Promise<void>((resolve) =>
      heapSampler.post("HeapProfiler.stopSampling", (error, result) => {
        if (!error) writeFileSync(heapSampleFile, JSON.stringify(result.profile));
        resolve();
      }),
    );
  try {
    await server.close();
  } catch (error) {
    process.stderr.write(`broker-child: close failed: ${String(error)}\n`);
  }
  process.exit(code);
}

process.on("SIGTERM", () => void stop(0));
process.on("SIGINT", () => void stop(0));
process.stdin.on("end", () => void stop(0));
// Line protocol on stdin: "elu" answers one JSON line with the cumulative
// event-loop idle/active times (ms), collections (`gc`) and heap in use, so
// the parent can tell a saturated event loop from one waiting on I/O and see
// what the collector did; "profile-start" and "profile-stop FILE" take
// a V8 CPU profile of one phase (answered by {"profiling":true} and
// {"profile":FILE}).
const profiler = new Session();
profiler.connect();
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  input += chunk;
  for (let newline = input.indexOf("\n"); newline >= 0; newline = input.indexOf("\n")) {
    const command = input.slice(0, newline).trim();
    input = input.slice(newline + 1);
    if (command === "elu") {
      const { idle, active } = performance.eventLoopUtilization();
      process.stdout.write(`${JSON.stringify({ elu: { idle, active, gc, heapUsed: process.memoryUsage().heapUsed } })}\n`);
    } else if (command === "profile-start") {
      profiler.post("Profiler.enable", () => profiler.post("Profiler.start", () => process.stdout.write(`${JSON.stringify({ profiling: true })}\n`)));
    } else if (command.startsWith("profile-stop ")) {
      const file = command.slice("profile-stop ".length);
      profiler.post("Profiler.stop", (error, result) => {
        if (!error) writeFileSync(file, JSON.stringify(result.profile));
        process.stdout.write(`${JSON.stringify({ profile: error ? "" : file })}\n`);
      });
    }
  }
});
process.stdin.on("error", () => void stop(0));
process.stdin.resume();

process.stdout.write(`${JSON.stringify({ port: server.port, pid: process.pid })}\n`);
