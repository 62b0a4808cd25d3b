import { statSync } from "node:fs";
import type { EngineStorageReport } from "./engine.js";
import type { Checkpointer } from "./sqlite-checkpoint.js";
import type { SqliteEngineStats } from "./sqlite-commit.js";
import type { MessageLog } from "./sqlite-log.js";

/** Bytes of a file, 0 when there is none (a WAL removed at close, a database in memory). */
function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The engine's storage report (GET /metrics): `path` undefined for a database in memory. */
export function storageReport(
  path: string | undefined,
  commits: SqliteEngineStats,
  log: MessageLog,
  checkpointer: Checkpointer | undefined,
): EngineStorageReport {
  const { retained, unswept } = log.rows;
  return {
    transactions: commits.transactions,
    messages: commits.publishes,
    fileBytes: path === undefined ? 0 : fileBytes(path),
    walBytes: path === undefined ? 0 : fileBytes(`${path}-wal`),
    checkpointPasses: checkpointer?.passes ?? 0,
    checkpointWorker: checkpointer === undefined ? undefined : checkpointer.failure === undefined,
    retainedRows: retained,
    unsweptRows: unswept,
    rowsSwept: log.counters.rowsSwept,
  };
}
