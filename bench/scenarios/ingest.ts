/**
 * Ingest: one publisher, acknowledged publishes per second, with 0 and 100
 * subscribers on the same room / subject. Every row starts clean (a fresh
 * seqcast broker, a fresh JetStream stream) so positions start at 1.
 *
 *   warmup    BENCH_INGEST_WARMUP messages, acknowledged, not measured
 *   measured  BENCH_INGEST_MESSAGES (0 subscribers) or
 *             BENCH_INGEST_MESSAGES_SUBS (with subscribers) messages
 *
 * Checks: every publish acknowledged exactly once, without error, and the
 * positions of all acknowledgements are exactly 1..n (no gap, no
 * duplicate); every subscriber gets all n, gapless and in order.
 */
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "nats";
import type { AckedPublisher, DeliverySink } from "../drivers/driver.js";
import { createStream, jetStreamPublisher, leanJetStreamPublisher, orderedConsumers, type BenchStream } from "../drivers/jetstream.js";
import { closeAll, natsPublisher, natsServerPid, natsSubscribers, openNats } from "../drivers/nats.js";
import { openSubscribers, seqcastPublisher, type SubscriberSet } from "../drivers/seqcast.js";
import { loopBusy, startBroker, startFloor, type BrokerChild, type EngineName, type EventLoopTimes } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtNum, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import { has, P } from "../lib/params.js";
import { makePayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssPeak, type CpuUse } from "../lib/proc.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import { FanoutTracker } from "../lib/tracker.js";
import { describe, log, sleep } from "../lib/util.js";

type Kind = "seqcast-stream" | "seqcast-stream-1" | "seqcast-unary" | "floor-stream" | "floor-unary" | "jetstream" | "jetstream-lean" | "nats";

/** seqcast and Node's floor (bench/floor-child.ts) speak the same protocol to the same lean client. */
const grpcKind = (kind: Kind) => kind.startsWith("seqcast") || kind.startsWith("floor");
const unaryKind = (kind: Kind) => kind === "seqcast-unary" || kind === "floor-unary";

interface RowSpec {
  label: string;
  kind: Kind;
  engine?: EngineName;
  subscribers: number;
}

interface RowResult extends RowSpec {
  publisher: string;
  version: string;
  messages: number;
  skipped?: string;
  ackedPerSec?: number;
  cpu?: CpuUse;
  brokerLoop?: number;
  /** Time from the first measured publish until every subscriber had every message. */
  deliveredSeconds?: number;
  rssPeakMiB?: number;
  ok: boolean;
  check: string;
  notes: string[];
}

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
    const broker: BrokerChild = spec.kind.startsWith("floor") ? await startFloor() : await startBroker(spec.engine!);
    const room = `ingest.r${rowId}`;
    let subscribers: SubscriberSet | undefined;
    try {
      if (spec.subscribers > 0) subscribers = await openSubscribers(broker, spec.subscribers, 1, () => room, sink);
      const publisher = seqcastPublisher(broker, {
        mode: unaryKind(spec.kind) ? "unary" : "stream",
        window: unaryKind(spec.kind) ? P.unaryInFlight : P.ingestWindow,
        batch: spec.kind === "seqcast-stream" || spec.kind === "floor-stream" ? P.ingestBatch : 1,
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
          ? leanJetStreamPublisher(nc, s, P.ingestWindow)
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
  const result: RowResult = { ...spec, publisher: "", version: "—", messages, ok: false, check: "", notes: [] };
  const positioned = spec.kind !== "nats";
  const phases = [
    { name: "warmup", messages: P.ingestWarmup, latency: false },
    { name: "measured", messages, latency: false },
  ];
  const sequencedSubs = grpcKind(spec.kind) || (spec.kind.startsWith("jetstream") && P.jsSubscribers === "ordered");
  const tracker = new FanoutTracker(spec.subscribers, phases, sequencedSubs);
  const acks = new AckCheck(P.ingestWarmup + messages, positioned);
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
    if (P.ingestWarmup > 0) {
      await row.publisher.run(P.ingestWarmup, payload(0, 0), (k, seq, error) => acks.ack(k, seq, error));
      if (spec.subscribers > 0 && !(await tracker.waitPhase(0, 60_000))) result.notes.push(`warmup: ${tracker.missing(0)} deliveries missing`);
      await sleep(200);
    }
    const loop0 = await row.eventLoop?.();
    const cpu = cpuWindow(row.pid);
    const start = performance.now();
    await row.publisher.run(messages, payload(P.ingestWarmup, 1), (k, seq, error) => acks.ack(P.ingestWarmup + k, seq, error));
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
    }
    if (has("floor")) {
      specs.push({ label: "node:http2 floor stream", kind: "floor-stream", subscribers });
      specs.push({ label: "node:http2 floor unary", kind: "floor-unary", subscribers });
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

/** The load generator's event loop was ≥ 90% busy: the row's rate is a lower bound set by the bench process. */
const benchBound = (r: RowResult) => (r.cpu?.benchLoop ?? 0) >= 90;

/**
 * JetStream's number to compare with: the faster of its two publishers. The
 * server is the same; a slower row is limited by its client in this process
 * (nats.js's js.publish() is, here), and comparing with it would flatter seqcast.
 */
function jetStreamReference(rows: RowResult[]): RowResult | undefined {
  const js = rows.filter((r) => r.kind.startsWith("jetstream") && r.ackedPerSec !== undefined);
  return js.sort((a, b) => b.ackedPerSec! - a.ackedPerSec!)[0];
}

const usPerPublish = (r: RowResult) => (r.cpu?.serverSeconds !== undefined && r.ackedPerSec ? (r.cpu.serverSeconds / r.messages) * 1e6 : undefined);

function section(results: RowResult[]): Section {
  const body: string[] = [
    `One publisher connection, one room / subject, ${P.messageBytes}-byte messages; ${P.ingestWarmup} warmup messages, then ` +
      `${P.ingestMessages} messages with 0 subscribers or ${P.ingestMessagesWithSubscribers} with subscribers (each subscriber on its own connection). ` +
      "**acked publishes/s** = messages / time from the first measured publish to its last acknowledgement. broker CPU is the server process's CPU during that time; " +
      "µs/publish = server CPU seconds / messages.",
    "",
    "Publishers:",
    `- seqcast *stream*: PublishStream with ${P.ingestWindow} messages unacknowledged, up to ${P.ingestBatch} messages per request ` +
      `(the publisher sends a request whenever ${P.ingestBatch} slots are free; each message gets its own result, in order). ` +
      "*stream, batch 1*: the same with one message per request.",
    `- seqcast *unary*: unary Publish, ${P.unaryInFlight} calls in flight on one HTTP/2 connection.`,
    "- *node:http2 floor* (bench/floor-child.ts): Node's floor, driven by the same client in the same two ways: a bare node:http2 server that numbers each message, writes it to every subscriber and acknowledges it, and does nothing else. " +
      "A seqcast row / the floor's is what seqcast's features cost on Node; the floor / JetStream is where Node's HTTP/2 (server and the bench's client) stands.",
    `- JetStream, to a fresh stream with file storage, ${P.ingestWindow} publishes awaiting their ack (the same depth as seqcast's stream window), every ack carrying the stream sequence, from two publishers: ` +
      "*js.publish()*, nats.js's JetStream client (a request with its own timer and promise per publish, each ack JSON-decoded); " +
      "*lean publisher*, the same protocol by hand (a PUB with a reply subject of its own per message, one inbox subscription, only the ack's sequence read), as bench/lean-client.ts does for seqcast. " +
      "**vs JetStream** compares with the faster of the two (marked *reference*): the server is the same, and a row limited by its client would flatter seqcast.",
    `- NATS core: publish, with a flush (PING/PONG) after every ${P.ingestBatch} messages and at most ${P.ingestWindow} unflushed, as the acknowledgement (NATS core has no per-message ack).`,
    `- Subscribers (rows with subscribers): seqcast Subscribe streams (lean client); JetStream: ${
      P.jsSubscribers === "ordered"
        ? "ordered push consumers (one per connection, flow control), checked by stream sequence"
        : "core NATS subscriptions on the stream's subject (the live fan-out path, like seqcast's; no per-subscriber consumer state), checked by the publisher's index"
    }; NATS core: subscriptions, checked by the publisher's index.`,
    "",
  ];
  const groups = [...new Set(results.map((r) => r.subscribers))];
  for (const subscribers of groups) {
    const rows = results.filter((r) => r.subscribers === subscribers);
    const ran = rows.filter((r) => !r.skipped);
    const js = jetStreamReference(ran);
    const nats = ran.find((r) => r.kind === "nats");
    const table = ran.map((r) => [
      `${r.label}${r.ok ? "" : " ⚠"}${r === js ? " (reference)" : ""}`,
      fmtInt(r.ackedPerSec),
      fmtRatio(ratio(r.ackedPerSec, js?.ackedPerSec)),
      fmtRatio(ratio(r.ackedPerSec, nats?.ackedPerSec)),
      fmtPct(r.cpu?.server),
      fmtNum(usPerPublish(r), 1),
      ...(subscribers > 0 ? [r.deliveredSeconds ? fmtInt((r.messages * subscribers) / r.deliveredSeconds) : "—"] : []),
      `${fmtPct(r.cpu?.bench)} / ${fmtPct(r.cpu?.benchLoop)}${benchBound(r) ? " (bench-bound)" : ""}`,
      fmtCores(r.cpu?.otherCores),
    ]);
    body.push(
      `### ${subscribers} subscribers`,
      "",
      mdTable(
        [
          "row",
          "acked publishes/s",
          "vs JetStream",
          "vs NATS core",
          "broker CPU",
          "µs CPU/publish",
          ...(subscribers > 0 ? ["deliveries/s (all delivered)"] : []),
          "bench CPU / event loop",
          "other processes (cores)",
        ],
        table,
      ),
      "",
      ...rows.filter((r) => r.skipped).map((r) => `- ${r.label}: skipped (${r.skipped})`),
    );
  }
  const ran = results.filter((r) => !r.skipped);
  const correctness = ran.map((r) => `- **${r.label}, ${r.subscribers} subscribers**: ${r.ok ? "OK" : "FAILED"} — ${r.check}.` + r.notes.slice(0, 6).map((n) => `\n  - ${n}`).join(""));
  const details = ran.map(
    (r) =>
      `- **${r.label}, ${r.subscribers} subscribers** (${r.version}; ${r.publisher}): ${r.messages} messages; ` +
      `${r.brokerLoop !== undefined ? `broker event loop ${fmtPct(r.brokerLoop)} busy, ` : ""}server RSS peak ${fmtMiB(r.rssPeakMiB)} MiB; ` +
      `bench process CPU ${fmtPct(r.cpu?.bench)} (event loop ${fmtPct(r.cpu?.benchLoop)}), other processes ${fmtCores(r.cpu?.otherCores)} cores.`,
  );
  const at0 = ran.filter((r) => r.subscribers === 0);
  const js = jetStreamReference(at0);
  const row = (kind: Kind, engine: EngineName) => at0.find((r) => r.kind === kind && r.engine === engine);
  const floorOf = (r: RowResult | undefined) => at0.find((f) => f.kind === (r && unaryKind(r.kind) ? "floor-unary" : "floor-stream"));
  const floorNote = (r: RowResult | undefined) => {
    const floor = floorOf(r);
    return floor?.ackedPerSec ? `; Node's floor, the same way: ${fmtInt(floor.ackedPerSec)}/s (${fmtRatio(ratio(floor.ackedPerSec, js?.ackedPerSec))} JetStream's; seqcast = ${fmtRatio(ratio(r?.ackedPerSec, floor.ackedPerSec))} the floor's)` : "";
  };
  const target = (name: string, r: RowResult | undefined, limit: number): Target => ({
    name: `Ingest, 0 subscribers: ${name} / JetStream's acked publishes/s`,
    measured: ratio(r?.ackedPerSec, js?.ackedPerSec),
    limit,
    kind: "min",
    unit: "×",
    note: `${fmtInt(r?.ackedPerSec)}/s vs ${fmtInt(js?.ackedPerSec)}/s (${js?.label ?? "JetStream not run"})${r && benchBound(r) ? "; seqcast's row is bench-bound" : ""}${js && benchBound(js) ? "; JetStream's row is bench-bound" : ""}${floorNote(r)}`,
    noise: noiseOf(r?.cpu?.otherCores, js?.cpu?.otherCores),
  });
  const targets = [
    target(`seqcast-sqlite PublishStream (window ${P.ingestWindow}, batch ${P.ingestBatch})`, row("seqcast-stream", "sqlite"), 1.0),
    target(`seqcast-memory PublishStream (window ${P.ingestWindow}, batch ${P.ingestBatch})`, row("seqcast-stream", "memory"), 2.0),
    target(`seqcast-sqlite unary Publish (${P.unaryInFlight} in flight)`, row("seqcast-unary", "sqlite"), 0.5),
    target(`seqcast-memory unary Publish (${P.unaryInFlight} in flight)`, row("seqcast-unary", "memory"), 0.5),
  ];
  return { title: "Ingest: 1 publisher, acknowledged publishes", body, correctness, details, targets, failed: ran.some((r) => !r.ok) };
}
