/**
 * Fan-out: one room / subject / channel, BENCH_SUBSCRIBERS subscribers each
 * on its own connection, one publisher connection, 256-byte messages.
 *
 *   warmup     BENCH_WARMUP messages flat out, not measured
 *   flat out   N messages, at most BENCH_WINDOW unacknowledged
 *   paced      BENCH_RATE msg/s for BENCH_SECONDS s (latency, CPU per delivery)
 *   paced-high BENCH_RATE_HIGH msg/s for BENCH_SECONDS s (does it keep up?)
 *   profiled   seqcast (memory) only: the paced phase again with the broker's
 *              CPU profiler on (BENCH_PROFILE), so the measured phases above
 *              carry no profiler overhead
 *
 * Every delivery is checked (gapless, in order; see lib/tracker.ts).
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { NatsFanout } from "../drivers/nats.js";
import { RedisFanout } from "../drivers/redis.js";
import { SeqcastFanout } from "../drivers/seqcast.js";
import type { FanoutDriver } from "../drivers/driver.js";
import { loopBusy, startBroker, startFloor, startWorkers, type BrokerChild, type EngineName } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtMs, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import { has, P, type SystemName } from "../lib/params.js";
import { latencyStats, median, type LatencyStats } from "../lib/percentile.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssBytes, rssPeak, type CpuUse } from "../lib/proc.js";
import { gcWindow, type GcUse } from "../lib/gc-watch.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import { FanoutTracker, type PhaseSpec, type Violation } from "../lib/tracker.js";
import { describe, log, sleep } from "../lib/util.js";
import { summarizeProfileFile, type ProfileResult } from "../lib/profile.js";
import { BenchCausalContext } from "../lib/causal.js";

const PHASE_TIMEOUT_MS = 60_000;

interface PacedResult {
  rate: number;
  achievedRate: number;
  stats: LatencyStats;
  cpu: CpuUse;
  p50BySecond: number[];
  p50First: number;
  p50Last: number;
  missing: number;
  deliveries: number;
  /** The load generator's own garbage collections during the phase. */
  gc: GcUse;
}

interface SystemResult {
  system: string;
  version: string;
  publishMode: string;
  messages: number;
  skipped?: string;
  deliveredPerSec?: number;
  publishPerSec?: number;
  flatSeconds?: number;
  flatCpu?: CpuUse;
  brokerLoop?: number;
  paced?: PacedResult;
  pacedHigh?: PacedResult;
  profile?: ProfileResult;
  rssStartMiB?: number;
  rssIdleMiB?: number;
  rssPeakMiB?: number;
  connectSeconds?: number;
  ok: boolean;
  check: string;
  notes: string[];
  samples: Violation[];
  /** seqcast-causal: rounds of the same phase with causal metadata off and on, on one broker (see runSystem). */
  pairs?: CausalPairs;
}

/** Per round: flat-out delivered msg/s, and paced-high broker CPU (share of a core), without and with causal metadata. */
interface CausalPairs {
  flat: Array<{ off: number; on: number }>;
  cpu: Array<{ off: number; on: number }>;
}

/**
 * Toggles a driver's causal metadata for paired rounds: the same broker
 * process and subscribers, phases alternating off/on, so that the machine's
 * slower and faster spells (which move a phase by ±10% here) fall on both.
 */
interface CausalToggle {
  rounds: number;
  set(on: boolean): void;
}

async function pacedPhase(driver: FanoutDriver, tracker: FanoutTracker, phase: number, rate: number, base: number): Promise<PacedResult> {
  const count = tracker.phases[phase]!.messages;
  const cpu = cpuWindow(driver.serverPid);
  const gc = gcWindow();
  const start = performance.now();
  tracker.startLatency(phase, start, base);
  const deadline = start + P.seconds * 1000 + 20_000;
  let sent = 0;
  while (sent < count && performance.now() < deadline) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (sent < due) driver.publishOne(makePayload(P.messageBytes, base + sent++, phase));
    await sleep(1);
  }
  const achievedRate = sent / ((performance.now() - start) / 1000);
  await driver.settle();
  await tracker.waitPhase(phase, Math.max(5000, deadline - performance.now()));
  const used = cpu();
  const gcUse = gc();
  const [p50First, p50Last] = tracker.firstLastP50(phase);
  return {
    rate,
    achievedRate,
    stats: latencyStats(tracker.latencies(phase)),
    cpu: used,
    p50BySecond: tracker.p50BySecond(phase, P.seconds),
    p50First,
    p50Last,
    missing: tracker.missing(phase),
    deliveries: count * tracker.subscribers,
    gc: gcUse,
  };
}

async function runSystem(driver: FanoutDriver, messages: number, profileFile: string | undefined, causal?: CausalToggle): Promise<SystemResult> {
  const phases: PhaseSpec[] = [
    { name: "warmup", messages: P.warmup, latency: false },
    { name: "flat out", messages, latency: false },
    { name: `paced ${P.rate}/s`, messages: P.rate * P.seconds, latency: true },
    { name: `paced ${P.rateHigh}/s`, messages: P.rateHigh * P.seconds, latency: true },
    { name: `profiled paced ${P.rate}/s`, messages: profileFile ? P.rate * P.seconds : 0, latency: true },
  ];
  const [WARMUP, FLAT, PACED, HIGH, PROFILED] = [0, 1, 2, 3, 4];
  // Paired rounds (causal metadata off and on, the order alternating): flat out each, then paced-high each.
  const PAIRS = phases.length;
  // As many paced rounds as flat-out ones: one paced round's CPU ratio moved between 0.93× and 1.18× here, four left the median ±5%.
  const rounds = causal?.rounds ?? 0;
  const pacedRounds = P.rateHigh > 0 ? rounds : 0;
  // Odd rounds go on first: a broker that grows slower as it runs (its idempotency keys pile up) must not favour either side.
  const roundOrder = (r: number) => (r % 2 === 0 ? [false, true] : [true, false]);
  for (let r = 0; r < rounds; r++)
    for (const on of roundOrder(r)) phases.push({ name: `round ${r + 1} flat out, causal ${on ? "on" : "off"}`, messages, latency: false });
  for (let r = 0; r < pacedRounds; r++)
    for (const on of roundOrder(r))
      phases.push({ name: `round ${r + 1} paced ${P.rateHigh}/s, causal ${on ? "on" : "off"}`, messages: P.rateHigh * P.seconds, latency: true });
  const tracker = new FanoutTracker(P.subscribers, phases, driver.sequenced);
  const result: SystemResult = { system: driver.name, version: driver.version, publishMode: driver.publishMode, messages, ok: false, check: "", notes: [], samples: [] };
  const peak = rssPeak(driver.serverPid);
  let index = 0;
  const flatOut = async (phase: number) => {
    const base = index;
    index += phases[phase]!.messages;
    await driver.publishWindowed(phases[phase]!.messages, (k) => makePayload(P.messageBytes, base + k, phase), P.window);
  };
  const nextBase = (phase: number) => {
    const base = index;
    index += phases[phase]!.messages;
    return base;
  };
  try {
    result.rssStartMiB = MiB(rssBytes(driver.serverPid));
    const t0 = performance.now();
    await driver.connectSubscribers(P.subscribers, {
      started: (sub, sequence) => tracker.startAfter(sub, sequence),
      deliver: (sub, payload, recvTime, sequence) => tracker.deliver(sub, payload, recvTime, sequence),
      fail: (sub, reason) => tracker.fail(sub, reason),
    });
    result.connectSeconds = (performance.now() - t0) / 1000;
    log(`${driver.name}: ${P.subscribers} subscribers connected in ${result.connectSeconds.toFixed(2)} s`);
    await sleep(300);
    result.rssIdleMiB = MiB(rssBytes(driver.serverPid));

    if (P.warmup > 0) {
      await flatOut(WARMUP);
      const ok = await tracker.waitPhase(WARMUP, PHASE_TIMEOUT_MS);
      if (!ok) result.notes.push(`warmup incomplete: ${tracker.missing(WARMUP)} deliveries missing`);
      await sleep(300);
    }

    const flatPhase = async (phase: number) => {
      const loop0 = await driver.eventLoop?.();
      const cpu = cpuWindow(driver.serverPid);
      const start = performance.now();
      await flatOut(phase);
      const published = performance.now();
      const ok = await tracker.waitPhase(phase, PHASE_TIMEOUT_MS);
      const end = ok ? tracker.doneAt[phase]! : performance.now();
      const flatCpu = cpu();
      const brokerLoop = loopBusy(loop0, await driver.eventLoop?.());
      const publishPerSec = messages / ((published - start) / 1000);
      const flatSeconds = (end - start) / 1000;
      const deliveredPerSec = ok ? (messages * P.subscribers) / flatSeconds : undefined;
      if (!ok) result.notes.push(`${phases[phase]!.name} phase incomplete after ${flatSeconds.toFixed(1)} s: ${tracker.missing(phase)} deliveries missing`);
      log(
        `${driver.name}: ${phases[phase]!.name} ${ok ? `${fmtInt(deliveredPerSec)} delivered msg/s` : "INCOMPLETE"}, ${fmtInt(publishPerSec)} publish msg/s, ` +
          `${flatSeconds.toFixed(2)} s (broker CPU ${fmtPct(flatCpu.server)}, bench loop ${fmtPct(flatCpu.benchLoop)}, other ${fmtCores(flatCpu.otherCores)} cores)`,
      );
      await sleep(500);
      return { flatCpu, brokerLoop, publishPerSec, flatSeconds, deliveredPerSec };
    };
    Object.assign(result, await flatPhase(FLAT));

    const paced = async (phase: number, rate: number) => {
      const r = await pacedPhase(driver, tracker, phase, rate, nextBase(phase));
      if (r.missing > 0) result.notes.push(`${phases[phase]!.name}: ${r.missing} of ${r.deliveries} deliveries missing`);
      log(
        `${driver.name}: ${phases[phase]!.name}: ${r.achievedRate.toFixed(0)} msg/s achieved, p50 ${fmtMs(r.stats.p50)} ms, p99 ${fmtMs(r.stats.p99)} ms, ` +
          `max ${fmtMs(r.stats.max)} ms, broker CPU ${fmtPct(r.cpu.server)}, bench CPU ${fmtPct(r.cpu.bench)}, other ${fmtCores(r.cpu.otherCores)} cores`,
      );
      await sleep(500);
      return r;
    };
    result.paced = await paced(PACED, P.rate);
    if (P.rateHigh > 0) result.pacedHigh = await paced(HIGH, P.rateHigh);
    if (profileFile && driver.profile) {
      await driver.profile("profile-start");
      const r = await pacedPhase(driver, tracker, PROFILED, P.rate, nextBase(PROFILED));
      await driver.profile(`profile-stop ${profileFile}`);
      if (r.missing > 0) result.notes.push(`profiled paced phase: ${r.missing} deliveries missing`);
      result.profile = summarizeProfileFile(profileFile, r.deliveries, r.cpu.serverSeconds, `${driver.version}, driven by ${driver.publishMode}`);
      const unprofiled = result.paced;
      if (result.profile && unprofiled?.cpu.serverSeconds !== undefined)
        result.profile.unprofiledPer1000 = (unprofiled.cpu.serverSeconds * 1e6) / unprofiled.deliveries;
      log(`${driver.name}: profiled paced phase done, profile in ${profileFile}`);
    }
    if (causal && rounds > 0) {
      const pairs: CausalPairs = { flat: [], cpu: [] };
      let phase = PAIRS;
      for (let r = 0; r < rounds; r++) {
        const pair = { off: NaN, on: NaN };
        for (const on of roundOrder(r)) {
          causal.set(on);
          pair[on ? "on" : "off"] = (await flatPhase(phase++)).deliveredPerSec ?? NaN;
        }
        pairs.flat.push(pair);
      }
      for (let r = 0; r < pacedRounds; r++) {
        const pair = { off: NaN, on: NaN };
        for (const on of roundOrder(r)) {
          causal.set(on);
          pair[on ? "on" : "off"] = (await paced(phase++, P.rateHigh)).cpu.server ?? NaN;
        }
        pairs.cpu.push(pair);
      }
      result.pairs = pairs;
    }
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`${driver.name}: run failed: ${describe(error)}`);
  } finally {
    result.rssPeakMiB = MiB(peak());
    await driver.close().catch((error: unknown) => result.notes.push(`close: ${describe(error)}`));
  }
  const missing = tracker.missing();
  const duplicates = tracker.duplicates();
  const violations = driver.sequenced ? tracker.seqViolations : tracker.indexViolations;
  const dead = tracker.deadCount();
  result.ok = missing === 0 && duplicates === 0 && violations === 0 && dead === 0 && driver.publishErrors.count === 0 && !result.notes.some((n) => n.startsWith("run failed"));
  const total = tracker.expectedDeliveries();
  result.check =
    (driver.sequenced
      ? "every subscriber got the broker's sequences 1, 2, 3, … with no gap, duplicate or reordering"
      : "every subscriber got the publisher's message indices 0, 1, 2, … with no gap, duplicate or reordering") +
    `: ${violations} violations; ${total - missing} of ${total} deliveries received, ${missing} missing, ${duplicates} extra; ` +
    `${dead} subscribers cut off; ${driver.publishErrors.count} publish errors` +
    (driver.sequenced ? ` (publisher-index inversions, which concurrent unary calls may cause: ${tracker.indexViolations / P.subscribers} messages)` : "");
  result.notes.push(...tracker.deadReasons().slice(0, 3), ...driver.publishErrors.samples.slice(0, 5), ...driver.subscriberErrors.samples.slice(0, 5));
  result.samples = tracker.samples;
  return result;
}

const SYSTEMS: Array<{ system: SystemName; label: string }> = [
  { system: "seqcast", label: "seqcast" },
  { system: "seqcast-causal", label: "seqcast-causal" },
  { system: "seqcast-sqlite", label: "seqcast-sqlite" },
  { system: "seqcast-redis", label: "seqcast-redis" },
  { system: "seqcast-redis-2w", label: "seqcast-redis ×2 workers" },
  { system: "nats", label: "NATS" },
  { system: "redis", label: "Redis" },
  { system: "floor", label: "node:http2 floor" },
];

export async function fanoutScenario(): Promise<Section> {
  const results: SystemResult[] = [];
  const profileDir = P.profile ? (P.profileDir ? path.resolve(P.profileDir) : mkdtempSync(path.join(os.tmpdir(), "seqcast-bench-profile-"))) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  for (const { system, label } of SYSTEMS) {
    if (!has(system)) continue;
    if (system.startsWith("seqcast") || system === "floor") {
      const engine: EngineName = system === "seqcast-sqlite" ? "sqlite" : system === "seqcast-redis" ? "redis" : "memory";
      let broker: BrokerChild | undefined;
      try {
        broker = system === "floor" ? await startFloor() : system === "seqcast-redis-2w" ? await startWorkers(2) : await startBroker(engine);
        log(`${label}: child pid ${broker.pid} on port ${broker.port} (${broker.version})`);
        const profileFile = profileDir && system === "seqcast" ? path.join(profileDir, "seqcast-paced.cpuprofile") : undefined;
        // The floor speaks PublishStream only.
        const causal = system === "seqcast-causal" ? new BenchCausalContext(P.causalDependencies, P.causalMoveEvery) : undefined;
        results.push(
          await runSystem(
            new SeqcastFanout(broker, label, system === "floor" ? "stream" : P.seqcastPublish, causal),
            P.messages.seqcast,
            profileFile,
            causal && { rounds: P.causalRounds, set: (on) => (causal.on = on) },
          ),
        );
      } catch (error) {
        log(`${label}: SKIPPED — ${describe(error)}`);
        results.push(skipped(label, `broker did not start (${describe(error).split("\n")[0]})`));
      } finally {
        await broker?.stop();
      }
    } else {
      let driver: FanoutDriver;
      try {
        driver = system === "nats" ? await NatsFanout.open() : await RedisFanout.open();
      } catch (error) {
        log(`${label}: SKIPPED — ${describe(error)}`);
        results.push(skipped(label, describe(error)));
        continue;
      }
      results.push(await runSystem(driver, system === "nats" ? P.messages.nats : P.messages.redis, undefined));
    }
    await sleep(500);
  }
  return section(results);
}

function skipped(system: string, reason: string): SystemResult {
  return { system, version: "—", publishMode: "", messages: 0, skipped: reason, ok: true, check: "", notes: [], samples: [] };
}

/** Rows of seqcast / peer ratios under a table. */
function ratioRows(results: SystemResult[], cells: (a: SystemResult, b: SystemResult) => string[]): string[][] {
  const ran = results.filter((r) => !r.skipped);
  const ours = ran.filter((r) => r.system.startsWith("seqcast"));
  const peers = ran.filter((r) => !r.system.startsWith("seqcast"));
  return ours.flatMap((a) => peers.map((b) => [`*${a.system} / ${b.system}*`, ...cells(a, b)]));
}

const mark = (r: SystemResult) => (r.ok ? "" : " ⚠");

function section(results: SystemResult[]): Section {
  const ran = results.filter((r) => !r.skipped);
  const skippedRows = results.filter((r) => r.skipped).map((r) => `- ${r.system}: skipped (${r.skipped})`);
  const flatRows = ran.map((r) => [
    `${r.system}${mark(r)}`,
    fmtInt(r.deliveredPerSec),
    fmtInt(r.publishPerSec),
    fmtPct(r.flatCpu?.server),
    `${fmtPct(r.flatCpu?.bench)} / ${fmtPct(r.flatCpu?.benchLoop)}${(r.flatCpu?.benchLoop ?? 0) >= 90 ? " (bench-bound)" : ""}`,
    fmtMiB(r.rssPeakMiB),
  ]);
  flatRows.push(
    ...ratioRows(results, (a, b) => [
      fmtRatio(ratio(a.deliveredPerSec, b.deliveredPerSec)),
      fmtRatio(ratio(a.publishPerSec, b.publishPerSec)),
      fmtRatio(ratio(a.flatCpu?.server, b.flatCpu?.server)),
      "",
      fmtRatio(ratio(a.rssPeakMiB, b.rssPeakMiB)),
    ]),
  );
  const pacedTable = (pick: (r: SystemResult) => PacedResult | undefined) => {
    const rows = ran.map((r) => {
      const p = pick(r);
      return [
        `${r.system}${mark(r)}`,
        p ? p.achievedRate.toFixed(0) : "—",
        p ? `${fmtInt(p.deliveries - p.missing)} / ${fmtInt(p.deliveries)}` : "—",
        fmtMs(p?.stats.p50),
        fmtMs(p?.stats.p99),
        fmtMs(p?.stats.max),
        fmtPct(p?.cpu.server),
        fmtPct(p?.cpu.bench),
        p ? `${p.gc.major} / ${p.gc.pausedMs.toFixed(0)} ms / ${p.gc.longestMs.toFixed(1)} ms` : "—",
      ];
    });
    rows.push(
      ...ratioRows(results, (a, b) => {
        const pa = pick(a);
        const pb = pick(b);
        return ["", "", fmtRatio(ratio(pa?.stats.p50, pb?.stats.p50)), fmtRatio(ratio(pa?.stats.p99, pb?.stats.p99)), fmtRatio(ratio(pa?.stats.max, pb?.stats.max)), fmtRatio(ratio(pa?.cpu.server, pb?.cpu.server)), "", ""];
      }),
    );
    return mdTable(
      ["system", "msg/s achieved", "deliveries received", "p50 ms", "p99 ms", "max ms", "broker CPU", "bench CPU", "bench GC: full / paused / longest"],
      rows,
    );
  };

  const body = [
    `One room / subject / channel, **${P.subscribers} subscribers each on its own connection** (seqcast: one Subscribe stream per HTTP/2 connection; ` +
      `NATS: one connection each; Redis: one SUBSCRIBE connection each), one publisher connection, ${P.messageBytes}-byte messages ` +
      `(seqcast: \`payload\`, empty \`content\`; a delivered seqcast message also carries id, room, epoch, sequence, sender, time and client_message_id).`,
    "",
    `- Warmup: ${P.warmup} messages flat out, not measured.`,
    `- Flat out: N messages (seqcast ${P.messages.seqcast}, NATS ${P.messages.nats}, Redis ${P.messages.redis}: each phase long enough to measure), ` +
      `at most ${P.window} unacknowledged. Publishers: ${[...new Set(ran.map((r) => r.publishMode))].map((mode) => `${ran.filter((r) => r.publishMode === mode).map((r) => r.system).join(", ")}: ${mode}`).join("; ")}. ` +
      `**delivered msg/s** = N × ${P.subscribers} / time from the first publish until every subscriber has all N; **publish msg/s** = N / time until the last acknowledgement.`,
    `- Paced: ${P.rate} msg/s and ${P.rateHigh} msg/s for ${P.seconds} s each (${P.rate * P.subscribers} and ${P.rateHigh * P.subscribers} deliveries/s), ` +
      "fire-and-forget publishes on the same publisher; latency = receive time − send time (performance.now() in the payload) of every delivery at every subscriber. " +
      "broker CPU = CPU time of the server process / phase wall time (% of one core): in a paced phase every system does the same work, so it compares CPU per delivery. " +
      "bench GC = the load generator's own garbage collections during the phase (this process: publisher and subscribers): how many were full (mark-compact), the time paused in all of them, the longest pause; every latency measured here includes them.",
    "- broker RSS: peak VmRSS of the server process during the run.",
    ...(has("seqcast-causal")
      ? [
          `- *seqcast-causal*: seqcast (memory engine) with causal metadata on: every publish carries the dependencies of a publisher active in ${P.causalDependencies} other rooms ` +
            `(BENCH_CAUSAL_DEPS; 8 is the most the SDK attaches by default), one of which moves on ${P.causalMoveEvery === 0 ? "never" : `every ${P.causalMoveEvery} publishes`} (BENCH_CAUSAL_MOVE; bench/lib/causal.ts). ` +
            "The broker validates and stores them and sends them with every delivery; the subscribers ask for compact dependencies, as the SDK does (positions the message before had go as one-byte refs, the very same list as one flag). " +
            `Its targets come from paired rounds after its own phases, on the same broker and subscribers: ${P.causalRounds} rounds of a flat-out phase without causal metadata and one with it (BENCH_CAUSAL_ROUNDS), ` +
            `then ${P.causalRounds} rounds of paced ${P.rateHigh} msg/s phases the same way, every other round in the opposite order (the broker slows a little as its idempotency keys pile up). ` +
            "A target is the median of its rounds' ratios, so the machine's slower and faster spells fall on both sides of a ratio.",
        ]
      : []),
    ...(has("floor")
      ? [
          "- *node:http2 floor* (bench/floor-child.ts): Node's floor for this scenario, a bare gRPC-framed fan-out on node:http2 in its own process, driven by the same lean client: " +
            "each published message is numbered, encoded once and written to every stream, and nothing else (no auth, rooms, history, presence, queues or write batching). " +
            "seqcast / floor is what seqcast's features and code cost on top of Node; the peers / floor is where Node itself stands. " +
            "It writes every message to every stream as it comes (no batching), so it is a floor for the paced phases; flat out, seqcast's one write per stream per event-loop turn can beat it.",
        ]
      : []),
    "",
    "### Flat out",
    "",
    mdTable(["system", "delivered msg/s", "publish msg/s", "broker CPU", "bench CPU / event loop", "broker RSS MiB (peak)"], flatRows),
    "",
    "Ratios are seqcast's value divided by the peer's: for msg/s higher is better, for ms, MiB and CPU lower is better. " +
      "*bench-bound*: the load generator's event loop was ≥ 90% busy, so the number is a lower bound set by the bench process, not by the server. ⚠: the row failed its correctness check.",
    "",
    `### Paced ${P.rate} msg/s × ${P.subscribers} subscribers`,
    "",
    pacedTable((r) => r.paced),
    "",
    ...(P.rateHigh > 0
      ? [`### Paced ${fmtInt(P.rateHigh)} msg/s × ${P.subscribers} subscribers (${fmtInt(P.rateHigh * P.subscribers)} deliveries/s)`, "", pacedTable((r) => r.pacedHigh)]
      : []),
    ...(skippedRows.length ? ["", ...skippedRows] : []),
  ];

  const correctness = ran.map((r) => `- **${r.system}**: ${r.ok ? "OK" : "FAILED"} — ${r.check}.` + [...r.samples.slice(0, 5).map((s) => `\n  - subscriber ${s.sub} (${s.phase}): expected ${s.expected}, got ${s.got}`), ...r.notes.slice(0, 8).map((n) => `\n  - ${n}`)].join(""));

  const pacedDetail = (name: string, p: PacedResult | undefined) =>
    p
      ? `${name} (${p.achievedRate.toFixed(0)} msg/s achieved, ${p.stats.samples} latency samples): bench process CPU ${fmtPct(p.cpu.bench)}, other processes ${fmtCores(p.cpu.otherCores)} cores; ` +
        `p50 by second ${p.p50BySecond.map((v) => fmtMs(v)).join(" / ")} ms; p50 at each message's first / last subscriber ${fmtMs(p.p50First)} / ${fmtMs(p.p50Last)} ms.`
      : `${name}: —.`;
  const details = ran.map(
    (r) =>
      `- **${r.system}** (${r.version}), N = ${r.messages}. Flat out ${r.flatSeconds?.toFixed(1) ?? "—"} s: ` +
      `${r.brokerLoop !== undefined ? `broker event loop ${fmtPct(r.brokerLoop)} busy, ` : ""}` +
      `bench process CPU ${fmtPct(r.flatCpu?.bench)} (event loop ${fmtPct(r.flatCpu?.benchLoop)} busy), other processes ${fmtCores(r.flatCpu?.otherCores)} cores. ` +
      `${pacedDetail(`Paced ${P.rate}/s`, r.paced)} ${pacedDetail(`Paced ${P.rateHigh}/s`, r.pacedHigh)} ` +
      `Server RSS: ${fmtMiB(r.rssStartMiB)} MiB before the subscribers connected, ${fmtMiB(r.rssIdleMiB)} MiB idle with ${P.subscribers}, ${fmtMiB(r.rssPeakMiB)} MiB peak.`,
  );

  const seqcast = ran.find((r) => r.system === "seqcast");
  const causal = ran.find((r) => r.system === "seqcast-causal");
  const nats = ran.find((r) => r.system === "NATS");
  const vsNats = (what: string) => (nats ? `seqcast ${what} / NATS's` : `${what} (NATS skipped)`);
  const targets: Target[] = [
    {
      name: `Paced ${P.rate} msg/s × ${P.subscribers} subs: ${vsNats("broker CPU")}`,
      measured: ratio(seqcast?.paced?.cpu.server, nats?.paced?.cpu.server),
      limit: 1.5,
      kind: "max",
      unit: "×",
      note: `${fmtPct(seqcast?.paced?.cpu.server)} vs ${fmtPct(nats?.paced?.cpu.server)}`,
      noise: noiseOf(seqcast?.paced?.cpu.otherCores, nats?.paced?.cpu.otherCores),
    },
    {
      name: `Paced ${P.rate} msg/s × ${P.subscribers} subs: ${vsNats("p99")}`,
      measured: ratio(seqcast?.paced?.stats.p99, nats?.paced?.stats.p99),
      limit: 2.0,
      kind: "max",
      unit: "×",
      note: `${fmtMs(seqcast?.paced?.stats.p99)} ms vs ${fmtMs(nats?.paced?.stats.p99)} ms`,
      noise: noiseOf(seqcast?.paced?.cpu.otherCores, nats?.paced?.cpu.otherCores),
    },
    {
      name: `Paced ${P.rateHigh} msg/s × ${P.subscribers} subs: seqcast deliveries missing`,
      measured: seqcast?.pacedHigh?.missing,
      limit: 0,
      kind: "max",
      unit: "missing",
      note: seqcast?.pacedHigh ? `${fmtInt(seqcast.pacedHigh.deliveries - seqcast.pacedHigh.missing)} of ${fmtInt(seqcast.pacedHigh.deliveries)} received` : undefined,
      noise: noiseOf(seqcast?.pacedHigh?.cpu.otherCores),
    },
    {
      name: `Paced ${P.rateHigh} msg/s × ${P.subscribers} subs: seqcast p99`,
      measured: seqcast?.pacedHigh?.stats.p99,
      limit: 10,
      kind: "max",
      unit: "ms",
      note: seqcast?.pacedHigh ? `p50 ${fmtMs(seqcast.pacedHigh.stats.p50)} ms, max ${fmtMs(seqcast.pacedHigh.stats.max)} ms` : undefined,
      noise: noiseOf(seqcast?.pacedHigh?.cpu.otherCores),
    },
    {
      name: `Flat out: ${vsNats("delivered msg/s")}`,
      measured: ratio(seqcast?.deliveredPerSec, nats?.deliveredPerSec),
      limit: 0.5,
      kind: "min",
      unit: "×",
      note:
        `${fmtInt(seqcast?.deliveredPerSec)} vs ${fmtInt(nats?.deliveredPerSec)}` +
        ((nats?.flatCpu?.benchLoop ?? 0) >= 90 ? "; NATS's number is bench-bound (load generator ≥ 90% busy)" : "") +
        ((seqcast?.flatCpu?.benchLoop ?? 0) >= 90 ? "; seqcast's number is bench-bound" : ""),
      noise: noiseOf(seqcast?.flatCpu?.otherCores, nats?.flatCpu?.otherCores),
    },
    ...(causal?.pairs ? causalTargets(causal.pairs) : []),
  ];
  const redisOne = ran.find((r) => r.system === "seqcast-redis");
  const redisTwo = ran.find((r) => r.system === "seqcast-redis ×2 workers");
  if (redisOne || redisTwo)
    targets.push({
      // Issue 11: on this 2-core machine, 2 workers must deliver more than 1 (the load generator shares the cores).
      name: "Flat out, redis engine: delivered msg/s of 2 workers / 1 node",
      measured: ratio(redisTwo?.deliveredPerSec, redisOne?.deliveredPerSec),
      limit: 1,
      kind: "min",
      unit: "×",
      note: `${fmtInt(redisTwo?.deliveredPerSec)} vs ${fmtInt(redisOne?.deliveredPerSec)}` + ((redisTwo?.flatCpu?.benchLoop ?? 0) >= 90 ? "; bench-bound" : ""),
      noise: noiseOf(redisOne?.flatCpu?.otherCores, redisTwo?.flatCpu?.otherCores),
    });
  return {
    title: "Fan-out: 1 publisher, 100 subscribers",
    body,
    correctness,
    details,
    targets,
    failed: ran.some((r) => !r.ok),
    profile: seqcast?.profile,
  };
}

/**
 * The issue 13 targets: with causal metadata on, fan-out within 5% of the
 * same broker without it. Each is the median over the paired rounds of the
 * on/off ratio of a round (runSystem), so a spell of the machine falls on
 * both sides of a ratio rather than on one system's whole run.
 */
function causalTargets(pairs: CausalPairs): Target[] {
  const ratios = (list: Array<{ off: number; on: number }>) => list.map((p) => p.on / p.off);
  const rounds = (list: Array<{ off: number; on: number }>, fmt: (n: number) => string) =>
    list.map((p) => `${fmt(p.on)} vs ${fmt(p.off)} (${fmtRatio(p.on / p.off)})`).join("; ");
  const moves = P.causalMoveEvery === 0 ? "never moving" : P.causalMoveEvery === 1 ? "one moving at every publish" : `one moving every ${P.causalMoveEvery} publishes`;
  const what = `${P.causalDependencies} dependencies per message, ${moves}`;
  return [
    {
      name: `Flat out: delivered msg/s with causal metadata (${what}) / without, median of ${pairs.flat.length} paired rounds`,
      measured: median(ratios(pairs.flat)),
      limit: 0.95,
      kind: "min",
      unit: "×",
      note: rounds(pairs.flat, fmtInt),
    },
    {
      name: `Paced ${P.rateHigh} msg/s × ${P.subscribers} subs: broker CPU with causal metadata / without, median of ${pairs.cpu.length} paired rounds`,
      measured: median(ratios(pairs.cpu)),
      limit: 1.05,
      kind: "max",
      unit: "×",
      note: rounds(pairs.cpu, fmtPct),
    },
  ];
}
