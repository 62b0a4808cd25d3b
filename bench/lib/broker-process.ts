/**
 * The seqcast broker under test as a child process (bench/broker-child.ts),
 * measured like nats-server and redis-server: its own pid, RSS and CPU time.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/support/ports.js";
import { BENCH_DIR, BENCH_JWT_SECRET, P, ROOT } from "./params.js";

export type EngineName = "memory" | "sqlite" | "redis";

export interface EventLoopTimes {
  idle: number;
  active: number;
  /**
   * The broker's garbage collections so far (bench/broker-child.ts): how many
   * full (mark-compact) ones and their main-thread pause time, ms; the same
   * for scavenges. Absent from children that do not report them.
   */
  gc?: { major: number; majorMs: number; minor: number; minorMs: number };
  /** V8 heap in use, bytes (live objects and garbage not yet collected). */
  heapUsed?: number;
}

export interface BrokerChild {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  readonly engine: EngineName;
  /** seqcast's version, engine and commit, for the report. */
  readonly version: string;
  /** Cumulative event-loop idle/active ms of the broker process, and its collections so far. */
  eventLoop(): Promise<EventLoopTimes | undefined>;
  /** "profile-start" / "profile-stop FILE": a CPU profile of one phase. */
  profile(command: string): Promise<void>;
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;

/** The last commit that changed the broker's code (src, proto, gen), with "+changes" when the working tree differs from it. */
export function seqcastRevision(): string {
  try {
    const commit = execFileSync("git", ["log", "-1", "--format=%h", "--", "src", "proto", "gen"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "proto", "gen"], { cwd: ROOT, encoding: "utf8" }).trim();
    return dirty ? `${commit}+changes` : commit;
  } catch {
    return "unknown commit";
  }
}

export function brokerVersion(engine: EngineName): string {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  const store =
    engine === "sqlite" ? "sqlite engine, WAL, synchronous=NORMAL, group commit" : engine === "redis" ? `redis engine on 127.0.0.1:${P.redisPort}` : "memory engine";
  return `seqcast ${pkg.version} at ${seqcastRevision()} (${store})`;
}

/** Starts a broker child; `env` adds SEQCAST_* settings for this broker only. */
export function startBroker(engine: EngineName, env: Record<string, string> = {}): Promise<BrokerChild> {
  const version = brokerVersion(engine);
  return startChild("broker-child.ts", engine, env, env.SEQCAST_TLS_CERT ? version.replace(/\)$/, ", TLS 1.3 with a P-256 certificate)") : version);
}

/**
 * `seqcast serve --engine redis --workers N` on one port (node:cluster: the
 * primary hands connections to the workers in turn), under a fresh Redis key
 * prefix. Measured as the whole process tree (primary and workers). It has
 * no stdin protocol: no event-loop readings, no profiles.
 */
export async function startWorkers(workers: number): Promise<BrokerChild> {
  const port = await freePort();
  const prefix = `seqcast-bench:${process.pid}:${Date.now()}:`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SEQCAST_JWT_SECRET: BENCH_JWT_SECRET,
    // One bench user: no publish rate limit, no per-user quotas (as for broker children).
    SEQCAST_PUBLISH_RATE: process.env.SEQCAST_PUBLISH_RATE ?? "0",
    SEQCAST_USER_SESSIONS_MAX: process.env.SEQCAST_USER_SESSIONS_MAX ?? "0",
    SEQCAST_USER_ROOMS_PER_SECOND: process.env.SEQCAST_USER_ROOMS_PER_SECOND ?? "0",
  };
  // BENCH_CPU_PROF: the primary's flags go to its workers (node:cluster forks with process.execArgv), so each writes its own profile.
  const args = P.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(P.cpuProfDir)}`] : [];
  if (P.cpuProfDir) mkdirSync(P.cpuProfDir, { recursive: true });
  args.push(path.join(ROOT, "bin", "seqcast.js"), "serve", "--engine", "redis", "--workers", String(workers));
  args.push("--redis-url", `redis://127.0.0.1:${P.redisPort}`, "--redis-prefix", prefix, "--host", "127.0.0.1", "--port", String(port));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  const keep = (chunk: string) => {
    output += chunk;
    if (output.length > 20_000) output = output.slice(-20_000);
  };
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", keep);
  child.stdout!.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`seqcast serve --workers ${workers} did not listen within ${STARTUP_TIMEOUT_MS} ms:\n${output}`));
    }, STARTUP_TIMEOUT_MS);
    child.stdout!.on("data", (chunk: string) => {
      keep(chunk);
      if (/"msg":"seqcast listening"/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`seqcast serve --workers ${workers} exited (code ${code}) before listening:\n${output}`));
    });
  });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  return {
    child,
    port,
    pid: child.pid!,
    url: `http://127.0.0.1:${port}`,
    engine: "redis",
    version: `seqcast ${pkg.version} at ${seqcastRevision()} (redis engine on 127.0.0.1:${P.redisPort}, ${workers} workers on one port)`,
    eventLoop: async () => undefined,
    profile: async () => undefined,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      await dropRedisKeys(prefix);
    },
  };
}

/** Deletes what a bench broker left in Redis under its prefix. */
export async function dropRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const redis = new Redis({ port: P.redisPort, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } catch {
    /* Redis gone: nothing to clean */
  } finally {
    redis.disconnect();
  }
}


/**
 * Node's floor: a bare gRPC-framed fan-out on node:http2 (bench/floor-child.ts), driven like the broker;
 * `framer`: the same on a hand-written HTTP/2 connection (bench/lib/h2-framer.ts) instead of node:http2.
 */
export function startFloor(framer = false): Promise<BrokerChild> {
  return framer
    ? startChild("floor-child.ts", "memory", { FLOOR_HTTP2: "framer" }, `bare fan-out on a hand-written HTTP/2 framer, ${process.version} (bench/floor-child.ts, bench/lib/h2-framer.ts)`)
    : startChild("floor-child.ts", "memory", {}, `bare node:http2 fan-out, ${process.version} (bench/floor-child.ts)`);
}

async function startChild(script: string, engine: EngineName, env: Record<string, string>, version: string): Promise<BrokerChild> {
  const dataDir = engine === "sqlite" ? mkdtempSync(path.join(os.tmpdir(), "seqcast-bench-")) : undefined;
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_ENGINE: engine,
    BENCH_JWT_SECRET,
    // One bench user publishes everything: the per-user publish rate limit is off unless set.
    SEQCAST_PUBLISH_RATE: process.env.SEQCAST_PUBLISH_RATE ?? "0",
    // …and holds every session: the per-user quotas are off too unless set.
    SEQCAST_USER_SESSIONS_MAX: process.env.SEQCAST_USER_SESSIONS_MAX ?? "0",
    SEQCAST_USER_ROOMS_PER_SECOND: process.env.SEQCAST_USER_ROOMS_PER_SECOND ?? "0",
    ...env,
  };
  if (dataDir) childEnv.BENCH_DATA_DIR = dataDir;
  const redisPrefix = engine === "redis" ? `seqcast-bench:${process.pid}:${Date.now()}:` : undefined;
  if (redisPrefix) {
    childEnv.BENCH_REDIS_PREFIX = redisPrefix;
    childEnv.BENCH_REDIS_URL = `redis://127.0.0.1:${P.redisPort}`;
  }
  const args = ["--import", "tsx"];
  if (P.cpuProfDir) {
    mkdirSync(P.cpuProfDir, { recursive: true });
    args.push("--cpu-prof", `--cpu-prof-dir=${path.resolve(P.cpuProfDir)}`);
  }
  args.push(path.join(BENCH_DIR, script));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env: childEnv });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
  });
  child.stdin!.on("error", () => {});
  const eluWaiters: Array<(times: EventLoopTimes | undefined) => void> = [];
  const profileWaiters: Array<() => void> = [];
  const alive = () => child.exitCode === null && child.signalCode === null && child.stdin!.writable;
  const profile = (command: string) =>
    new Promise<void>((resolve) => {
      if (!alive()) return resolve();
      const timer = setTimeout(resolve, 10_000);
      profileWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin!.write(`${command}\n`);
    });
  const eventLoop = () =>
    new Promise<EventLoopTimes | undefined>((resolve) => {
      if (!alive()) return resolve(undefined);
      const timer = setTimeout(() => resolve(undefined), 2000);
      eluWaiters.push((times) => {
        clearTimeout(timer);
        resolve(times);
      });
      child.stdin!.write("elu\n");
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (redisPrefix) await dropRedisKeys(redisPrefix);
  };
  return new Promise<BrokerChild>((resolve, reject) => {
    let out = "";
    let started = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`broker child printed no port within ${STARTUP_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, STARTUP_TIMEOUT_MS);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      out += chunk;
      for (let newline = out.indexOf("\n"); newline >= 0; newline = out.indexOf("\n")) {
        const line = out.slice(0, newline);
        out = out.slice(newline + 1);
        let parsed: { port?: number; pid?: number; elu?: EventLoopTimes };
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          if (!started) {
            clearTimeout(timer);
            reject(new Error(`broker child printed ${JSON.stringify(line)} instead of its port`));
          }
          continue;
        }
        if (!started && parsed.port !== undefined && parsed.pid !== undefined) {
          started = true;
          clearTimeout(timer);
          const port = parsed.port;
          resolve({ child, port, pid: parsed.pid, url: `${childEnv.SEQCAST_TLS_CERT ? "https" : "http"}://127.0.0.1:${port}`, engine, version, eventLoop, profile, stop });
        } else if (parsed.elu) eluWaiters.shift()?.(parsed.elu);
        else if ("profiling" in parsed || "profile" in parsed) profileWaiters.shift()?.();
      }
    });
    child.once("exit", (code, signal) => {
      for (const waiter of eluWaiters.splice(0)) waiter(undefined);
      for (const waiter of profileWaiters.splice(0)) waiter();
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`broker child exited (code ${code}, signal ${signal}) before printing its port; stderr:\n${stderr.trim()}`));
    });
  });
}

/** Event-loop busy share of the broker between two readings, %. */
export function loopBusy(a: EventLoopTimes | undefined, b: EventLoopTimes | undefined): number | undefined {
  if (!a || !b) return undefined;
  const active = b.active - a.active;
  const idle = b.idle - a.idle;
  return active + idle > 0 ? (active / (active + idle)) * 100 : undefined;
}
