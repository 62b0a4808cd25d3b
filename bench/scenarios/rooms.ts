/**
 * Publish cost with 1 vs BENCH_ROOMS rooms: one publisher (PublishStream,
 * the ingest window and batch), no subscribers: the broker's CPU per
 * publish on the publish path alone (room lookup, sequencing, history,
 * dedupe record).
 *
 * One broker per engine. A warmup pass publishes to every room once (and
 * to the single room as often), so the measured publishes find their rooms
 * existing. Then three stages of paired rounds (BENCH_ROOMS_ROUNDS each,
 * BENCH_ROOMS_FULL_ROUNDS for the full stage, whose median is the target),
 * each a phase of BENCH_ROOMS_MESSAGES messages to the single room and a
 * phase of as many round-robin over all rooms, every other round in the
 * opposite order:
 * - filling: the rooms hold a few messages each and grow (every publish
 *   keeps one more message; the single room is full and trims);
 * - full: after publishing round-robin until every room holds its history
 *   (--history-size, 100 by default: a million messages at 10,000 rooms),
 *   both sides trim on every publish, as a broker that has run a while does;
 * - scattered: the full rooms again, but each publish of the many-rooms
 *   phase goes to a room drawn pseudo-randomly (a multiplicative hash of its
 *   number), as independent users' traffic would. Round-robin publishes to
 *   neighbouring rooms one after the other, which lets a store keep them on
 *   the same pages; this stage shows what it costs when nothing does.
 * The target is the full stage's median of the rounds' ratios, the state
 * the two sides are alike in; the other stages are reported beside it. A
 * phase lasts about a second, and on this shared machine one phase's CPU
 * per publish moves by ±15%, so a single pair of phases (as this scenario
 * measured before) landed anywhere between 1.04× and 1.42×.
 *
 * Check: every publish acknowledged, and each room's positions are 1, 2, 3, …
 * in publish order.
 */
import { appendFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { defaultBrokerConfig } from "../../src/broker/config.js";
import { seqcastPublisher } from "../drivers/seqcast.js";
import { startBroker, type BrokerChild, type EngineName } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtNum, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import { median } from "../lib/percentile.js";
import { has, P } from "../lib/params.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssBytes, type CpuUse } from "../lib/proc.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import { describe, log, sleep } from "../lib/util.js";

/** Before every room holds its history (each publish keeps one more message), or after (each trims one), in round-robin order or scattered. */
type Stage = "filling" | "full" | "scattered";
const STAGES: Stage[] = ["filling", "full", "scattered"];

/** One measured phase: P.roomsMessages publishes to 1 room or round-robin over P.rooms. */
interface Phase {
  rooms: number;
  stage: Stage;
  publishesPerSec: number;
  cpu: CpuUse;
}

interface RoomsResult {
  system: string;
  engine: EngineName;
  version: string;
  phases: Phase[];
  rssMiB?: number;
  ok: boolean;
  check: string;
  notes: string[];
}

const usPerPublish = (phase: Phase) => (phase.cpu.serverSeconds !== undefined ? (phase.cpu.serverSeconds / P.roomsMessages) * 1e6 : undefined);

/** The history size the broker children run with. */
const historySize = Number(process.env.SEQCAST_HISTORY_SIZE ?? defaultBrokerConfig.historySize);

/** The stage's rounds as pairs, the single room's phase first in even rounds. */
function pairs(result: RoomsResult, stage: Stage): Array<{ one: Phase; many: Phase }> {
  const out: Array<{ one: Phase; many: Phase }> = [];
  const phases = result.phases.filter((p) => p.stage === stage);
  for (let i = 0; i + 1 < phases.length; i += 2) {
    const [a, b] = [phases[i]!, phases[i + 1]!];
    out.push(a.rooms === 1 ? { one: a, many: b } : { one: b, many: a });
  }
  return out;
}

/**
 * BENCH_ROOMS_SPANS=<file>: each measured phase appends a line there (start
 * and end, µs of the monotonic clock a broker's --cpu-prof also counts in;
 * side; stage; system; broker pid), for bench/phase-profile.ts to split a
 * broker's profile (BENCH_CPU_PROF) between the one-room and many-room
 * phases.
 */
const SPANS = process.env.BENCH_ROOMS_SPANS;
const monotonicUs = () => process.hrtime.bigint() / 1000n;

async function runSystem(system: string, engine: EngineName): Promise<RoomsResult> {
  const result: RoomsResult = { system, engine, version: "—", phases: [], ok: false, check: "", notes: [] };
  const many = P.rooms;
  // Index `many` is the single room ("rooms.one"); 0..many-1 the round-robin rooms.
  const lastSeq = new Float64Array(many + 1);
  let sent = 0;
  /** Messages published round-robin over the rooms so far. */
  let sentToMany = 0;
  let acked = 0;
  let errors = 0;
  let outOfOrder = 0;
  let single = false;
  /** The scattered stage: publish k of a phase goes to spread(phaseBase + k) instead of k % many. */
  let scattered = false;
  let phaseBase = 0;
  const spread = (n: number) => (Math.imul(n, 0x9e3779b1) >>> 0) % many;
  const roomIndex = (k: number) => (single ? many : scattered ? spread(phaseBase + k) : k % many);
  const onAck = (index: number, sequence: number, error?: string) => {
    acked++;
    if (error) {
      errors++;
      if (result.notes.length < 5) result.notes.push(`${index === many ? "the single room" : `room ${index}`}: ${error}`);
      return;
    }
    if (sequence !== lastSeq[index]! + 1) {
      outOfOrder++;
      if (result.notes.length < 5) result.notes.push(`room ${index}: expected sequence ${lastSeq[index]! + 1}, got ${sequence}`);
    }
    lastSeq[index] = sequence;
  };
  let broker: BrokerChild | undefined;
  try {
    broker = await startBroker(engine);
    result.version = broker.version;
    const publisher = seqcastPublisher(broker, {
      mode: "stream",
      window: P.roomsWindow,
      batch: P.roomsBatch,
      room: (k) => (single ? "rooms.one" : `rooms.r${roomIndex(k)}`),
    });
    const phase = async (count: number, toOne: boolean): Promise<void> => {
      single = toOne;
      const base = sent;
      phaseBase = base;
      sent += count;
      if (!toOne) sentToMany += count;
      await publisher.run(count, (k) => makePayload(P.messageBytes, base + k, 1), (k, sequence, error) => onAck(roomIndex(k), sequence, error));
    };
    // Warmup (JIT, buffers, every room created): as many messages each way.
    const warmup = Math.max(many, 1000);
    await phase(warmup, false);
    await phase(warmup, true);
    for (const stage of STAGES) {
      scattered = stage === "scattered";
      if (stage === "full") {
        // Round-robin until every room holds its history: from here on a publish to any room trims one message.
        const fill = Math.max(0, historySize * many - sentToMany);
        log(`rooms ${system}: filling every room to ${historySize} messages (${fmtInt(fill)} more publishes)`);
        await phase(fill, false);
      }
      for (let r = 0; r < (stage === "full" ? P.roomsFullRounds : P.roomsRounds); r++) {
        for (const toOne of r % 2 === 0 ? [true, false] : [false, true]) {
          await sleep(200);
          const cpu = cpuWindow(broker.pid);
          const start = performance.now();
          const startUs = monotonicUs();
          await phase(P.roomsMessages, toOne);
          if (SPANS) appendFileSync(SPANS, `${startUs} ${monotonicUs()} ${toOne ? "one" : "many"} ${stage} ${system} ${broker.pid}\n`);
          const measured: Phase = { rooms: toOne ? 1 : many, stage, publishesPerSec: P.roomsMessages / ((performance.now() - start) / 1000), cpu: cpu() };
          result.phases.push(measured);
          log(
            `rooms ${system}, ${stage}, round ${r + 1}, ${fmtInt(measured.rooms)} room${toOne ? "" : "s"}: ${fmtInt(measured.publishesPerSec)} publishes/s, ` +
              `${fmtNum(usPerPublish(measured), 1)} µs broker CPU per publish, bench CPU ${fmtPct(measured.cpu.bench)}, other ${fmtCores(measured.cpu.otherCores)} cores`,
          );
        }
      }
    }
    result.rssMiB = MiB(rssBytes(broker.pid));
    await publisher.close();
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`rooms ${system}: run failed: ${describe(error)}`);
  } finally {
    await broker?.stop();
  }
  result.ok = sent > 0 && acked === sent && errors === 0 && outOfOrder === 0 && !result.notes.some((n) => n.startsWith("run failed"));
  result.check = `${acked} of ${sent} publishes acknowledged, ${errors} with an error; ${outOfOrder} acknowledgements whose room position was not the room's previous + 1`;
  return result;
}

export async function roomsScenario(): Promise<Section> {
  const results: RoomsResult[] = [];
  for (const [system, engine] of [
    ["seqcast", "memory"],
    ["seqcast-sqlite", "sqlite"],
  ] as const) {
    if (!has(system)) continue;
    results.push(await runSystem(system, engine));
    await sleep(300);
  }
  return section(results);
}

/** A stage's rows of one system: each side pooled over its phases (publishes/s, µs per publish), then the median of the rounds' ratios. */
function stageRows(r: RoomsResult, stage: Stage, rounds: Array<{ one: Phase; many: Phase }>, ratios: number[], medianRatio: number | undefined): string[][] {
  const rows: string[][] = [];
  const many = P.rooms;
  const sum = (phases: Phase[], f: (p: Phase) => number | undefined) => phases.reduce((total, p) => total + (f(p) ?? NaN), 0);
  for (const side of [1, many]) {
    const phases = r.phases.filter((p) => p.rooms === side && p.stage === stage);
    if (phases.length === 0) continue;
    const seconds = sum(phases, (p) => p.cpu.seconds);
    const serverSeconds = sum(phases, (p) => p.cpu.serverSeconds);
    const messages = phases.length * P.roomsMessages;
    rows.push([
      `${r.system}, ${stage}, ${fmtInt(side)} room${side === 1 ? "" : "s"}${r.ok ? "" : " ⚠"}`,
      fmtInt(messages / seconds),
      fmtPct((serverSeconds / seconds) * 100),
      fmtNum((serverSeconds / messages) * 1e6, 1),
      phases.map((p) => fmtNum(usPerPublish(p), 1)).join(", "),
      side === many ? fmtMiB(r.rssMiB) : "",
      `${fmtPct(sum(phases, (p) => p.cpu.bench * p.cpu.seconds) / seconds)} / ${fmtPct(sum(phases, (p) => p.cpu.benchLoop * p.cpu.seconds) / seconds)}`,
      fmtCores(Math.max(...phases.map((p) => p.cpu.otherCores ?? 0))),
    ]);
  }
  if (rounds.length > 0)
    rows.push([`*${r.system}, ${stage}: ${fmtInt(many)} / 1, median of ${rounds.length} rounds*`, "", "", fmtRatio(medianRatio), ratios.map((x) => fmtRatio(x)).join(", "), "", "", ""]);
  return rows;
}

function section(results: RoomsResult[]): Section {
  const rows: string[][] = [];
  const targets: Target[] = [];
  const many = P.rooms;
  for (const r of results) {
    const byStage = STAGES.map((stage) => {
      const rounds = pairs(r, stage);
      const ratios = rounds.map((pair) => ratio(usPerPublish(pair.many), usPerPublish(pair.one)) ?? NaN);
      return { stage, rounds, ratios, medianRatio: median(ratios) };
    });
    for (const { stage, rounds, ratios, medianRatio } of byStage) rows.push(...stageRows(r, stage, rounds, ratios, medianRatio));
    const [filling, full, scatteredStage] = byStage as [(typeof byStage)[0], (typeof byStage)[0], (typeof byStage)[0]];
    if (full.rounds.length === 0) continue;
    targets.push({
      name: `Publish cost (${r.engine} engine, broker CPU per publish): ${fmtInt(many)} rooms / 1 room, every room full, median of ${full.rounds.length} paired rounds`,
      measured: full.medianRatio,
      limit: 1.2,
      kind: "max",
      unit: "×",
      note:
        full.rounds.map((pair, i) => `${fmtNum(usPerPublish(pair.many), 1)} µs vs ${fmtNum(usPerPublish(pair.one), 1)} µs (${fmtRatio(full.ratios[i])})`).join("; ") +
        (filling.rounds.length > 0 ? `; while the rooms were filling: ${fmtRatio(filling.medianRatio)}` : "") +
        (scatteredStage.rounds.length > 0 ? `; full rooms in scattered order: ${fmtRatio(scatteredStage.medianRatio)}` : ""),
      noise: noiseOf(...r.phases.filter((p) => p.stage === "full").map((p) => p.cpu.otherCores)),
    });
  }
  const body = [
    `One publisher: PublishStream, ${P.roomsWindow} unacknowledged, up to ${P.roomsBatch} messages per request, messages of ${P.messageBytes} bytes, **no subscribers** (the publish path alone). ` +
      `One broker per engine. A warmup first publishes ${fmtInt(Math.max(many, 1000))} messages round-robin over ${fmtInt(many)} rooms (one per room) and as many to the single room, so every room exists before the measured messages. ` +
      `Then three stages of paired rounds (${P.roomsRounds}, ${P.roomsFullRounds} and ${P.roomsRounds}: BENCH_ROOMS_ROUNDS, BENCH_ROOMS_FULL_ROUNDS for the full stage): a phase of ${fmtInt(P.roomsMessages)} messages to the single room and one of ${fmtInt(P.roomsMessages)} round-robin over ${fmtInt(many)} rooms, every other round in the opposite order. ` +
      `**filling**: the ${fmtInt(many)} rooms hold a few messages each and every publish keeps one more (new memory or new pages: on this VM a first-touched page costs a fault of about 9 µs). ` +
      `**full**: after publishing round-robin until every room holds its history (${historySize} messages, the broker's --history-size), every publish on either side trims one, as in a broker that has run for a while; the target is this stage's. ` +
      `**scattered**: the full rooms again, each publish of the ${fmtInt(many)}-rooms phase to a room drawn pseudo-randomly (a hash of its number), as independent users' traffic would be: round-robin publishes neighbouring rooms one after the other, which lets a store keep them on shared pages. ` +
      "**µs CPU/publish** = broker CPU seconds / messages (the broker's threads' run time, /proc/PID/task/TID/schedstat, in nanoseconds), over all phases of a row; *per phase* lists each phase's in order. " +
      "The target is the median of the full stage's ratios: one phase's figure moves by ±15-25% on this shared machine, so a single pair of phases does not settle a 20% limit, nor did the median of 6.",
    `The single room is full (and trims on every publish) in every stage.`,
    "",
    mdTable(["row", "publishes/s", "broker CPU", "µs CPU/publish", "per phase (µs; ratios per round)", "broker RSS MiB", "bench CPU / event loop", "other processes (cores, most)"], rows),
    "",
  ];
  const correctness = results.map((r) => `- **${r.system}**: ${r.ok ? "OK" : "FAILED"} — ${r.check}.` + r.notes.slice(0, 5).map((n) => `\n  - ${n}`).join(""));
  const details = results.map(
    (r) => `- **${r.system}** (${r.version}): ${r.phases.length} phases, measured over ${r.phases.map((p) => p.cpu.seconds.toFixed(2)).join(", ")} s.`,
  );
  return { title: `Publish cost: 1 room vs ${fmtInt(many)} rooms`, body, correctness, details, targets, failed: results.some((r) => !r.ok) };
}
