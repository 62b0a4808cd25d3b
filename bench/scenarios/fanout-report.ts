/**
 * The fan-out section of the report: what one system's run measured
 * (SystemResult, filled in by runSystem in fanout.ts) and the markdown,
 * correctness lines, details and targets made from it. Kept apart from the
 * code that drives the systems, so that a change to the report's wording or
 * targets cannot touch a timer or the order of the phases.
 */
import { fmtCores, fmtInt, fmtMiB, fmtMs, fmtPct, fmtRatio, mdTable, ratio } from "../lib/format.js";
import type { GcUse } from "../lib/gc-watch.js";
import { has, P } from "../lib/params.js";
import { median, type LatencyStats } from "../lib/percentile.js";
import type { CpuUse } from "../lib/proc.js";
import type { ProfileResult } from "../lib/profile.js";
import { noiseOf, type Section, type Target } from "../lib/report.js";
import type { Violation } from "../lib/tracker.js";

/** One paced phase of one system (pacedPhase in fanout.ts). */
export interface PacedResult {
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

/** One system's run, or why it was skipped: runSystem (fanout.ts) fills it in, section() reports it. */
export interface SystemResult {
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
  /** seqcast-causal: rounds of the same phase with causal metadata off and on, on one broker (see runSystem in fanout.ts). */
  pairs?: CausalPairs;
}

/** Per round: flat-out delivered msg/s, and paced-high broker CPU (share of a core), without and with causal metadata. */
export interface CausalPairs {
  flat: Array<{ off: number; on: number }>;
  cpu: Array<{ off: number; on: number }>;
}

/** Rows of seqcast / peer ratios under a table. */
function ratioRows(results: SystemResult[], cells: (a: SystemResult, b: SystemResult) => string[]): string[][] {
  const ran = results.filter((r) => !r.skipped);
  const ours = ran.filter((r) => r.system.startsWith("seqcast"));
  const peers = ran.filter((r) => !r.system.startsWith("seqcast"));
  // What TLS costs: the same broker over TLS against plaintext.
  const plain = ran.find((r) => r.system === "seqcast");
  const tls = ran.find((r) => r.system === "seqcast-tls");
  const tlsRow = plain && tls ? [[`*seqcast-tls / seqcast*`, ...cells(tls, plain)]] : [];
  return [...tlsRow, ...ours.flatMap((a) => peers.map((b) => [`*${a.system} / ${b.system}*`, ...cells(a, b)]))];
}

const mark = (r: SystemResult) => (r.ok ? "" : " ⚠");

export function section(results: SystemResult[]): Section {
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
    ...(has("seqcast-tls")
      ? [
          "- *seqcast-tls*: seqcast (memory engine) serving TLS (`--tls-cert`, `--tls-key`: a self-signed P-256 certificate that openssl makes for the run, bench/lib/tls.ts); " +
            "every client verifies it and speaks HTTP/2 by ALPN. The peers run in plaintext: *seqcast-tls / seqcast* is what TLS costs.",
        ]
      : []),
    ...(has("seqcast-causal")
      ? [
          `- *seqcast-causal*: seqcast (memory engine) with causal metadata on: every publish carries the dependencies of a publisher active in ${P.causalDependencies} other rooms ` +
            `(BENCH_CAUSAL_DEPS; 8 is the most the SDK attaches by default), one of which moves on ${P.causalMoveEvery === 0 ? "never" : `every ${P.causalMoveEvery} publishes`} (BENCH_CAUSAL_MOVE; bench/lib/causal.ts). ` +
            "The broker validates and stores them and sends them with every delivery; the subscribers ask for compact dependencies, as the SDK does (positions the message before had go as one-byte refs, the very same list as one flag). " +
            `Its targets come from paired rounds after its own phases, on the same broker and subscribers: ${P.causalRounds} rounds of a flat-out phase without causal metadata and one with it (BENCH_CAUSAL_ROUNDS), ` +
            `then ${P.causalPacedRounds} rounds of paced ${P.rateHigh} msg/s phases the same way (BENCH_CAUSAL_PACED_ROUNDS), every other round in the opposite order (the broker slows a little as its idempotency keys pile up). ` +
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
 * on/off ratio of a round (runSystem, fanout.ts), so a spell of the machine falls on
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
