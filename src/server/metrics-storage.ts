import { Counter, Gauge, type Registry } from "prom-client";
import type { Engine, EngineStorageReport } from "../engine/engine.js";

/**
 * The sqlite engine's storage on /metrics (engines with storage(): others add
 * nothing): commits, file sizes, the checkpoint worker and the message log's
 * sweep. Read when scraped (two stat() calls of the files per metric).
 */
export function registerStorageMetrics(registers: Registry[], engine: Engine): void {
  const storage = engine.storage?.bind(engine);
  if (!storage) return;
  const counter = (name: string, help: string, value: (r: EngineStorageReport) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value(storage()));
      },
    });
  counter("seqcast_sqlite_transactions_total", "Write transactions committed (group commits: many publishes each; clears and deferred trims too).", (r) => r.transactions);
  counter("seqcast_sqlite_committed_messages_total", "Messages committed; divided by seqcast_sqlite_transactions_total, the group commit's mean batch.", (r) => r.messages);
  counter("seqcast_sqlite_checkpoint_passes_total", "Passes of the checkpoint worker thread (copies of the WAL into the database file).", (r) => r.checkpointPasses);
  counter("seqcast_sqlite_log_rows_swept_total", "Message rows the log's sweep read to delete the dead ones among them.", (r) => r.rowsSwept);
  new Gauge({
    name: "seqcast_sqlite_file_bytes",
    help: "Bytes on disk: the database file, and its write-ahead log (wal; copied into the database by the checkpoints and started over).",
    labelNames: ["file"],
    registers,
    collect() {
      const r = storage();
      this.set({ file: "database" }, r.fileBytes);
      this.set({ file: "wal" }, r.walBytes);
    },
  });
  // No worker is configured for a database in memory: no gauge then.
  if (storage().checkpointWorker !== undefined)
    new Gauge({
      name: "seqcast_sqlite_checkpoint_worker_up",
      help: "1 while the checkpoint worker thread runs; 0 once it stopped (SQLite then checkpoints at commit, on the event loop; the log says why).",
      registers,
      collect() {
        this.set(storage().checkpointWorker ? 1 : 0);
      },
    });
  new Gauge({
    name: "seqcast_sqlite_log_rows",
    help: "Message rows: retained (what retention keeps), unswept (from the sweep's position to the log's end: retained rows there and dead ones the sweep has yet to delete; it sweeps once they are 1.5x the retained).",
    labelNames: ["state"],
    registers,
    collect() {
      const r = storage();
      this.set({ state: "retained" }, r.retainedRows);
      this.set({ state: "unswept" }, r.unsweptRows);
    },
  });
}
