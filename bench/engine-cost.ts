/**
 * The engine's share of "publish cost at 10,000 rooms / 1 room" (npm run
 * bench, section "Publish cost"), in one process without the network: the
 * engine alone, publishBatch() of 64 drafts of 256-byte payloads with
 * idempotency keys (as the bench's PublishStream publisher sends them),
 * alternating phases to one room and round-robin over BENCH_COST_ROOMS
 * rooms, every other round in the opposite order, after a warmup that
 * creates every room. Per side: the median CPU per publish (user and
 * system), bytes written per publish (/proc/self/io wchar: the SQLite file
 * and its WAL), and the median of the rounds' ratios, as the bench's target
 * takes it.
 *
 *   node --import tsx bench/engine-cost.ts [memory|sqlite]
 *
 *   BENCH_COST_ROOMS [10000]  BENCH_COST_ROUNDS [10]  BENCH_COST_MESSAGES [40000] per phase
 *   BENCH_COST_HISTORY [100]  --history-size     BENCH_COST_DEDUPE [120000]  --dedupe-window, ms (0 = no keys)
 *   BENCH_COST_TTL [86400000]  --history-ttl, ms (0 = none; the broker's default is a day, as in npm run bench)
 *   BENCH_COST_FILL [0]  1: fill every room to its history before the rounds (a million publishes at the defaults)
 *   BENCH_COST_ORDER [round-robin]  random: each publish of the many-rooms side goes to a room drawn at random
 *       (round-robin puts the publishes of neighbouring rooms next to each other, and SQLite's pages with them)
 *   BENCH_COST_CHECKPOINT [worker]  sqlite: "off" = SQLite's own checkpoint at commit instead of the worker's (sqlite-checkpoint.ts)
 *
 * Besides CPU, each side's publishBatch() latency over all its rounds: the
 * 99.9th percentile, the longest, and how many took over 20 ms (a
 * checkpoint inside a commit shows there: it stops the event loop).
 *
 * Alternating within one process keeps the neighbours' noise out of the
 * comparison better than two runs; on this shared machine a phase still
 * moves by ±30%, so read the medians. Nothing here is a threshold.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Engine, MessageDraft } from "../src/engine/engine.js";
import { createMemoryEngine } from "../src/engine/memory.js";
import { createSqliteEngine } from "../src/engine/sqlite.js";

const kind = process.argv[2] ?? "memory";
const ROOMS = Number(process.env.BENCH_COST_ROOMS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_COST_ROUNDS ?? 10);
const MESSAGES = Number(process.env.BENCH_COST_MESSAGES ?? 40_000);
const BATCH = 64;
const RANDOM_ORDER = process.env.BENCH_COST_ORDER === "random";
/** SQLite's own checkpoint at commit, not the worker's. */
const CHECKPOINT_AT_COMMIT = process.env.BENCH_COST_CHECKPOINT === "off";
const PAYLOAD = 256;
const retention = {
  historySize: Number(process.env.BENCH_COST_HISTORY ?? 100),
  historyTtlMs: Number(process.env.BENCH_COST_TTL ?? 86_400_000),
  dedupeWindowMs: Number(process.env.BENCH_COST_DEDUPE ?? 120_000),
};

let directory: string | undefined;
let engine: Engine;
if (kind === "sqlite") {
  directory = mkdtempSync(join(tmpdir(), "seqcast-engine-cost-"));
  engine = createSqliteEngine({ path: join(directory, "seqcast.db"), retention, listener: () => {}, checkpoint: CHECKPOINT_AT_COMMIT ? false : undefined });
} else if (kind === "memory") engine = createMemoryEngine({ retention, listener: () => {} });
else throw new Error(`engine: memory or sqlite, not ${kind}`);

/** Bytes this process wrote (write system calls), from /proc/self/io. */
const written = () => Number(/^wchar: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? NaN);

let published = 0;
/** publishBatch() latencies, ms, of the measured phases to one room and to ROOMS rooms. */
const latencies = { one: [] as number[], many: [] as number[] };
/** Publishes `count` messages: to one room, or round-robin over ROOMS. Room names are new strings each time, as decoded from a request. */
async function phase(count: number, one: boolean, timed?: number[]): Promise<void> {
  for (let i = 0; i < count; i += BATCH) {
    // One request buffer per batch; each payload is a view of it, as the wire decoder makes them.
    const request = new Uint8Array(PAYLOAD * BATCH);
    const drafts: MessageDraft[] = [];
    for (let j = 0; j < BATCH; j++) {
      const k = published++;
      drafts.push({
        room: one ? `rooms.one-${k % 1}` : `rooms.r${RANDOM_ORDER ? Math.floor(Math.random() * ROOMS) : k % ROOMS}`,
        sender: "bench",
        content: "",
        payload: request.subarray(j * PAYLOAD, (j + 1) * PAYLOAD),
        attributes: {},
        timeMs: Date.now(),
        clientMessageId: `bench-${k.toString(36).padStart(8, "0")}-0000-4000-8000-000000000000`,
      });
    }
    const start = performance.now();
    await engine.publishBatch!(drafts);
    timed?.push(performance.now() - start);
  }
}

interface Sample {
  user: number;
  system: number;
  bytes: number;
}

async function measured(one: boolean): Promise<Sample> {
  const bytes = written();
  const cpu = process.cpuUsage();
  await phase(MESSAGES, one, one ? latencies.one : latencies.many);
  const used = process.cpuUsage(cpu);
  return { user: used.user / MESSAGES, system: used.system / MESSAGES, bytes: (written() - bytes) / MESSAGES };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
};

// Warmup: every room exists; with BENCH_COST_FILL=1 every room holds its history, so each measured publish trims (the bench's "full" stage).
const fill = process.env.BENCH_COST_FILL === "1";
await phase(Math.max(ROOMS, 1000, fill ? ROOMS * retention.historySize : 0), false);
await phase(Math.max(ROOMS, 1000, fill ? retention.historySize : 0), true);
const ones: Sample[] = [];
const manys: Sample[] = [];
const ratios: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  let one: Sample | undefined;
  let many: Sample | undefined;
  for (const toOne of round % 2 === 0 ? [true, false] : [false, true]) {
    if (toOne) one = await measured(true);
    else many = await measured(false);
  }
  ones.push(one!);
  manys.push(many!);
  ratios.push((many!.user + many!.system) / (one!.user + one!.system));
}
const latency = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `publishBatch p99.9 ${sorted[Math.floor(0.999 * (sorted.length - 1))]!.toFixed(1)} ms, longest ${sorted.at(-1)!.toFixed(1)} ms, ${sorted.filter((v) => v > 20).length} of ${sorted.length} over 20 ms`;
};
const describe = (samples: Sample[]) =>
  `${median(samples.map((s) => s.user + s.system)).toFixed(2)} µs (user ${median(samples.map((s) => s.user)).toFixed(2)}, ` +
  `system ${median(samples.map((s) => s.system)).toFixed(2)}), ${median(samples.map((s) => s.bytes)).toFixed(0)} bytes written`;
console.log(
  `${kind} engine, ${MESSAGES} publishes a phase, ${ROUNDS} rounds, history ${retention.historySize}${fill ? " (every room filled first)" : ""}${RANDOM_ORDER ? ", rooms in random order" : ""}, dedupe window ${retention.dedupeWindowMs} ms${kind === "sqlite" ? `, checkpoints ${CHECKPOINT_AT_COMMIT ? "at commit" : "in a worker"}` : ""}\n` +
    `  1 room:          ${describe(ones)} per publish; ${latency(latencies.one)}\n` +
    `  ${ROOMS} rooms: ${describe(manys)} per publish; ${latency(latencies.many)}\n` +
    `  ${ROOMS} / 1, median of the rounds' ratios: ${median(ratios).toFixed(2)}× (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})\n` +
    `  heap used at the end: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
);
await engine.close();
if (directory) rmSync(directory, { recursive: true, force: true });
