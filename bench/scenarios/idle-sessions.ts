/**
 * Idle sessions: BENCH_IDLE_SESSIONS Subscribe streams over
 * BENCH_IDLE_CONNECTIONS HTTP/2 connections, on BENCH_IDLE_ROOMS rooms
 * (session i joins room i mod rooms, so every room has members on many
 * connections). Measures how fast they open (until every stream got its
 * `subscribed` event), the broker's RSS with all of them open, its CPU while
 * nothing is published (heartbeats and keepalive PINGs only), and then
 * publishes one message per room: every session must get exactly its room's
 * message, as sequence 1.
 *
 * NATS for scale: the same number of subscriptions over the same number of
 * connections, one subject per room.
 */
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "nats";
import type { DeliverySink } from "../drivers/driver.js";
import { closeAll, natsServerPid, natsSubscribers, openNats } from "../drivers/nats.js";
import { openSubscribers, seqcastPublisher, type SubscriberSet } from "../drivers/seqcast.js";
import { loopBusy, startBroker, type BrokerChild, type EventLoopTimes } from "../lib/broker-process.js";
import { fmtCores, fmtInt, fmtMiB, fmtNum, fmtPct, mdTable } from "../lib/format.js";
import { has, P } from "../lib/params.js";
import { makePayload, readPayload } from "../lib/payload.js";
import { cpuWindow, MiB, rssBytes, type CpuUse } from "../lib/proc.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import { describe, log, sleep, waitFor } from "../lib/util.js";

const OPEN_TIMEOUT_MS = 180_000;

/** What the sessions saw. */
class IdleTracker implements DeliverySink {
  readonly subscribedAt: Float64Array;
  subscribed = 0;
  lastSubscribedAt = 0;
  readonly received: Uint16Array;
  receivedTotal = 0;
  wrong = 0;
  dead = 0;
  readonly deadReasons = new Set<string>();
  readonly samples: string[] = [];
  /** Other events by kind (SubscribeEvent field number), and how many arrived during the idle window. */
  readonly events = new Map<number, number>();
  lastReceivedAt = 0;

  constructor(
    readonly sessions: number,
    readonly rooms: number,
    /** Sequence the check message must have (seqcast: 1; NATS: none). */
    readonly sequenced: boolean,
  ) {
    this.subscribedAt = new Float64Array(sessions);
    this.received = new Uint16Array(sessions);
  }

  firstSubscribedAt = 0;

  started(sub: number): void {
    if (this.subscribedAt[sub]) return;
    this.subscribedAt[sub] = performance.now();
    if (this.subscribed === 0) this.firstSubscribedAt = this.subscribedAt[sub]!;
    this.lastSubscribedAt = this.subscribedAt[sub]!;
    this.subscribed++;
  }

  deliver(sub: number, payload: Uint8Array, recvTime: number, sequence?: number): void {
    this.received[sub]!++;
    this.receivedTotal++;
    this.lastReceivedAt = recvTime;
    const { index } = readPayload(payload);
    if (index !== sub % this.rooms || (this.sequenced && sequence !== 1) || this.received[sub]! > 1) {
      this.wrong++;
      if (this.samples.length < 5) this.samples.push(`session ${sub}: message for room ${index}, sequence ${sequence ?? "—"}, its ${this.received[sub]}. message`);
    }
  }

  fail(_sub: number, reason: string): void {
    this.dead++;
    this.deadReasons.add(reason);
  }

  other(kind: number): void {
    this.events.set(kind, (this.events.get(kind) ?? 0) + 1);
  }

  missing(): number {
    let n = 0;
    for (let i = 0; i < this.sessions; i++) if (this.received[i] === 0) n++;
    return n;
  }
}

interface IdleResult {
  system: string;
  version: string;
  skipped?: string;
  rssBeforeMiB?: number;
  rssAfterMiB?: number;
  openSeconds?: number;
  /** Time until the first session got its `subscribed` event. */
  firstSeconds?: number;
  openCpu?: CpuUse;
  idleCpu?: CpuUse;
  /** The idle window in slices of BENCH_IDLE_SLICE: server CPU % and the broker's full collections in each. */
  idleSlices?: IdleSlice[];
  idleLoop?: number;
  /** The broker's V8 heap in use at the end of the idle window (its full collections have run by then). */
  heapAfterMiB?: number;
  idleEvents?: Map<number, number>;
  openEvents?: Map<number, number>;
  maxConcurrentStreams?: number;
  deliverSeconds?: number;
  ok: boolean;
  check: string;
  notes: string[];
}

interface IdleSlice {
  cpu?: number;
  gc?: { major: number; majorMs: number };
}

/** The broker's full collections between two event-loop readings. */
function majorCollections(a: EventLoopTimes | undefined, b: EventLoopTimes | undefined): IdleSlice["gc"] {
  if (!a?.gc || !b?.gc) return undefined;
  return { major: b.gc.major - a.gc.major, majorMs: b.gc.majorMs - a.gc.majorMs };
}

const describeSlice = (slice: IdleSlice) =>
  `${fmtPct(slice.cpu)}${slice.gc?.major ? ` (${slice.gc.major} full GC, ${slice.gc.majorMs.toFixed(0)} ms paused)` : ""}`;

const EVENT_NAMES: Record<number, string> = { 1: "session_started", 4: "presence", 5: "heartbeat", 9: "presence_changes", 6: "unsubscribed" };
const describeEvents = (events: Map<number, number> | undefined) =>
  events && events.size ? [...events].map(([kind, n]) => `${fmtInt(n)} ${EVENT_NAMES[kind] ?? `kind ${kind}`}`).join(", ") : "none";

function verdict(result: IdleResult, t: IdleTracker): void {
  const missing = t.missing();
  result.ok = t.subscribed === t.sessions && t.dead === 0 && missing === 0 && t.wrong === 0 && !result.notes.some((n) => n.startsWith("run failed"));
  result.check =
    `${fmtInt(t.subscribed)} of ${fmtInt(t.sessions)} sessions subscribed; after one message per room, ` +
    `${fmtInt(t.sessions - missing)} sessions got their room's message, ${fmtInt(missing)} did not, ${t.wrong} got a wrong, repeated or wrongly sequenced one; ${t.dead} cut off`;
  result.notes.push(...t.samples, ...[...t.deadReasons].slice(0, 3));
}

async function seqcastIdle(): Promise<IdleResult> {
  const sessions = P.idleSessions;
  const perConnection = Math.ceil(sessions / P.idleConnections);
  const tracker = new IdleTracker(sessions, P.idleRooms, true);
  const result: IdleResult = { system: "seqcast", version: "—", ok: false, check: "", notes: [] };
  let broker: BrokerChild | undefined;
  let set: SubscriberSet | undefined;
  try {
    broker = await startBroker("memory");
    result.version = broker.version;
    log(`idle sessions: broker child pid ${broker.pid}; opening ${sessions} sessions on ${P.idleConnections} connections, ${P.idleRooms} rooms`);
    await sleep(500);
    result.rssBeforeMiB = MiB(rssBytes(broker.pid));
    const cpu = cpuWindow(broker.pid);
    const start = performance.now();
    const opening = openSubscribers(broker, sessions, perConnection, (i) => `idle.r${i % P.idleRooms}`, tracker, (_sub, kind) => tracker.other(kind));
    // Progress, so a slow open is visible while it happens.
    const progress = setInterval(() => log(`idle sessions: ${fmtInt(tracker.subscribed)} subscribed`), 5000);
    let timeout: NodeJS.Timeout | undefined;
    try {
      set = await Promise.race([
        opening,
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`not all sessions subscribed within ${OPEN_TIMEOUT_MS / 1000} s`)), OPEN_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearInterval(progress);
      clearTimeout(timeout);
    }
    result.openSeconds = (tracker.lastSubscribedAt - start) / 1000;
    result.firstSeconds = (tracker.firstSubscribedAt - start) / 1000;
    result.openCpu = cpu();
    result.openEvents = new Map(tracker.events);
    result.maxConcurrentStreams = set.connections[0]?.h2.peerMaxConcurrentStreams;
    log(`idle sessions: ${fmtInt(sessions)} subscribed in ${result.openSeconds.toFixed(2)} s (${fmtInt(sessions / result.openSeconds)}/s); broker CPU ${fmtPct(result.openCpu.server)}, bench CPU ${fmtPct(result.openCpu.bench)}`);
    // Let the joins' presence traffic drain before calling it idle.
    await sleep(1000);
    result.rssAfterMiB = MiB(rssBytes(broker.pid));
    const eventsBefore = new Map(tracker.events);
    const loop0 = await broker.eventLoop();
    const idle = cpuWindow(broker.pid);
    // In slices, so a one-off in the window (V8 collecting the opening's
    // garbage once allocation stops, its "memory reducer") shows as such.
    result.idleSlices = [];
    let loop = loop0;
    for (let left = P.idleSeconds; left > 0; left -= P.idleSliceSeconds) {
      const slice = cpuWindow(broker.pid);
      await sleep(Math.min(left, P.idleSliceSeconds) * 1000);
      const cpu = slice().server;
      const next = await broker.eventLoop();
      result.idleSlices.push({ cpu, gc: majorCollections(loop, next) });
      loop = next;
    }
    result.idleCpu = idle();
    result.idleLoop = loopBusy(loop0, loop);
    if (loop?.heapUsed !== undefined) result.heapAfterMiB = loop.heapUsed / 1048576;
    result.idleEvents = new Map([...tracker.events].map(([kind, n]) => [kind, n - (eventsBefore.get(kind) ?? 0)] as [number, number]).filter(([, n]) => n > 0));
    result.rssAfterMiB = Math.max(result.rssAfterMiB ?? 0, MiB(rssBytes(broker.pid)) ?? 0);
    log(
      `idle sessions: RSS ${fmtMiB(result.rssAfterMiB)} MiB, heap ${fmtMiB(result.heapAfterMiB)} MiB, idle CPU ${fmtPct(result.idleCpu.server)} over ${P.idleSeconds} s ` +
        `(per ${P.idleSliceSeconds} s: ${result.idleSlices.map(describeSlice).join(", ")}; events: ${describeEvents(result.idleEvents)})`,
    );
    const publisher = seqcastPublisher(broker, { mode: "stream", window: P.ingestWindow, batch: P.ingestBatch, room: (k) => `idle.r${k}` });
    const sent = performance.now();
    await publisher.run(P.idleRooms, (k) => makePayload(P.messageBytes, k, 0), (k, _seq, error) => {
      if (error) result.notes.push(`publish to room ${k}: ${error}`);
    });
    await waitFor(() => tracker.receivedTotal >= sessions || tracker.dead > 0, 30_000);
    await sleep(200);
    result.deliverSeconds = (tracker.lastReceivedAt - sent) / 1000;
    await publisher.close().catch(() => undefined);
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`idle sessions: run failed: ${describe(error)}`);
  } finally {
    set?.close();
    await broker?.stop();
  }
  verdict(result, tracker);
  return result;
}

async function natsIdle(): Promise<IdleResult> {
  const sessions = P.idleSessions;
  const perConnection = Math.ceil(sessions / P.idleConnections);
  const tracker = new IdleTracker(sessions, P.idleRooms, false);
  const result: IdleResult = { system: "NATS", version: "—", ok: false, check: "", notes: [] };
  let publisher: NatsConnection | undefined;
  let subs: NatsConnection[] = [];
  let closing = false;
  const subject = (room: number) => `seqcastbench.idle.${process.pid}.r${room}`;
  try {
    publisher = await openNats("bench-idle-pub");
    result.version = `nats-server ${publisher.info?.version ?? "?"}`;
    const pid = natsServerPid();
    result.rssBeforeMiB = MiB(rssBytes(pid));
    const cpu = cpuWindow(pid);
    const start = performance.now();
    subs = await natsSubscribers(sessions, perConnection, (i) => subject(i % P.idleRooms), tracker, () => closing);
    for (let i = 0; i < sessions; i++) tracker.started(i);
    result.openSeconds = (performance.now() - start) / 1000;
    result.openCpu = cpu();
    await sleep(1000);
    result.rssAfterMiB = MiB(rssBytes(pid));
    const idle = cpuWindow(pid);
    await sleep(P.idleSeconds * 1000);
    result.idleCpu = idle();
    log(`idle NATS: ${fmtInt(sessions)} subscriptions in ${result.openSeconds.toFixed(2)} s, RSS ${fmtMiB(result.rssAfterMiB)} MiB, idle CPU ${fmtPct(result.idleCpu.server)}`);
    const sent = performance.now();
    for (let room = 0; room < P.idleRooms; room++) publisher.publish(subject(room), makePayload(P.messageBytes, room, 0));
    await publisher.flush();
    await waitFor(() => tracker.receivedTotal >= sessions || tracker.dead > 0, 30_000);
    await sleep(200);
    result.deliverSeconds = (tracker.lastReceivedAt - sent) / 1000;
  } catch (error) {
    result.notes.push(`run failed: ${describe(error)}`);
    log(`idle NATS: run failed: ${describe(error)}`);
  } finally {
    closing = true;
    await closeAll([...subs, ...(publisher ? [publisher] : [])]);
  }
  verdict(result, tracker);
  return result;
}

export async function idleScenario(): Promise<Section> {
  const results: IdleResult[] = [];
  if (has("seqcast")) results.push(await seqcastIdle());
  if (has("nats")) {
    await sleep(500);
    results.push(await natsIdle());
  }
  return section(results);
}

function section(results: IdleResult[]): Section {
  const perConnection = Math.ceil(P.idleSessions / P.idleConnections);
  const ran = results.filter((r) => !r.skipped);
  const seqcast = ran.find((r) => r.system === "seqcast");
  const perSessionKiB = (r: IdleResult) => (r.rssAfterMiB !== undefined && r.rssBeforeMiB !== undefined ? ((r.rssAfterMiB - r.rssBeforeMiB) * 1024) / P.idleSessions : undefined);
  const rows = ran.map((r) => [
    `${r.system}${r.ok ? "" : " ⚠"}`,
    r.openSeconds ? fmtInt(P.idleSessions / r.openSeconds) : "—",
    fmtMiB(r.rssBeforeMiB),
    fmtMiB(r.rssAfterMiB),
    fmtNum(perSessionKiB(r), 1),
    fmtMiB(r.heapAfterMiB),
    fmtPct(r.idleCpu?.server),
    r.idleSlices?.map(describeSlice).join(", ") ?? "—",
    r.deliverSeconds !== undefined ? (r.deliverSeconds * 1000).toFixed(0) : "—",
    `${fmtPct(r.openCpu?.bench)} / ${fmtPct(r.openCpu?.benchLoop)}`,
  ]);
  const body = [
    `${fmtInt(P.idleSessions)} sessions over ${P.idleConnections} connections (${perConnection} per connection), on ${P.idleRooms} rooms of ${Math.ceil(P.idleSessions / P.idleRooms)} ` +
      `(session i joins room i mod ${P.idleRooms}, so a room's members are spread over the connections). ` +
      `seqcast: Subscribe streams (lean client) multiplexed on HTTP/2 connections, memory engine; ` +
      `${seqcast?.maxConcurrentStreams !== undefined ? `the broker advertises SETTINGS_MAX_CONCURRENT_STREAMS = ${fmtInt(seqcast.maxConcurrentStreams)}` : "SETTINGS_MAX_CONCURRENT_STREAMS not read"} ` +
      "(Node's HTTP/2 client assumes 100 until the server's SETTINGS arrive, `peerMaxConcurrentStreams`). NATS: subscriptions on as many connections, one subject per room. " +
      `Rooms of ${Math.ceil(P.idleSessions / P.idleRooms)} keep the joins' presence traffic to at most ${Math.ceil(P.idleSessions / P.idleRooms) - 1} events per session; ` +
      "BENCH_IDLE_ROOMS=1 puts every session in one room, which makes presence the work (each join is an event at every member).",
    "",
    "- **opened/s** = sessions / time from the first request until the last session's `subscribed` event (NATS: until a flush on every connection returned after its SUBs).",
    "- **RSS**: server VmRSS before the sessions and 1 s after the last one opened (NATS: the shared nats-server process, so compare the increase). " +
      "**V8 heap**: seqcast's JavaScript heap in use at the end of the idle window, after its full collections: what the collector marks on every full collection.",
    `- **idle CPU**: server CPU over ${P.idleSeconds} s with no publishes, % of one core; *per ${P.idleSliceSeconds} s* splits the window, with the broker's full garbage collections in each slice. Not silent: the broker sends a heartbeat on every stream idle for its heartbeat interval ` +
      `(15 s by default, so the window holds ${P.idleSeconds >= 15 ? `${Math.floor(P.idleSeconds / 15)} round(s) of them` : "part of a round, or none"}) and an HTTP/2 PING on every connection every 10 s (--ping-interval). ` +
      "Once the sessions are open and allocation stops, V8 collects the heap in full once or a few times (its memory reducer, some 10-25 s after the last busy moment): " +
      "a one-off of a few hundred ms of CPU that lands in one slice; a single 15 s window holds it or not, which made that figure bimodal.",
    `- Then one message per room: **fan-out ms** = time from the first publish until the last session got its message.`,
    "",
    mdTable(["system", "opened/s", "RSS before MiB", "RSS with sessions MiB", "KiB per session", "V8 heap MiB", "idle CPU", `per ${P.idleSliceSeconds} s`, "fan-out ms", "bench CPU / event loop while opening"], rows),
    "",
    ...results.filter((r) => r.skipped).map((r) => `- ${r.system}: skipped (${r.skipped})`),
  ];
  const correctness = ran.map((r) => `- **${r.system}**: ${r.ok ? "OK" : "FAILED"} — ${r.check}.` + r.notes.slice(0, 6).map((n) => `\n  - ${n}`).join(""));
  const details = ran.map(
    (r) =>
      `- **${r.system}** (${r.version}): opening took ${r.openSeconds?.toFixed(2) ?? "—"} s (first \`subscribed\` after ${r.firstSeconds?.toFixed(2) ?? "—"} s) with server CPU ${fmtPct(r.openCpu?.server)}, ` +
      `bench process CPU ${fmtPct(r.openCpu?.bench)} (event loop ${fmtPct(r.openCpu?.benchLoop)}), other processes ${fmtCores(r.openCpu?.otherCores)} cores; ` +
      (r.openEvents ? `events received while opening: ${describeEvents(r.openEvents)}; ` : "") +
      `idle window: ${r.idleLoop !== undefined ? `broker event loop ${fmtPct(r.idleLoop)} busy, ` : ""}other processes ${fmtCores(r.idleCpu?.otherCores)} cores` +
      (r.idleEvents ? `, events received: ${describeEvents(r.idleEvents)}` : "") +
      ".",
  );
  const targets: Target[] = [
    { name: `${fmtInt(P.idleSessions)} idle sessions: broker RSS`, measured: seqcast?.rssAfterMiB, limit: 512, kind: "max", unit: "MiB", note: seqcast ? `${fmtNum(perSessionKiB(seqcast), 1)} KiB per session` : undefined },
    {
      name: `${fmtInt(P.idleSessions)} idle sessions: broker idle CPU (% of a core, ${P.idleSeconds} s)`,
      measured: seqcast?.idleCpu?.server,
      limit: 5,
      kind: "max",
      unit: "%",
      note: seqcast?.idleSlices ? `per ${P.idleSliceSeconds} s: ${seqcast.idleSlices.map(describeSlice).join(", ")}` : undefined,
      noise: noiseOf(seqcast?.idleCpu?.otherCores),
    },
    {
      name: `${fmtInt(P.idleSessions)} idle sessions: opened per second`,
      measured: seqcast?.openSeconds ? P.idleSessions / seqcast.openSeconds : undefined,
      limit: 2000,
      kind: "min",
      unit: "/s",
      note: seqcast?.openCpu && seqcast.openCpu.benchLoop >= 90 ? "bench process ≥ 90% busy while opening: a lower bound" : undefined,
      noise: noiseOf(seqcast?.openCpu?.otherCores),
    },
  ];
  return { title: `Idle sessions: ${fmtInt(P.idleSessions)} streams on ${P.idleConnections} HTTP/2 connections`, body, correctness, details, targets, failed: ran.some((r) => !r.ok) };
}
