import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Logger } from "../log/logger.js";

/**
 * `seqcast serve --workers N`: one machine, every core. The primary process
 * forks N workers (node:cluster), each running the same `seqcast serve` as
 * a full broker node on the Redis engine; they share the listening port (the
 * primary accepts connections and hands them to the workers in turn). The
 * primary serves nothing itself: it reports when all workers listen, forwards
 * SIGINT/SIGTERM to them, and replaces a worker that dies.
 */

/** `--workers 0` means one per core. */
export const workerCount = (setting: number): number => (setting === 0 ? availableParallelism() : setting);

interface Listening {
  url: string;
  port: number;
}

/** In a worker: tells the primary this node listens. */
export function reportListening(listening: Listening & Record<string, unknown>, logger: Logger): void {
  logger.info({ url: listening.url }, "seqcast worker listening");
  process.send?.({ type: "seqcast:listening", listening });
}

/** Pause before a worker that died is replaced, so a crash loop does not spin. */
const RESTART_DELAY_MS = 500;

/**
 * In the primary: runs `count` workers until SIGINT/SIGTERM; resolves with
 * the exit code. With `forwardHangup`, a SIGHUP (reload the TLS
 * certificate) is passed on to every worker.
 */
export function runWorkers(count: number, description: Record<string, unknown>, logger: Logger, options: { forwardHangup?: boolean } = {}): Promise<number> {
  return new Promise<number>((resolve) => {
    const started = new Map<Worker, number>();
    const ready = new Set<Worker>();
    let stopping = false;
    let announced = false;
    let exitCode = 0;

    const fork = () => {
      const worker = cluster.fork();
      started.set(worker, Date.now());
      worker.on("message", (message: { type?: string; listening?: Listening }) => {
        if (message?.type !== "seqcast:listening" || !message.listening) return;
        ready.add(worker);
        if (announced || ready.size < count) return;
        announced = true;
        logger.info(
          {
            url: message.listening.url,
            port: message.listening.port,
            workers: count,
            pids: [...ready].map((w) => w.process.pid),
            ...description,
          },
          "seqcast listening",
        );
      });
    };

    const stop = (signal: string, code = 0) => {
      if (stopping) {
        // Asked again: do not wait for graceful shutdowns.
        for (const worker of started.keys()) worker.process.kill("SIGKILL");
        return;
      }
      stopping = true;
      exitCode = code;
      logger.info({ signal, workers: started.size }, "seqcast shutting down");
      for (const worker of started.keys()) worker.process.kill("SIGTERM");
      if (started.size === 0) finish();
    };
    const hangup = () => {
      for (const worker of started.keys()) worker.process.kill("SIGHUP");
    };
    const finish = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", hangup);
      logger.info("seqcast stopped");
      resolve(exitCode);
    };
    const onSignal = (signal: NodeJS.Signals) => stop(signal);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    if (options.forwardHangup) process.on("SIGHUP", hangup);

    cluster.on("exit", (worker, code, signal) => {
      const since = started.get(worker) ?? Date.now();
      const listened = ready.has(worker);
      started.delete(worker);
      ready.delete(worker);
      if (stopping) {
        if (started.size === 0) finish();
        return;
      }
      // Expected on a crash (the worker is replaced), so a warning without a stack: the worker logged its own error.
      logger.warn({ worker: worker.process.pid, code, signal, uptimeMs: Date.now() - since }, "seqcast worker exited");
      if (!listened) {
        // It could not start (a bad setting, the port taken): the others would fail alike.
        stop("worker failed", typeof code === "number" && code !== 0 ? code : 1);
        return;
      }
      // It crashed while serving: its clients reconnect to the other workers meanwhile.
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS);
    });

    for (let i = 0; i < count; i++) fork();
  });
}
