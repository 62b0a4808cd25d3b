/**
 * The ingest section of the report: what a row is (its kind of publisher and
 * system, RowSpec) and what it measured (RowResult, filled in by runRow in
 * ingest.ts), and the tables, correctness lines, details and targets made
 * from the rows. Kept apart from the code that drives the systems, so that a
 * change to the report's wording or targets cannot touch a timer or the order
 * of the phases.
 */
import type { EngineName } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtNum, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import { P } from "../lib/params.js";
import type { CpuUse } from "../lib/proc.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";

export type Kind =
  | "seqcast-stream"
  | "seqcast-stream-1"
  | "seqcast-unary"
  | "seqcast-unary-h2load"
  | "floor-stream"
  | "floor-unary"
  | "floor-unary-h2load"
  | "floor-framer-stream"
  | "floor-framer-unary-h2load"
  | "jetstream"
  | "jetstream-lean"
  | "nats";

/** seqcast and Node's floor (bench/floor-child.ts) speak the same protocol to the same lean client. */
export const grpcKind = (kind: Kind) => kind.startsWith("seqcast") || kind.startsWith("floor");
export const unaryKind = (kind: Kind) => kind.includes("-unary");
/** The floor on bench/lib/h2-framer.ts instead of node:http2. */
export const framerKind = (kind: Kind) => kind.startsWith("floor-framer");
/** Unary Publish from h2load (bench/drivers/h2load.ts), not from this process. */
export const h2loadKind = (kind: Kind) => kind.endsWith("-h2load");

/** One row of the ingest tables: a system and its publisher, with this many subscribers (rowSpecs in ingest.ts). */
export interface RowSpec {
  label: string;
  kind: Kind;
  engine?: EngineName;
  subscribers: number;
}

/** What runRow (ingest.ts) measured for a row, or why it was skipped. */
export interface RowResult extends RowSpec {
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

/** The load generator's event loop was ≥ 90% busy: the row's rate is a lower bound set by the bench process. */
const benchBound = (r: RowResult) => (r.cpu?.benchLoop ?? 0) >= 90;
/** h2load (one thread with -c 1) used ≥ 0.85 of a core: the row's rate is a lower bound set by h2load; its µs CPU/publish still holds. */
const h2loadBound = (r: RowResult) => h2loadKind(r.kind) && (r.cpu?.otherCores ?? 0) >= 0.85;

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

export function section(results: RowResult[]): Section {
  const body: string[] = [
    `One publisher connection, one room / subject, ${P.messageBytes}-byte messages; ${P.ingestWarmup} warmup messages, then ` +
      `${P.ingestMessages} measured, with 0 subscribers; ${P.ingestWarmupWithSubscribers} and ${P.ingestMessagesWithSubscribers} with subscribers (each subscriber on its own connection). ` +
      "**acked publishes/s** = messages / time from the first measured publish to its last acknowledgement. broker CPU is the server process's CPU during that time; " +
      "µs/publish = server CPU seconds / messages.",
    "",
    "Publishers:",
    `- seqcast *stream*: PublishStream with ${P.ingestWindow} messages unacknowledged, up to ${P.ingestBatch} messages per request ` +
      `(the publisher sends a request whenever ${P.ingestBatch} slots are free; each message gets its own result, in order). ` +
      "*stream, batch 1*: the same with one message per request.",
    `- seqcast *unary*: unary Publish, ${P.unaryInFlight} calls in flight on one HTTP/2 connection.`,
    `- *unary, h2load*: the same calls from h2load (nghttp2's load generator, in C; Debian's nghttp2-client) instead of this process, whose hand-written HTTP/2 client shares the machine's two cores with the broker: ` +
      "what limits these rows is the server, except where h2load itself (one thread for its one connection) used ≥ 0.85 of a core, marked *h2load-bound*: the rate is then a lower bound, and µs CPU/publish the figure to compare. h2load's CPU is in *other processes*. h2load sends one request body again and again, so these requests carry no client_message_id and the broker keeps no idempotency key for them (the other seqcast rows do; JetStream's publishers send no Nats-Msg-Id either). h2load reads no response body, so the check is of the run as a whole: every request completed with a 2xx response, " +
      "and the room's position (read through a Subscribe before and after) moved by exactly the number of requests, so every publish was stored once. " +
      "The unary targets take the faster of the two clients, as **vs JetStream** takes JetStream's faster publisher.",
    "- *node:http2 floor* (bench/floor-child.ts): Node's floor, driven by the same client in the same two ways: a bare node:http2 server that numbers each message, writes it to every subscriber and acknowledges it, and does nothing else. " +
      "A seqcast row / the floor's is what seqcast's features cost on Node; the floor / JetStream is where Node's HTTP/2 (server and the bench's client) stands.",
    "- *framer floor* (0 subscribers): the same floor, the same handlers, on an HTTP/2 connection written by hand on the socket (bench/lib/h2-framer.ts: frames parsed from each read, HPACK, flow control both ways, every frame of a turn in one socket write) instead of node:http2. " +
      "node:http2 / framer is what node:http2's per-stream objects cost: the part of Node's floor that is node:http2's, not Node's. It is a measuring stick, not a server (no limits, no TLS); seqcast does not run on it.",
    `- JetStream, to a fresh stream with file storage, ${P.ingestWindow} publishes awaiting their ack (the same depth as seqcast's stream window), every ack carrying the stream sequence, from two publishers: ` +
      "*js.publish()*, nats.js's JetStream client (a request with its own timer and promise per publish, each ack JSON-decoded); " +
      `*lean publisher*, the same protocol by hand on its own socket (bench/drivers/jetstream-raw.ts: an HPUB with a reply subject of its own and a Nats-Msg-Id per message, up to ${P.ingestBatch} per socket write, one inbox subscription, only the ack's sequence read), as bench/lean-client.ts does for seqcast. ` +
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
      `${fmtCores(r.cpu?.otherCores)}${h2loadBound(r) ? " (h2load-bound)" : ""}`,
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
  /** The floor row driven the same way as `r` (the framer's only from h2load, for unary). */
  const floorKind = (r: RowResult | undefined, framer: boolean): Kind => {
    if (!r || !unaryKind(r.kind)) return framer ? "floor-framer-stream" : "floor-stream";
    if (framer) return "floor-framer-unary-h2load";
    return h2loadKind(r.kind) ? "floor-unary-h2load" : "floor-unary";
  };
  const floorOf = (r: RowResult | undefined, framer = false) => at0.find((f) => f.kind === floorKind(r, framer));
  /** The faster of an engine's two unary rows (this process's client, h2load). */
  const fasterUnary = (engine: EngineName) =>
    at0.filter((r) => r.engine === engine && unaryKind(r.kind) && r.ackedPerSec !== undefined).sort((a, b) => b.ackedPerSec! - a.ackedPerSec!)[0];
  const floorNote = (r: RowResult | undefined) => {
    const floor = floorOf(r);
    const framer = floorOf(r, true);
    return (
      (floor?.ackedPerSec ? `; Node's floor, the same way: ${fmtInt(floor.ackedPerSec)}/s (${fmtRatio(ratio(floor.ackedPerSec, js?.ackedPerSec))} JetStream's; seqcast = ${fmtRatio(ratio(r?.ackedPerSec, floor.ackedPerSec))} the floor's)` : "") +
      (framer?.ackedPerSec
        ? `; the floor without node:http2 (framer): ${fmtInt(framer.ackedPerSec)}/s${h2loadBound(framer) ? ", h2load-bound," : ""} (${fmtRatio(ratio(framer.ackedPerSec, js?.ackedPerSec))} JetStream's; ${fmtNum(usPerPublish(framer), 1)} µs of server CPU per publish against the floor's ${fmtNum(floor ? usPerPublish(floor) : undefined, 1)})`
        : "")
    );
  };
  const target = (name: string, r: RowResult | undefined, limit: number): Target => ({
    name: `Ingest, 0 subscribers: ${name} / JetStream's acked publishes/s`,
    measured: ratio(r?.ackedPerSec, js?.ackedPerSec),
    limit,
    kind: "min",
    unit: "×",
    note: `${r && h2loadKind(r.kind) ? "h2load: " : ""}${fmtInt(r?.ackedPerSec)}/s${r && h2loadBound(r) ? " (h2load-bound)" : ""} vs ${fmtInt(js?.ackedPerSec)}/s (${js?.label ?? "JetStream not run"})${r && benchBound(r) ? "; seqcast's row is bench-bound" : ""}${js && benchBound(js) ? "; JetStream's row is bench-bound" : ""}${floorNote(r)}`,
    noise: noiseOf(r?.cpu?.otherCores, js?.cpu?.otherCores),
  });
  const targets = [
    target(`seqcast-sqlite PublishStream (window ${P.ingestWindow}, batch ${P.ingestBatch})`, row("seqcast-stream", "sqlite"), 1.0),
    target(`seqcast-memory PublishStream (window ${P.ingestWindow}, batch ${P.ingestBatch})`, row("seqcast-stream", "memory"), 2.0),
    target(`seqcast-sqlite unary Publish (${P.unaryInFlight} in flight, the faster client)`, fasterUnary("sqlite"), 0.5),
    target(`seqcast-memory unary Publish (${P.unaryInFlight} in flight, the faster client)`, fasterUnary("memory"), 0.5),
  ];
  return { title: "Ingest: 1 publisher, acknowledged publishes", body, correctness, details, targets, failed: ran.some((r) => !r.ok) };
}
