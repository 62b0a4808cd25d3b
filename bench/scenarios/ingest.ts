/**
 * Ingest: one publisher, acknowledged publishes per second, with 0 and 100
 * subscribers on the same room / subject. Every row starts clean (a fresh
 * seqcast broker, a fresh JetStream stream) so positions start at 1.
 *
 *   warmup    BENCH_INGEST_WARMUP (0 subscribers) or BENCH_INGEST_WARMUP_SUBS
 *             (with subscribers) messages, acknowledged, not measured
 *   measured  BENCH_INGEST_MESSAGES (0 subscribers) or
 *             BENCH_INGEST_MESSAGES_SUBS (with subscribers) messages
 *
 * Checks: every publish acknowledged exactly once, without error, and the
 * positions of all acknowledgements are exactly 1..n (no gap, no
 * duplicate); every subscriber gets all n, gapless and in order. The report
 * section made from the rows is ingest-report.ts.
 */
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "nats";
import type { AckedPublisher, DeliverySink } from "../drivers/driver.js";
import { createStream, jetStreamPublisher, orderedConsumers, type BenchStream } from "../drivers/jetstream.js";
import { rawJetStreamPublisher } from "../drivers/jetstream-raw.js";
import { closeAll, natsPublisher, natsServerPid, natsSubscribers, openNats } from "../drivers/nats.js";
import { h2loadPath, h2loadPublisher } from "../drivers/h2load.js";
import { openSubscribers, seqcastPublisher, type SubscriberSet } from "../drivers/seqcast.js";
import { loopBusy, startBroker, startFloor, type BrokerChild, type EventLoopTimes } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtPct } from "../lib/format.js";
import { has, P } from "../lib/params.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssPeak } from "../lib/proc.js";
import type { Section } from "../lib/report.js";
import { FanoutTracker } from "../lib/tracker.js";
import { describe, log, sleep } from "../lib/util.js";
import { framerKind, grpcKind, h2loadKind, section, unaryKind, type RowResult, type RowSpec } from "./ingest-report.js";

/** h2load, for the unary rows it drives (bench/drivers/h2load.ts); those rows are skipped without it. */
const h2load = h2loadPath();

/** Every acknowledgement once, no errors, positions exactly 1..total (when the system assigns them). */
class AckCheck {
  private readonly acked: Uint8Array;
  private readonly positions: Uint8Array;
  count = 0;
  errors = 0;
  duplicateAcks = 0;
  badPositions = 0;
  readonly samples: string[] = [];

  constructor(
    readonly total: number,
    readonly positioned: boolean,
  ) {
    this.acked = new Uint8Array(total);
    this.positions = new Uint8Array(total + 1);
  }

  ack(k: number, sequence: number, error?: string): void {
    if (this.acked[k]) {
      this.duplicateAcks++;
      return;
    }
    this.acked[k] = 1;
    this.count++;
    if (error) {
      this.errors++;
      if (this.samples.length < 5) this.samples.push(`message ${k}: ${error}`);
      return;
    }
    if (!this.positioned) return;
    if (sequence < 1 || sequence > this.total || this.positions[sequence]) {
      this.badPositions++;
      if (this.samples.length < 5) this.samples.push(`message ${k}: position ${sequence}${this.positions[sequence] ? " given twice" : " out of 1..n"}`);
    } else this.positions[sequence] = 1;
  }

  get ok(): boolean {
    return this.count === this.total && this.errors === 0 && this.duplicateAcks === 0 && this.badPositions === 0;
  }

  describe(): string {
    return (
      `${this.count} of ${this.total} publishes acknowledged, ${this.total - this.count} not, ${this.duplicateAcks} twice, ${this.errors} with an error` +
      (this.positioned ? `; positions 1..${this.total}: ${this.badPositions} duplicate or out of range (so ${this.ok ? "none" : "some"} missing)` : "; no positions (NATS core has none)")
    );
  }
}

/** A system's side of one row: subscribers, a publisher, the server's pid, cleanup. */
interface RowSystem {
  version: string;
  pid: number | undefined;
  sequenced: boolean;
  publisher: AckedPublisher;
  eventLoop?: () => Promise<EventLoopTimes | undefined>;
  close(): Promise<void>;
}

async function openRow(spec: RowSpec, rowId: number, tracker: FanoutTracker, closing: () => boolean): Promise<RowSystem> {
  const sink: DeliverySink = {
    started: (sub, sequence) => tracker.startAfter(sub, sequence),
    deliver: (sub, payload, recvTime, sequence) => tracker.deliver(sub, payload, recvTime, sequence),
    fail: (sub, reason) => tracker.fail(sub, reason),
  };
  if (grpcKind(spec.kind)) {
    if (h2loadKind(spec.kind) && !h2load) throw new Error("h2load is not installed (apt-get install nghttp2-client)");
    const broker: BrokerChild = spec.kind.startsWith("floor") ? await startFloor(framerKind(spec.kind)) : await startBroker(spec.engine!);
    const room = `ingest.r${rowId}`;
    let subscribers: SubscriberSet | undefined;
    try {
      if (spec.subscribers > 0) subscribers = await openSubscribers(broker, spec.subscribers, 1, () => room, sink);
      const publisher = h2loadKind(spec.kind)
        ? h2loadPublisher(broker, room, P.unaryInFlight, h2load!)
        : seqcastPublisher(broker, {
            mode: unaryKind(spec.kind) ? "unary" : "stream",
            window: unaryKind(spec.kind) ? P.unaryInFlight : P.ingestWindow,
            // Batched: the stream rows (seqcast, and both floors); "seqcast-stream-1" is the one-per-request row.
            batch: spec.kind.endsWith("-stream") ? P.ingestBatch : 1,
            room: () => room,
          });
      return {
        version: broker.version,
        pid: broker.pid,
        sequenced: true,
        publisher,
        eventLoop: () => broker.eventLoop(),
        close: async () => {
          subscribers?.close();
          await publisher.close().catch(() => undefined);
          await broker.stop();
        },
      };
    } catch (error) {
      subscribers?.close();
      await broker.stop();
      throw error;
    }
  }
  const nc = await openNats(`bench-ingest-${rowId}`);
  const subject = `seqcastbench.ingest.${process.pid}.r${rowId}`;
  let stream: BenchStream | undefined;
  let subs: NatsConnection[] = [];
  try {
    const version = `nats-server ${nc.info?.version ?? "?"}`;
    if (spec.kind === "jetstream" || spec.kind === "jetstream-lean") {
      stream = await createStream(nc, `SEQCAST_BENCH_${process.pid}_R${rowId}`, subject);
      if (spec.subscribers > 0)
        subs =
          P.jsSubscribers === "ordered"
            ? await orderedConsumers(stream, spec.subscribers, sink, closing)
            : await natsSubscribers(spec.subscribers, 1, () => subject, sink, closing);
    } else if (spec.subscribers > 0) subs = await natsSubscribers(spec.subscribers, 1, () => subject, sink, closing);
    const s = stream;
    return {
      version: s ? `${version}, JetStream file storage` : version,
      pid: natsServerPid(),
      sequenced: s !== undefined && P.jsSubscribers === "ordered",
      publisher: !s
        ? natsPublisher(nc, () => subject, P.ingestWindow, P.ingestBatch)
        : spec.kind === "jetstream-lean"
          ? rawJetStreamPublisher(s.subject, P.ingestWindow, P.ingestBatch)
          : jetStreamPublisher(s, P.ingestWindow),
      close: async () => {
        await closeAll(subs);
        await s?.remove();
        await closeAll([nc]);
      },
    };
  } catch (error) {
    await closeAll(subs);
    await stream?.remove();
    await closeAll([nc]);
    throw error;
  }
}

async function runRow(spec: RowSpec, rowId: number): Promise<RowResult> {
  const messages = spec.subscribers > 0 ? P.ingestMessagesWithSubscribers : P.ingestMessages;
  const warmup = spec.subscribers > 0 ? P.ingestWarmupWithSubscribers : P.ingestWarmup;
  const result: RowResult = { ...spec, publisher: "", version: "—", messages, ok: false, check: "", notes: [] };
  const positioned = spec.kind !== "nats";
  const phases = [
    { name: "warmup", messages: warmup, latency: false },
    { name: "measured", messages, latency: false },
  ];
  const sequencedSubs = grpcKind(spec.kind) || (spec.kind.startsWith("jetstream") && P.jsSubscribers === "ordered");
  const tracker = new FanoutTracker(spec.subscribers, phases, sequencedSubs);
  const acks = new AckCheck(warmup + messages, positioned);
  let closing = false;
  let row: RowSystem;
  try {
    row = await openRow(spec, rowId, tracker, () => closing);
  } catch (error) {
    log(`ingest ${spec.label}: SKIPPED — ${describe(error)}`);
    return { ...result, ok: true, skipped: describe(error).split("\n")[0] };
  }
  result.version = row.version;
  result.publisher = row.publisher.description;
  const peak = rssPeak(row.pid);
  try {
    const payload = (base: number, phase: number) => (k: number) => makePayload(P.messageBytes, base + k, phase);
    if (warmup > 0) {
      await row.publisher.run(warmup, payload(0, 0), (k, seq, error) => acks.ack(k, seq, error));
      if (spec.subscribers > 0 && !(await tracker.waitPhase(0, 60_000))) result.notes.push(`warmup: ${tracker.missing(0)} deliveries missing`);
      await sleep(200);
    }
    const loop0 = await row.eventLoop?.();
    const cpu = cpuWindow(row.pid);
    const start = performance.now();
    await row.publisher.run(messages, payload(warmup, 1), (k, seq, error) => acks.ack(warmup + k, seq, error));
    const acked = performance.now();
    result.cpu = cpu();
    result.brokerLoop = loopBusy(loop0, await row.eventLoop?.());
    result.ackedPerSec = messages / ((acked - start) / 1000);
    if (spec.subscribers > 0) {
      const all = await tracker.waitPhase(1, 60_000);
      if (all) result.deliveredSeconds = (tracker.doneAt[1]! - start) / 1000;
      else result.notes.push(`measured phase: ${tracker.missing(1)} deliveries missing after 60 s`);
    }
    log(
      `ingest ${spec.label}, ${spec.subscribers} subs: ${fmtInt(result.ackedPerSec)} acked publishes/s, broker CPU ${fmtPct(result.cpu.server)}, ` +
        `bench CPU ${fmtPct(result.cpu.bench)}, other ${fmtCores(result.cpu.otherCores)} cores` +
        (result.deliveredSeconds ? `, all delivered after ${result.deliveredSeconds.toFixed(2)} s` : ""),
    );
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`ingest ${spec.label}: run failed: ${describe(error)}`);
  } finally {
    closing = true;
    result.rssPeakMiB = MiB(peak());
    await row.close().catch((error: unknown) => result.notes.push(`close: ${describe(error)}`));
  }
  const subsOk = spec.subscribers === 0 || (tracker.missing() === 0 && tracker.duplicates() === 0 && tracker.deadCount() === 0 && (sequencedSubs ? tracker.seqViolations : tracker.indexViolations) === 0);
  result.ok = acks.ok && subsOk && !result.notes.some((n) => n.startsWith("run failed"));
  result.check =
    acks.describe() +
    (spec.subscribers > 0
      ? `; subscribers: ${tracker.expectedDeliveries() - tracker.missing()} of ${tracker.expectedDeliveries()} deliveries, ` +
        `${sequencedSubs ? `${tracker.seqViolations} sequence` : `${tracker.indexViolations} index`} violations, ${tracker.duplicates()} extra, ${tracker.deadCount()} cut off`
      : "");
  result.notes.push(...acks.samples, ...tracker.samples.slice(0, 3).map((s) => `subscriber ${s.sub}: expected ${s.expected}, got ${s.got}`), ...tracker.deadReasons().slice(0, 3));
  return result;
}

function rowSpecs(): RowSpec[] {
  const specs: RowSpec[] = [];
  for (const subscribers of P.ingestSubscribers) {
    for (const [system, engine, label] of [
      ["seqcast", "memory", "seqcast"],
      ["seqcast-sqlite", "sqlite", "seqcast-sqlite"],
    ] as const) {
      if (!has(system)) continue;
      specs.push({ label: `${label} stream`, kind: "seqcast-stream", engine, subscribers });
      if (P.ingestBatch > 1 && subscribers === 0) specs.push({ label: `${label} stream, batch 1`, kind: "seqcast-stream-1", engine, subscribers });
      specs.push({ label: `${label} unary`, kind: "seqcast-unary", engine, subscribers });
      if (subscribers === 0) specs.push({ label: `${label} unary, h2load`, kind: "seqcast-unary-h2load", engine, subscribers });
    }
    if (has("floor")) {
      specs.push({ label: "node:http2 floor stream", kind: "floor-stream", subscribers });
      specs.push({ label: "node:http2 floor unary", kind: "floor-unary", subscribers });
      if (subscribers === 0) {
        specs.push({ label: "node:http2 floor unary, h2load", kind: "floor-unary-h2load", subscribers });
        // The same floor on a hand-written HTTP/2 connection: what node:http2 itself costs (its unary row from this process's client would measure the client).
        specs.push({ label: "framer floor stream", kind: "floor-framer-stream", subscribers });
        specs.push({ label: "framer floor unary, h2load", kind: "floor-framer-unary-h2load", subscribers });
      }
    }
    if (has("jetstream")) {
      specs.push({ label: "JetStream js.publish()", kind: "jetstream", subscribers });
      specs.push({ label: "JetStream, lean publisher", kind: "jetstream-lean", subscribers });
    }
    if (has("nats")) specs.push({ label: "NATS core", kind: "nats", subscribers });
  }
  return specs;
}

export async function ingestScenario(): Promise<Section> {
  const results: RowResult[] = [];
  let rowId = 0;
  for (const spec of rowSpecs()) {
    results.push(await runRow(spec, rowId++));
    await sleep(300);
  }
  return section(results);
}
