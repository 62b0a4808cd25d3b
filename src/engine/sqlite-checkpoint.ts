import { once } from "node:events";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { rootLogger } from "../log/logger.js";

/**
 * WAL checkpoints of the SQLite engine, off the event loop.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold, on the connection that committed: on the broker's event loop.
 * There it copied every page the WAL held into the database file and
 * fsynced it while every publish, delivery and heartbeat waited: at 10,000
 * rooms, one commit in a thousand took 120-130 ms (10,000 pages, the
 * threshold before); raising the threshold to make the copies rarer (and
 * dedupe pages written many times) made them longer (450 ms at 100,000).
 *
 * Here a worker thread, on a connection of its own, runs a PASSIVE
 * checkpoint every `intervalMs`: it copies what the WAL holds without taking
 * the writer's lock, so commits go on meanwhile (and it passes again at once
 * until one has little to copy). The copying and its fsyncs
 * cost the same CPU but no longer stop the event loop, and a page written
 * many times within an interval is copied once. A WAL only starts over from
 * its beginning when a writer finds it wholly copied, which the worker racing
 * the writer seldom leaves it: once a pass ends with the WAL past
 * `resetFrames`, the engine copies the few frames written since, itself,
 * and its next commit restarts the WAL. The copy takes milliseconds; its two
 * fsyncs (mostly the disk's flush, tens of ms) are the one pause left on the
 * event loop, at most once an interval. So the WAL file stays near
 * `resetFrames` pages plus what an interval writes.
 *
 * If the worker fails, the engine logs a warning and falls back to SQLite's
 * automatic checkpoint at `resetFrames` pages, on the event loop as before.
 */
export interface CheckpointOptions {
  /** Time between the worker's passes, ms (default 1,000). */
  intervalMs?: number;
  /** WAL frames past which the engine restarts the WAL after a pass (default 10,000: 40 MiB of 4 KiB pages). */
  resetFrames?: number;
}

/** A pass that copied more frames than this is followed by another at once (commits went on while it copied). */
const CATCH_UP_FRAMES = 1_000;
/** Passes in a row at most, before the worker waits its interval. */
const MAX_PASSES = 8;
/** How long close() waits for the worker to close its connection before stopping it. */
const CLOSE_WAIT_MS = 5_000;

/** The worker, as CommonJS source: run with `eval`, so it needs no loader for TypeScript. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma("synchronous = " + workerData.synchronous);
db.pragma("wal_autocheckpoint = 0");
let timer;
/** The WAL's frames as the last pass saw them: what a pass copied is its log less this (a smaller log: the WAL started over). */
let seen = 0;
function pass() {
  try {
    let result;
    for (let i = 0; i < ${MAX_PASSES}; i++) {
      result = db.pragma("wal_checkpoint(PASSIVE)")[0];
      const copied = result.log >= seen ? result.log - seen : result.log;
      seen = result.log;
      // A pass that had little to copy was short, so little was written during it: the engine's catch-up is short too.
      if (result.busy || copied <= ${CATCH_UP_FRAMES}) break;
    }
    parentPort.postMessage({ busy: result.busy, log: result.log, checkpointed: result.checkpointed });
    timer = setTimeout(pass, workerData.intervalMs);
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
}
timer = setTimeout(pass, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message !== "close") return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

interface PassResult {
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
}

export class Checkpointer {
  private readonly worker: Worker;
  private readonly resetFrames: number;
  private stopped = false;
  /** Passes the worker reported, for tests. */
  passes = 0;
  /** WAL restarts the engine brought about (copies of the last frames after a pass), for tests. */
  restarts = 0;
  /** Why the worker stopped, once it did on its own (the engine checkpoints as SQLite does by default since). */
  failure: string | undefined;

  constructor(
    private readonly db: Database.Database,
    path: string,
    synchronous: "NORMAL" | "FULL",
    options: CheckpointOptions = {},
  ) {
    this.resetFrames = Math.max(1, Math.floor(options.resetFrames ?? 10_000));
    db.pragma("wal_autocheckpoint = 0");
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        module: createRequire(import.meta.url).resolve("better-sqlite3"),
        path,
        synchronous,
        intervalMs: Math.max(1, Math.floor(options.intervalMs ?? 1_000)),
      },
    });
    // Never what keeps a process alive: close() stops it.
    this.worker.unref();
    this.worker.on("message", (result: PassResult) => this.passed(result));
    this.worker.on("error", (error) => this.fallBack(String(error)));
    this.worker.on("exit", (code) => this.fallBack(`checkpoint worker exited (${code})`));
  }

  private passed(result: PassResult): void {
    if (this.stopped) return;
    if (result.error !== undefined) {
      this.fallBack(result.error);
      void this.worker.terminate();
      return;
    }
    this.passes++;
    if (!result.busy && (result.log ?? 0) >= this.resetFrames) {
      // Copies what was written during the pass: then the next commit finds the WAL copied and starts it over.
      try {
        this.db.pragma("wal_checkpoint(PASSIVE)");
        this.restarts++;
      } catch (error) {
        // An I/O error here is not this message handler's to throw (it would end the process): SQLite's own checkpoint takes over.
        this.fallBack(String(error));
        void this.worker.terminate();
      }
    }
  }

  /** The worker is gone: SQLite checkpoints at commit again, so the WAL stays bounded. */
  private fallBack(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.failure = reason;
    rootLogger().warn({ reason }, "sqlite checkpoint worker stopped: checkpoints run at commit again, on the event loop");
    try {
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${this.resetFrames}`);
    } catch {
      // A database that cannot take a pragma fails its commits, which report it.
    }
  }

  /** Stops the worker once it closed its connection (before the engine closes its own, the last, which checkpoints the rest). */
  async close(): Promise<void> {
    const running = !this.stopped;
    this.stopped = true;
    if (!running) return;
    const exited = once(this.worker, "exit");
    this.worker.postMessage("close");
    const timer = setTimeout(() => void this.worker.terminate(), CLOSE_WAIT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
