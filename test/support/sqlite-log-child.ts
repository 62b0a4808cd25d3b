/**
 * A process that publishes to a SQLite engine with a tiny message log (sweeps
 * of 16 rows, tails written as partial blocks once 40 positions old) over 30
 * rooms of very different traffic, until it is killed: the parent
 * (test/engine/sqlite-log.test.ts) SIGKILLs it mid-write. Writes
 * "ack <room> <sequence> <content>" for every acknowledged publish.
 *
 *   node --import tsx test/support/sqlite-log-child.ts <database path> <round> <history size>
 */
import { createSqliteEngine } from "../../src/engine/sqlite.js";

const engine = createSqliteEngine({
  path: process.argv[2]!,
  retention: { historySize: Number(process.argv[4]), historyTtlMs: 0, dedupeWindowMs: 0 },
  listener: () => {},
  logTuning: { sweepRows: 16, persistAge: 40 },
});
const round = process.argv[3] ?? "0";
const payload = new Uint8Array(512).fill(5);
// Room k is drawn with weight 1 / (k + 1)^1.5: room 0 busy, rooms past 20 a publish now and then.
const weights = Array.from({ length: 30 }, (_, k) => 1 / (k + 1) ** 1.5);
const total = weights.reduce((a, b) => a + b, 0);
const pick = (): number => {
  let x = Math.random() * total;
  for (let k = 0; k < weights.length; k++) if ((x -= weights[k]!) <= 0) return k;
  return weights.length - 1;
};
for (let n = 0; ; n++) {
  const drafts = Array.from({ length: 16 }, (_, i) => ({
    room: `log.${pick()}`,
    sender: "child",
    content: `r${round}-${n}-${i}`,
    payload,
    attributes: {},
    timeMs: Date.now(),
    clientMessageId: "",
  }));
  const results = await engine.publishBatch!(drafts);
  process.stdout.write(results.map((r) => `ack ${r.message.room} ${r.message.sequence} ${r.message.content}\n`).join(""));
}
