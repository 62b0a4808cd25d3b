/**
 * Publish cost with 1 vs BENCH_ROOMS rooms: one publisher (PublishStream,
 * the ingest window and batch), BENCH_ROOMS_MESSAGES messages round-robin
 * over 1 room or over all rooms, no subscribers: the broker's CPU per
 * publish on the publish path alone (room lookup, sequencing, history,
 * dedupe record). Before the measured messages, one warmup pass publishes to
 * every room once, so the measured publishes find their rooms existing.
 *
 * Check: every publish acknowledged, and each room's positions are 1, 2, 3, …
 * in publish order.
 */
import { performance } from "node:perf_hooks";
import { seqcastPublisher } from "../drivers/seqcast.js";
import { startBroker, type BrokerChild, type EngineName } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtNum, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import { has, P } from "../lib/params.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssBytes, type CpuUse } from "../lib/proc.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import { describe, log, sleep } from "../lib/util.js";

interface RoomsResult {
  system: string;
  engine: EngineName;
  rooms: number;
  version: string;
  publishesPerSec?: number;
  cpu?: CpuUse;
  rssMiB?: number;
  ok: boolean;
  check: string;
  notes: string[];
}

const usPerPublish = (r: RoomsResult) => (r.cpu?.serverSeconds !== undefined ? (r.cpu.serverSeconds / P.roomsMessages) * 1e6 : undefined);

async function runRow(system: string, engine: EngineName, rooms: number): Promise<RoomsResult> {
  const result: RoomsResult = { system, engine, rooms, version: "—", ok: false, check: "", notes: [] };
  // The same warmup for every row (JIT, buffers): one message per room of the largest row.
  const warmup = Math.max(P.rooms, 1000);
  const lastSeq = new Float64Array(rooms);
  let acked = 0;
  let errors = 0;
  let outOfOrder = 0;
  const room = (k: number) => `rooms.r${k % rooms}`;
  const onAck = (k: number, sequence: number, error?: string) => {
    acked++;
    if (error) {
      errors++;
      if (result.notes.length < 5) result.notes.push(`message ${k}: ${error}`);
      return;
    }
    const r = k % rooms;
    if (sequence !== lastSeq[r]! + 1) {
      outOfOrder++;
      if (result.notes.length < 5) result.notes.push(`room ${r}: expected sequence ${lastSeq[r]! + 1}, got ${sequence}`);
    }
    lastSeq[r] = sequence;
  };
  let broker: BrokerChild | undefined;
  try {
    broker = await startBroker(engine);
    result.version = broker.version;
    const publisher = seqcastPublisher(broker, { mode: "stream", window: P.roomsWindow, batch: P.roomsBatch, room });
    await publisher.run(warmup, (k) => makePayload(P.messageBytes, k, 0), onAck);
    await sleep(300);
    const cpu = cpuWindow(broker.pid);
    const start = performance.now();
    await publisher.run(P.roomsMessages, (k) => makePayload(P.messageBytes, warmup + k, 1), (k, sequence, error) => onAck(warmup + k, sequence, error));
    result.publishesPerSec = P.roomsMessages / ((performance.now() - start) / 1000);
    result.cpu = cpu();
    result.rssMiB = MiB(rssBytes(broker.pid));
    await publisher.close();
    log(
      `rooms ${system}, ${fmtInt(rooms)} room${rooms === 1 ? "" : "s"}: ${fmtInt(result.publishesPerSec)} publishes/s, ${fmtNum(usPerPublish(result), 1)} µs broker CPU per publish, ` +
        `bench CPU ${fmtPct(result.cpu.bench)}, other ${fmtCores(result.cpu.otherCores)} cores`,
    );
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`rooms ${system}: run failed: ${describe(error)}`);
  } finally {
    await broker?.stop();
  }
  const total = warmup + P.roomsMessages;
  result.ok = acked === total && errors === 0 && outOfOrder === 0 && !result.notes.some((n) => n.startsWith("run failed"));
  result.check = `${acked} of ${total} publishes acknowledged, ${errors} with an error; ${outOfOrder} acknowledgements whose room position was not the room's previous + 1`;
  return result;
}

export async function roomsScenario(): Promise<Section> {
  const results: RoomsResult[] = [];
  for (const [system, engine] of [
    ["seqcast", "memory"],
    ["seqcast-sqlite", "sqlite"],
  ] as const) {
    if (!has(system)) continue;
    for (const rooms of [1, P.rooms]) {
      results.push(await runRow(system, engine, rooms));
      await sleep(300);
    }
  }
  return section(results);
}

function section(results: RoomsResult[]): Section {
  const rows: string[][] = [];
  const targets: Target[] = [];
  for (const system of [...new Set(results.map((r) => r.system))]) {
    const one = results.find((r) => r.system === system && r.rooms === 1);
    const many = results.find((r) => r.system === system && r.rooms === P.rooms);
    for (const r of [one, many])
      if (r)
        rows.push([
          `${system}, ${fmtInt(r.rooms)} room${r.rooms === 1 ? "" : "s"}${r.ok ? "" : " ⚠"}`,
          fmtInt(r.publishesPerSec),
          fmtPct(r.cpu?.server),
          fmtNum(usPerPublish(r), 1),
          fmtMiB(r.rssMiB),
          `${fmtPct(r.cpu?.bench)} / ${fmtPct(r.cpu?.benchLoop)}`,
          fmtCores(r.cpu?.otherCores),
        ]);
    if (one && many) {
      rows.push([`*${system}: ${fmtInt(P.rooms)} / 1*`, fmtRatio(ratio(many.publishesPerSec, one.publishesPerSec)), "", fmtRatio(ratio(usPerPublish(many), usPerPublish(one))), "", "", ""]);
      targets.push({
        name: `Publish cost (${system === "seqcast" ? "memory" : "sqlite"} engine, broker CPU per publish): ${fmtInt(P.rooms)} rooms / 1 room`,
        measured: ratio(usPerPublish(many), usPerPublish(one)),
        limit: 1.2,
        kind: "max",
        unit: "×",
        note: `${fmtNum(usPerPublish(many), 1)} µs vs ${fmtNum(usPerPublish(one), 1)} µs`,
        noise: noiseOf(one.cpu?.otherCores, many.cpu?.otherCores),
      });
    }
  }
  const body = [
    `One publisher: PublishStream, ${P.roomsWindow} unacknowledged, up to ${P.roomsBatch} messages per request; ${fmtInt(P.roomsMessages)} messages of ${P.messageBytes} bytes ` +
      `round-robin over 1 room or over ${fmtInt(P.rooms)} rooms, **no subscribers** (the publish path alone). A warmup pass first publishes ${fmtInt(Math.max(P.rooms, 1000))} messages the same way (one per room with ${fmtInt(P.rooms)} rooms), ` +
      "so every room exists before the measured messages. **µs CPU/publish** = broker CPU seconds / messages (CPU time from /proc, 10 ms resolution).",
    `Not the same per-room state: 1 room keeps its last messages (--history-size, 100 by default) and trims on every publish; with ${fmtInt(P.rooms)} rooms each holds a few messages and nothing is trimmed.`,
    "",
    mdTable(["row", "publishes/s", "broker CPU", "µs CPU/publish", "broker RSS MiB", "bench CPU / event loop", "other processes (cores)"], rows),
    "",
  ];
  const correctness = results.map((r) => `- **${r.system}, ${fmtInt(r.rooms)} rooms**: ${r.ok ? "OK" : "FAILED"} — ${r.check}.` + r.notes.slice(0, 5).map((n) => `\n  - ${n}`).join(""));
  const details = results.map((r) => `- **${r.system}, ${fmtInt(r.rooms)} rooms** (${r.version}): measured over ${r.cpu?.seconds.toFixed(2) ?? "—"} s.`);
  return { title: `Publish cost: 1 room vs ${fmtInt(P.rooms)} rooms`, body, correctness, details, targets, failed: results.some((r) => !r.ok) };
}
