import { hostname } from "node:os";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/**
 * One broker per SQLite database: the SQLite engine fans out only inside its
 * process, so a second broker on the same data directory would share the
 * sequences but deliver only its own publishes.
 *
 * The lock is an SQLite write lock on a small file beside the database
 * (`seqcast.db.lock`), taken with BEGIN IMMEDIATE and held until the engine
 * closes. It is an OS file lock, so the kernel releases it when the process
 * dies, however it dies: no stale lock to detect, and no pid to trust (a pid
 * file would be fooled by pid reuse and by containers, where every broker is
 * pid 1). The holder's pid and host are written to the file first, so the
 * refusal can name them.
 */
export interface DatabaseLock {
  release(): void;
}

export class DatabaseLockedError extends Error {
  override name = "DatabaseLockedError";
}

export function lockDatabase(path: string): DatabaseLock {
  const lockPath = `${path}.lock`;
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, host TEXT NOT NULL, since_ms INTEGER NOT NULL)");
    // Say who we are (committed, so a refused broker can read it), then hold the write lock.
    db.exec("BEGIN IMMEDIATE");
    db.prepare("DELETE FROM holder").run();
    db.prepare("INSERT INTO holder (pid, host, since_ms) VALUES (?, ?, ?)").run(process.pid, hostname(), Date.now());
    db.exec("COMMIT");
    db.exec("BEGIN IMMEDIATE");
  } catch (error) {
    const busy = String((error as { code?: unknown }).code ?? "").startsWith("SQLITE_BUSY");
    if (!busy) {
      db.close();
      throw error;
    }
    let holder: { pid: number; host: string } | undefined;
    try {
      holder = db.prepare("SELECT pid, host FROM holder").get() as typeof holder;
    } catch {
      // Being written right now: name no one.
    }
    db.close();
    const who =
      holder === undefined || holder.pid === process.pid
        ? "another seqcast broker"
        : `another seqcast broker (pid ${holder.pid}${holder.host === hostname() ? "" : ` on ${holder.host}`})`;
    throw new DatabaseLockedError(
      `data directory ${dirname(path)} is in use by ${who}. The sqlite engine serves one node: stop that broker, ` +
        `give this one another --data-dir, or run several nodes with --engine redis`,
    );
  }
  return {
    release() {
      if (!db.open) return;
      try {
        db.exec("ROLLBACK");
      } finally {
        db.close();
      }
    },
  };
}
