/**
 * seqcast's benchmark, side by side with NATS core, NATS JetStream and Redis
 * pub/sub, in one run on this machine; writes bench/RESULTS.md.
 *
 *   npm run bench                    (node --initial-old-space-size=256 --import tsx bench/run.ts)
 *   BENCH_SCENARIOS=fanout BENCH_SYSTEMS=seqcast,nats BENCH_OUT=- npm run bench
 *
 * The load generator (this process) starts its old generation at 256 MiB:
 * with V8's default, the ~14 MB heap of 100 subscribers ran mark-compacts
 * every 40-80 ms in flat-out phases and in some paced ones (19 in 5 s in
 * one run's paced 1,000 msg/s phase, whose p99 they took from ~6 to 11 ms),
 * pauses that every latency it measures would include. The brokers and the
 * peers run with their defaults.
 *
 * Scenarios (bench/scenarios/, each documented in its file):
 *   fanout  1 publisher, 100 subscribers: flat out, paced 200 msg/s, paced
 *           1,000 msg/s, and a profiled paced phase of seqcast's broker
 *   ingest  1 publisher, 0 and 100 subscribers: acknowledged publishes/s
 *           (seqcast PublishStream and unary, JetStream file storage, NATS core;
 *           unary also from h2load, Debian's nghttp2-client, when installed)
 *   idle    10,000 Subscribe streams on 100 HTTP/2 connections: open rate,
 *           broker RSS, idle CPU, then one message to all
 *   rooms   publish cost with 1 room vs 10,000 rooms
 * Servers are processes of their own (seqcast: bench/broker-child.ts, NATS
 * and Redis: the machine's servers); their RSS and CPU time come from /proc.
 * The load generator (every client) is this process, except h2load for the
 * ingest's "unary, h2load" rows (bench/drivers/h2load.ts). Every row checks every
 * delivery and acknowledgement (gapless, in order); the run exits 1 when a
 * check fails, 2 on a bad parameter, 3 when it overran RUN_TIMEOUT. Targets
 * missed are reported (Targets table), not an error.
 *
 * Environment (default in brackets):
 *   BENCH_SCENARIOS [fanout,ingest,idle,rooms]   which scenarios, comma-separated
 *   BENCH_SYSTEMS [seqcast,seqcast-tls,seqcast-causal,seqcast-sqlite,seqcast-redis,seqcast-redis-2w,nats,jetstream,redis,floor]   which systems
 *       (seqcast = memory engine; seqcast-tls = memory engine over TLS (fan-out only; needs openssl); seqcast-causal = memory engine, every publish with BENCH_CAUSAL_DEPS dependencies (fan-out only); seqcast-redis = redis engine, one node (fan-out only);
 *       seqcast-redis-2w = `seqcast serve --engine redis --workers 2` on one port (fan-out only); floor = Node's floor, bench/floor-child.ts, fan-out and ingest
 *       (and in ingest, the same floor on a hand-written HTTP/2 connection, bench/lib/h2-framer.ts: what node:http2 costs);
 *       idle runs seqcast and NATS, rooms seqcast and seqcast-sqlite)
 *   BENCH_OUT [bench/RESULTS.md]   report file; "-" = print only
 *   NATS_URL [127.0.0.1:4222] (JetStream must be enabled there)   REDIS_PORT [6379]
 *   SEQCAST_*   passed to every broker child, as for `seqcast serve`
 *               (SEQCAST_PUBLISH_RATE defaults to 0 = unlimited here)
 * fanout:
 *   BENCH_SUBSCRIBERS [100]  BENCH_WARMUP [2000]  BENCH_WINDOW [128] (unacknowledged publishes, flat out)
 *   BENCH_MESSAGES: flat-out messages for every system, or per system
 *     BENCH_MESSAGES_SEQCAST [20000], BENCH_MESSAGES_NATS [40000], BENCH_MESSAGES_REDIS [40000]
 *   BENCH_RATE [200]  BENCH_RATE_HIGH [1000] (0 = skip)  BENCH_SECONDS [5] (each paced phase)
 *   BENCH_SEQCAST_PUBLISH [stream]   stream (PublishStream) or unary (Publish calls)
 *   BENCH_CAUSAL_DEPS [8]   dependencies per publish of the seqcast-causal row (causal metadata on;
 *       its targets: flat-out delivered msg/s and paced broker CPU within 5% of the same broker without it)
 *   BENCH_CAUSAL_MOVE [10]   one of those dependencies moves on every this many publishes (0 = never)
 *   BENCH_CAUSAL_ROUNDS [30]   paired flat-out rounds (off and on, on one broker, in alternating order) behind the throughput target
 *   BENCH_CAUSAL_PACED_ROUNDS [12]   paired paced rounds the same way, behind the CPU target
 *   BENCH_PROFILE [1]   0 = no profiled paced phase (seqcast memory)
 *   BENCH_PROFILE_PACED [a temp dir]   where the .cpuprofile of that phase goes
 *   BENCH_PROFILE_BEFORE [bench/profiles/paced-before-487241d.md]   the "before" summary
 *   BENCH_PROFILE_SAVE=<file.md>   also store this run's profile summary there (bench/profile-before.sh)
 *   BENCH_CPU_PROF=<dir>   run every broker child with --cpu-prof into <dir> (seqcast-redis-2w: the primary and each worker)
 *   BENCH_HEAP_SAMPLE=<file>  a sampling heap profile of everything a broker child allocates,
 *                          collected or not, written to <file> when it stops ("%p" in <file>: the
 *                          child's pid, else each child overwrites it); read it with bench/heap-summary.ts
 * ingest:
 *   BENCH_INGEST_MESSAGES [200000] (0 subscribers)  BENCH_INGEST_MESSAGES_SUBS [5000] (with subscribers)
 *   BENCH_INGEST_WARMUP [100000] (0 subscribers: long enough for V8 to optimise per-request code, see params.ts)
 *   BENCH_INGEST_WARMUP_SUBS [10000] (with subscribers)  BENCH_INGEST_SUBSCRIBERS [0,100]
 *   BENCH_INGEST_WINDOW [1024] (seqcast stream, JetStream in-flight acks, NATS unflushed)
 *   BENCH_INGEST_BATCH [64] (messages per PublishStream request; NATS core flush group)
 *   BENCH_UNARY_INFLIGHT [128]  BENCH_JS_SUBSCRIBERS [core] (core subscriptions, or ordered push consumers)
 * idle:
 *   BENCH_IDLE_SESSIONS [10000]  BENCH_IDLE_CONNECTIONS [100]  BENCH_IDLE_ROOMS [100]
 *   BENCH_IDLE_SECONDS [60] (four heartbeat intervals of the broker's default),
 *   BENCH_IDLE_SLICE [15] (the window's CPU is also reported per slice this long)
 * rooms:
 *   BENCH_ROOMS [10000]  BENCH_ROOMS_MESSAGES [40000] (per phase)  BENCH_ROOMS_ROUNDS [6] (paired phases; the full stage: BENCH_ROOMS_FULL_ROUNDS [20])
 *   BENCH_ROOMS_WINDOW [= ingest window]  BENCH_ROOMS_BATCH [= ingest batch]
 *   BENCH_ROOMS_SPANS=<file>   each measured phase appends its start, end, side, stage, system and broker pid there: with
 *       BENCH_CPU_PROF, bench/phase-profile.ts splits a broker's profile between one-room and many-room phases
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { seqcastRevision } from "./lib/broker-process.js";
import { mdTable } from "./lib/format.js";
import { BENCH_DIR, P, runs } from "./lib/params.js";
import { compareProfiles, profileMarkdown, readProfileMarkdown } from "./lib/profile.js";
import { binaryVersion } from "./lib/proc.js";
import { fmtTargetValue, NOISY_CORES, targetStatus, type Section } from "./lib/report.js";
import { describe, log } from "./lib/util.js";
import { fanoutScenario } from "./scenarios/fanout.js";
import { idleScenario } from "./scenarios/idle-sessions.js";
import { ingestScenario } from "./scenarios/ingest.js";
import { roomsScenario } from "./scenarios/rooms.js";
import { caveats } from "./lib/caveats.js";

/** Whole run; a broken system must not make it hang forever. */
const RUN_TIMEOUT_MS = 15 * 60_000;
const BEFORE_PROFILE = process.env.BENCH_PROFILE_BEFORE ?? path.join(BENCH_DIR, "profiles", "paced-before-487241d.md");

async function main(): Promise<number> {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${RUN_TIMEOUT_MS / 1000} s, giving up`);
    process.exit(3);
  }, RUN_TIMEOUT_MS);
  watchdog.unref();
  const started = performance.now();
  const cpus = os.cpus();
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(" ");
  log(`seqcast bench: scenarios ${P.scenarios.join(", ")}; systems ${P.systems.join(", ")}; load ${loadBefore}`);

  const sections: Section[] = [];
  const scenarios = [
    ["fanout", fanoutScenario],
    ["ingest", ingestScenario],
    ["idle", idleScenario],
    ["rooms", roomsScenario],
  ] as const;
  for (const [name, scenario] of scenarios) {
    if (!runs(name)) continue;
    log(`--- ${name}`);
    try {
      sections.push(await scenario());
    } catch (error) {
      log(`${name}: FAILED — ${describe(error)}`);
      sections.push({ title: name, body: [`The scenario failed: ${describe(error)}`], correctness: [`- ${name}: FAILED — ${describe(error)}`], details: [], targets: [], failed: true });
    }
  }

  const seconds = (performance.now() - started) / 1000;
  const targets = sections.flatMap((s) => s.targets);
  const targetTable = mdTable(
    ["target", "measured", "limit", "result", "absolute", "other processes"],
    targets.map((t) => [
      t.name,
      fmtTargetValue(t.measured, t.unit),
      `${t.kind === "max" ? "≤" : "≥"} ${fmtTargetValue(t.limit, t.unit)}`,
      `**${targetStatus(t)}**`,
      t.note ?? "",
      t.noise === undefined ? "—" : `${t.noise.toFixed(2)} cores${t.noise > NOISY_CORES ? " ⚠" : ""}`,
    ]),
    ["l", "r", "r", "l", "l", "r"],
  );
  const noisy = targets.filter((t) => (t.noise ?? 0) > NOISY_CORES).length;
  const after = sections.find((s) => s.profile)?.profile;
  const before = readProfileMarkdown(BEFORE_PROFILE);
  const natsVersion = binaryVersion("nats-server");
  const redisVersion = binaryVersion("redis-server");
  const overrides = Object.keys(process.env).filter((k) => k.startsWith("SEQCAST_"));
  const knobs = Object.keys(process.env).filter((k) => k.startsWith("BENCH_") || k === "NATS_URL" || k === "REDIS_PORT");
  const md = [
    "# seqcast benchmark: seqcast vs NATS core, NATS JetStream and Redis pub/sub",
    "",
    `Written by \`npm run bench\` (\`node ${process.execArgv.join(" ")} bench/run.ts\`) on ${new Date().toISOString()}; the run took ${seconds.toFixed(0)} s. ` +
      "Everything below comes from that one run, except the \"before\" CPU profile (see its section).",
    "",
    "## Machine",
    "",
    `- CPU: ${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}; memory ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; ${os.type()} ${os.release()} ${os.arch()}; Node ${process.version}`,
    `- Load average (1/5/15 min) before the run: ${loadBefore}; after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    `- Load generator: this process, ${loadGeneratorHeap()}; brokers and peers with their defaults`,
    `- ${natsVersion} (JetStream enabled); ${redisVersion}`,
    `- seqcast at ${seqcastRevision()}, broker in its own Node process (bench/broker-child.ts); ` +
      (overrides.length ? `broker settings overridden by ${overrides.join(", ")}` : "default broker settings except SEQCAST_PUBLISH_RATE=0, SEQCAST_USER_SESSIONS_MAX=0, SEQCAST_USER_ROOMS_PER_SECOND=0 (one bench user does everything)"),
    `- Parameters: ${knobs.length ? knobs.map((k) => `${k}=${process.env[k]}`).join(", ") : "defaults"} (scenarios: ${P.scenarios.join(", ")}; systems: ${P.systems.join(", ")})`,
    "",
    "## Targets (issue 9 §3)",
    "",
    targetTable,
    "",
    "A target is n/a when its row was not run or failed to measure. Ratios are seqcast / peer. " +
      `*other processes*: the most CPU the rest of the machine used during the phases behind the target; ⚠ above ${NOISY_CORES} cores, where the verdict is as much about the neighbours as about seqcast` +
      (noisy ? ` (${noisy} of ${targets.length} targets here: rerun on a quieter machine before believing them).` : "."),
    "",
    ...sections.flatMap((s, i) => [`## ${i + 1}. ${s.title}`, "", ...s.body, ""]),
    ...(after || (before && runs("fanout"))
      ? [
          `## CPU profile of seqcast's broker, paced ${P.rate} msg/s × ${P.subscribers} subscribers`,
          "",
          `A sampling profile (V8 inspector, bench/broker-child.ts) of a paced phase of its own, after the measured ones, so the profiler's overhead is in no number above. ` +
            "Self time by category and by function. Sampled time is wall time (a process waiting for a core still gets samples), so each share of the samples is " +
            "multiplied by the broker's CPU time in that phase (/proc) and divided by the deliveries: CPU ms per 1,000 deliveries, which compares before and after although they were recorded in different runs.",
          "",
          `- Before: ${before ? `${before.label} (from ${path.relative(path.resolve(BENCH_DIR, ".."), BEFORE_PROFILE)})` : `not available (${path.relative(path.resolve(BENCH_DIR, ".."), BEFORE_PROFILE)} missing)`}`,
          `- After: ${after ? `${after.label} (this run; ${after.file})` : "not profiled in this run"}`,
          "",
          ...compareProfiles(before, after),
        ]
      : []),
    "## Correctness checks",
    "",
    ...sections.flatMap((s) => [`### ${s.title}`, "", ...s.correctness, ""]),
    "## Details",
    "",
    "CPU of the bench process (the load generator) and of other processes on the machine during each measured phase: a busy machine shows here.",
    "",
    ...sections.flatMap((s) => [`### ${s.title}`, "", ...s.details, ""]),
    "## Caveats",
    "",
    ...caveats(cpus.length),
    "",
  ].join("\n");

  const save = process.env.BENCH_PROFILE_SAVE;
  if (save && after) {
    writeFileSync(
      save,
      profileMarkdown(after, `CPU profile of the seqcast broker: paced ${P.rate} msg/s × ${P.subscribers} subscribers, ${after.label.split(" (")[0]}`, [
        `Recorded by bench/profile-before.sh on ${new Date().toISOString()} (load average before/after: ${loadBefore} / ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; ` +
          `${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}, Node ${process.version}).`,
        `Broker: ${after.label}. A sampling profile (V8 inspector) of one paced phase of ${P.seconds} s at ${P.rate} msg/s to ${P.subscribers} subscribers, ` +
          "each on its own HTTP/2 connection, read by bench/lean-client.ts; self time by category and function (bench/profile-summary.ts).",
      ]),
    );
    log(`wrote the profile summary to ${save}`);
  }
  console.log(`\n${targetTable}\n`);
  for (const s of sections) console.log(`${s.title}\n${s.correctness.join("\n")}\n`);
  if (P.out !== "-") {
    writeFileSync(P.out, md);
    log(`wrote ${path.relative(process.cwd(), P.out) || P.out}`);
  }
  log(`done in ${seconds.toFixed(0)} s`);
  return sections.some((s) => s.failed) ? 1 : 0;
}

const code = await main().catch((error: unknown) => {
  console.error(error);
  return 2;
});
process.exitCode = code;
// Everything is closed by now; if some library still holds a handle, say so and exit anyway.
setTimeout(() => {
  console.error(`bench: handles still open 5 s after the run (${process.getActiveResourcesInfo().join(", ")}); exiting`);
  process.exit(code);
}, 5000).unref();

/** How the load generator's heap was set up: its own collections would show in every latency it measures (see the top of this file). */
function loadGeneratorHeap(): string {
  const flag = process.execArgv.find((a) => a.startsWith("--initial-old-space-size"));
  return flag
    ? `old generation starting at ${flag.split("=")[1]} MiB (\`${flag}\`, as \`npm run bench\` sets it)`
    : "V8's default heap (not `npm run bench`: its collections may weigh on the latencies measured)";
}
