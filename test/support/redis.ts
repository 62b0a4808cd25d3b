import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import { waitUntil } from "./wait.js";

/**
 * Redis for tests. The shared server (127.0.0.1:6379, or SEQCAST_TEST_REDIS_URL)
 * is used by everyone on the machine: each test run gets a key prefix of its
 * own and deletes only its own keys, never FLUSHDB. Tests that restart,
 * flush, pause or persist Redis start a server of their own instead.
 */
export const SHARED_REDIS_URL = process.env.SEQCAST_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix no other test run uses. */
export const testPrefix = (label = "t") => `seqcast-test:${process.pid}:${randomBytes(4).toString("hex")}:${label}:`;

/** Deletes every key under `prefix` (SCAN + UNLINK: the shared server is never flushed). */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A redis-server of the test's own, on a free port. */
export interface OwnRedis {
  port: number;
  url: string;
  child: ChildProcess;
  /** SIGSTOP: Redis keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Kills it (SIGKILL by default) and waits until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (same data directory: AOF data comes back). */
  restart(): Promise<void>;
  /** Kills it and removes its data directory. */
  stop(): Promise<void>;
}


/**
 * Starts `redis-server` without persistence, or with AOF (`appendfsync
 * always`: an acknowledged write is on disk) when `aof` is set.
 */
export async function startOwnRedis(options: { aof?: boolean } = {}): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "seqcast-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, "--daemonize", "no"];
  args.push(...(options.aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]));
  let child!: ChildProcess;
  const launch = async () => {
    child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    await waitUntil(
      () => output.includes("Ready to accept connections") || child.exitCode !== null,
      () => `redis-server on ${port} to start: ${output}`,
      20_000,
    );
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
  };
  await launch();
  const gone = (c: ChildProcess) =>
    new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once("exit", () => resolve())));
  const own: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get child() {
      return child;
    },
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    async kill(signal = "SIGKILL") {
      child.kill("SIGCONT");
      child.kill(signal);
      await gone(child);
    },
    async restart() {
      await launch();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) await own.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return own;
}

/** Arguments of `seqcast serve` for a node of the deployment under `prefix` on `url`. */
export const redisNodeArgs = (url: string, prefix: string, extra: string[] = []) => [
  "--engine",
  "redis",
  "--redis-url",
  url,
  "--redis-prefix",
  prefix,
  // The floods here measure order and loss, not the per-user limit.
  "--publish-rate",
  "0",
  ...extra,
];
