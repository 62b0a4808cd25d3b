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
 * Every delivery is checked (gapless, in order; see lib/tracker.ts). The
 * report section made from the results is fanout-report.ts.
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
import { fmtCores, fmtInt, fmtMs, fmtPct } from "../lib/format.js";
import { has, P, type SystemName } from "../lib/params.js";
import { latencyStats } from "../lib/percentile.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssBytes, rssPeak } from "../lib/proc.js";
import { gcSpent, gcWindow } from "../lib/gc-watch.js";
import type { Section } from "../lib/report.js";
import { tlsEnv } from "../lib/tls.js";
import { FanoutTracker, type PhaseSpec } from "../lib/tracker.js";
import { describe, log, sleep } from "../lib/util.js";
import { summarizeProfileFile } from "../lib/profile.js";
import { BenchCausalContext } from "../lib/causal.js";
import { section, type CausalPairs, type PacedResult, type SystemResult } from "./fanout-report.js";

const PHASE_TIMEOUT_MS = 60_000;

/**
 * Toggles a driver's causal metadata for paired rounds: the same broker
 * process and subscribers, phases alternating off/on, so that the machine's
 * slower and faster spells (which move a phase by ±10% here) fall on both.
 */
interface CausalToggle {
  rounds: number;
  pacedRounds: number;
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
  // Paced rounds (12 by default): one paced round's CPU ratio moved between 0.93× and 1.18× here, four left the median ±5%.
  const rounds = causal?.rounds ?? 0;
  const pacedRounds = P.rateHigh > 0 ? (causal?.pacedRounds ?? 0) : 0;
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
      const gc = gcWindow();
      const start = performance.now();
      await flatOut(phase);
      const published = performance.now();
      const ok = await tracker.waitPhase(phase, PHASE_TIMEOUT_MS);
      const end = ok ? tracker.doneAt[phase]! : performance.now();
      const flatCpu = cpu();
      const benchGc = gc();
      const loop1 = await driver.eventLoop?.();
      const brokerLoop = loopBusy(loop0, loop1);
      const publishPerSec = messages / ((published - start) / 1000);
      const flatSeconds = (end - start) / 1000;
      const deliveredPerSec = ok ? (messages * P.subscribers) / flatSeconds : undefined;
      if (!ok) result.notes.push(`${phases[phase]!.name} phase incomplete after ${flatSeconds.toFixed(1)} s: ${tracker.missing(phase)} deliveries missing`);
      log(
        `${driver.name}: ${phases[phase]!.name} ${ok ? `${fmtInt(deliveredPerSec)} delivered msg/s` : "INCOMPLETE"}, ${fmtInt(publishPerSec)} publish msg/s, ` +
          `${flatSeconds.toFixed(2)} s (broker CPU ${fmtPct(flatCpu.server)}, bench loop ${fmtPct(flatCpu.benchLoop)}, other ${fmtCores(flatCpu.otherCores)} cores; ` +
          `full GCs: broker ${gcSpent(loop0?.gc, loop1?.gc)}, bench ${benchGc.major} (${benchGc.pausedMs.toFixed(0)} ms paused in all))`,
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
    if (causal && (rounds > 0 || pacedRounds > 0)) {
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
  { system: "seqcast-tls", label: "seqcast-tls" },
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
        broker =
          system === "floor"
            ? await startFloor()
            : system === "seqcast-redis-2w"
              ? await startWorkers(2)
              : await startBroker(engine, system === "seqcast-tls" ? tlsEnv() : {});
        log(`${label}: child pid ${broker.pid} on port ${broker.port} (${broker.version})`);
        const profileFile = profileDir && system === "seqcast" ? path.join(profileDir, "seqcast-paced.cpuprofile") : undefined;
        // The floor speaks PublishStream only.
        const causal = system === "seqcast-causal" ? new BenchCausalContext(P.causalDependencies, P.causalMoveEvery) : undefined;
        results.push(
          await runSystem(
            new SeqcastFanout(broker, label, system === "floor" ? "stream" : P.seqcastPublish, causal),
            P.messages.seqcast,
            profileFile,
            causal && { rounds: P.causalRounds, pacedRounds: P.causalPacedRounds, set: (on) => (causal.on = on) },
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
