/**
 * The rooms scenario's stages (npm run bench, "Publish cost") replayed
 * against the SQLite engine in one process, phase by phase, with what its
 * message log did in each (SqliteEngine.stats(): blocks written, rows the
 * sweep read and passed live, rows deleted one by one). The bench's figures
 * are medians over rounds; this shows which phase paid for what, which is
 * how the sweep's policy in src/engine/sqlite-log.ts was chosen.
 *
 *   node --import tsx bench/engine-stages.ts
 *
 * Stages as in bench/scenarios/rooms.ts: 10,000 rooms and one room created;
 * 6 rounds "filling" (40,000 publishes a phase to one room, then round-robin
 * over 10,000, every other round the other way round); every room filled to
 * its history (100); 6 rounds "full" the same way; 6 rounds "scattered"
 * (the 10,000 rooms' side drawn by a multiplicative hash). publishBatch() of
 * 64 drafts of 256 bytes with idempotency keys. Nothing here is a threshold.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageDraft } from "../src/engine/engine.js";
import { createSqliteEngine } from "../src/engine/sqlite.js";

const ROOMS = 10_000;
const PHASE = 40_000;
const BATCH = 64;
const directory = mkdtempSync(join(tmpdir(), "seqcast-engine-stages-"));
const engine = createSqliteEngine({
  path: join(directory, "seqcast.db"),
  retention: { historySize: 100, historyTtlMs: 0, dedupeWindowMs: 120_000 },
  listener: () => {},
});

let published = 0;
async function phase(count: number, room: () => string): Promise<void> {
  for (let i = 0; i < count; i += BATCH) {
    const request = new Uint8Array(256 * BATCH);
    const drafts: MessageDraft[] = [];
    for (let j = 0; j < BATCH; j++) {
      const k = published++;
      drafts.push({ room: room(), sender: "bench", content: "", payload: request.subarray(j * 256, (j + 1) * 256), attributes: {}, timeMs: Date.now(), clientMessageId: `bench-${k}` });
    }
    await engine.publishBatch!(drafts);
  }
}

let turn = 0;
const one = () => "one";
const robin = () => `r${turn++ % ROOMS}`;
const scattered = () => `r${(Math.imul(turn++, 0x9e3779b1) >>> 0) % ROOMS}`;
const LOG_COUNTERS = ["blocksWritten", "partialBlocksWritten", "rowsSwept", "livePassed", "rowsDeletedAlone"] as const;

async function measured(label: string, room: () => string): Promise<void> {
  const before = engine.stats();
  const cpu = process.cpuUsage();
  await phase(PHASE, room);
  const used = process.cpuUsage(cpu);
  const after = engine.stats();
  const log = LOG_COUNTERS.map((name) => `${name} ${after[name] - before[name]}`).join(", ");
  console.log(`${label}: ${((used.user + used.system) / PHASE).toFixed(1)} µs a publish; ${log}`);
}

await phase(ROOMS, robin);
await phase(ROOMS, one);
for (const [stage, many] of [["filling", robin], ["full", robin], ["scattered", scattered]] as const) {
  // Every room of the 10,000 to its history: each holds 1 (created) + 4 per filling phase.
  if (stage === "full") await phase(ROOMS * (100 - 1 - (6 * PHASE) / ROOMS), robin);
  for (let round = 0; round < 6; round++)
    for (const side of round % 2 === 0 ? [one, many] : [many, one]) await measured(`${stage}, round ${round + 1}, ${side === one ? "1 room" : `${ROOMS} rooms`}`, side);
}
await engine.close();
rmSync(directory, { recursive: true, force: true });
