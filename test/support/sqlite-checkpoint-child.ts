/**
 * A process that publishes to a SQLite engine whose worker checkpoints every
 * millisecond and restarts the WAL every 50 pages, until it is killed: the
 * parent (test/engine/sqlite-checkpoint.test.ts) SIGKILLs it mid-checkpoint.
 * Writes "ack <content> <sequence> <passes>" for every acknowledged publish.
 *
 *   node --import tsx test/support/sqlite-checkpoint-child.ts <database path> <round>
 *
 * Contents are unique across rounds ("r<round>c<n>-<i>"): a batch committed
 * but killed before its ack was read must not be taken for an acknowledged
 * one of an earlier round with the same content.
 */
import { createSqliteEngine } from "../../src/engine/sqlite.js";

const engine = createSqliteEngine({
  path: process.argv[2]!,
  retention: { historySize: 1_000_000, historyTtlMs: 0, dedupeWindowMs: 0 },
  listener: () => {},
  checkpoint: { intervalMs: 1, resetFrames: 50 },
});
const round = process.argv[3] ?? "0";
const payload = new Uint8Array(2048).fill(3);
for (let n = 0; ; n++) {
  const drafts = Array.from({ length: 8 }, (_, i) => ({
    room: `crash.${i % 4}`,
    sender: "child",
    content: `r${round}c${n}-${i}`,
    payload,
    attributes: {},
    timeMs: Date.now(),
    clientMessageId: "",
  }));
  const results = await engine.publishBatch!(drafts);
  const passes = engine.checkpointer?.passes ?? 0;
  process.stdout.write(results.map((r) => `ack ${r.message.content} ${r.message.room} ${r.message.sequence} ${passes}\n`).join(""));
}
