/**
 * Fan-out benchmark: seqcast vs NATS core vs Redis pub/sub, side by side, in
 * one run on this machine. Writes bench/RESULTS.md.
 *
 *   node --import tsx bench/run.ts          (npm run bench)
 *
 * Scenario, identical for the three systems: one room/subject/channel,
 * BENCH_SUBSCRIBERS subscribers each on its own connection, one publisher
 * connection, 256-byte messages.
 *   warmup      BENCH_WARMUP messages flat out, not measured (JIT, buffers)
 *   throughput  N messages flat out with at most BENCH_WINDOW
 *               publishes in flight; delivered msg/s = N × subscribers / time
 *               from the first publish until every subscriber has all N
 *   latency     BENCH_RATE msg/s for BENCH_SECONDS s; publish→deliver latency
 *               of every delivery at every subscriber (send time is in the payload)
 * The servers are separate processes (seqcast: bench/broker-child.ts); their
 * RSS and CPU time are read from /proc. The load generator (all clients) is
 * this process, for all three systems.
 *
 * Every delivery is checked: seqcast subscribers must see sequences
 * first..last with no gap, duplicate or reordering; NATS and Redis subscribers
 * must see the publisher's message indices in order. Missing messages and
 * order violations are counted and printed; the run exits non-zero if any.
 *
 * Environment (defaults in brackets):
 *   BENCH_SUBSCRIBERS [100]  BENCH_WARMUP [2000]
 *   BENCH_MESSAGES: throughput-phase messages for every system, or per system
 *     BENCH_MESSAGES_SEQCAST [10000], BENCH_MESSAGES_NATS [40000], BENCH_MESSAGES_REDIS [40000]
 *   BENCH_RATE [200]  BENCH_SECONDS [5]  BENCH_WINDOW [128]
 *   BENCH_SYSTEMS [seqcast,nats,redis]  BENCH_PROTOCOL [grpc] (or connect: seqcast over the Connect protocol, still HTTP/2)
 *   BENCH_CPU_PROF=<dir>  run the seqcast broker child with --cpu-prof into <dir>
 *   BENCH_OUT [bench/RESULTS.md]  ("-" = do not write)
 *   NATS_URL [127.0.0.1:4222]  REDIS_PORT [6379]
 *   SEQCAST_* variables are passed to the broker child (e.g. SEQCAST_SESSION_QUEUE_LIMIT).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { connect as natsConnect, type NatsConnection } from "nats";
import { Redis } from "ioredis";
import http2 from "node:http2";
import { connect, LeanPublishStream, subscribe, type LeanConnection } from "./lean-client.js";

// ---------------------------------------------------------------- parameters

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, "..");

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`${name}="${raw}" must be an integer >= ${min}`);
    process.exit(2);
  }
  return value;
}

const P = {
  subscribers: envInt("BENCH_SUBSCRIBERS", 100),
  // Messages of the throughput phase, per system, so that each phase lasts
  // long enough to measure without the whole run taking minutes: on this
  // 2-core machine seqcast delivers ~50k msg/s, NATS and Redis ~0.7-1.1M/s.
  messages: {
    seqcast: envInt("BENCH_MESSAGES_SEQCAST", envInt("BENCH_MESSAGES", 10_000)),
    nats: envInt("BENCH_MESSAGES_NATS", envInt("BENCH_MESSAGES", 40_000)),
    redis: envInt("BENCH_MESSAGES_REDIS", envInt("BENCH_MESSAGES", 40_000)),
  },
  warmup: envInt("BENCH_WARMUP", 2_000, 0),
  // Well under seqcast's flat-out fan-out (~40-50k deliveries/s here), so the
  // latency phase measures latency, not queueing: 500 msg/s × 100 subscribers
  // saturates the seqcast broker on this machine.
  rate: envInt("BENCH_RATE", 200),
  seconds: envInt("BENCH_SECONDS", 5),
  window: envInt("BENCH_WINDOW", 128),
  messageBytes: 256,
  protocol: (process.env.BENCH_PROTOCOL ?? "grpc") as "grpc" | "connect",
  systems: (process.env.BENCH_SYSTEMS ?? "seqcast,seqcast-sqlite,nats,redis").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean),
  natsUrl: process.env.NATS_URL ?? "127.0.0.1:4222",
  redisPort: envInt("REDIS_PORT", 6379),
  cpuProfDir: process.env.BENCH_CPU_PROF,
  pacedProfileDir: process.env.BENCH_PROFILE_PACED,
  out: process.env.BENCH_OUT ?? path.join(BENCH_DIR, "RESULTS.md"),
};
const LATENCY_MESSAGES = P.rate * P.seconds;
if (P.protocol !== "grpc" && P.protocol !== "connect") {
  console.error(`BENCH_PROTOCOL must be grpc or connect`);
  process.exit(2);
}
if (P.messageBytes < 16) throw new Error("payload must hold index, phase and send time");

const ROOM = "bench";
const SUBJECT = "bench.fanout";
// The broker child verifies tokens signed with this secret (bench/broker-child.ts).
const BENCH_JWT_SECRET = "seqcast-bench-secret";
process.env.BENCH_JWT_SECRET = BENCH_JWT_SECRET;
const HEADERS = { authorization: `Bearer ${benchToken("bench")}` };

/** A long-lived HS256 token for the bench clients. */
function benchToken(user: string): string {
  const b64 = (v: string) => Buffer.from(v).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify({ sub: user, iat: now, exp: now + 86_400 }))}`;
  return `${body}.${createHmac("sha256", BENCH_JWT_SECRET).update(body).digest("base64url")}`;
}
const CONNECT_TIMEOUT_MS = 30_000;
const PHASE_TIMEOUT_MS = { warmup: 30_000, throughput: 60_000, latency: P.seconds * 1000 + 20_000 };
/** Whole run; a broken system must not make the run hang forever. */
const RUN_TIMEOUT_MS = 10 * 60_000;

const PHASES = ["warmup", "throughput", "latency"] as const;
type Phase = 0 | 1 | 2;
const WARMUP: Phase = 0;
const THROUGHPUT: Phase = 1;
const LATENCY: Phase = 2;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const log = (...args: unknown[]) => console.log(`[${(performance.now() / 1000).toFixed(1).padStart(6)}s]`, ...args);

// ---------------------------------------------------------------- payloads

/**
 * 256 bytes: u32 LE global index at 0, phase at 4, f64 LE send time
 * (performance.now() of this process) at 8, filler after.
 */
function makePayload(index: number, phase: Phase): Uint8Array {
  const bytes = new Uint8Array(P.messageBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, index, true);
  view.setUint8(4, phase);
  for (let i = 16; i < bytes.length; i++) bytes[i] = 97 + (i % 26);
  view.setFloat64(8, performance.now(), true);
  return bytes;
}

// ---------------------------------------------------------------- /proc

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  /* keep 100 */
}

function rssBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest is included in user)
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

interface CpuWindow {
  /** Server process CPU, % of one core. */
  server?: number;
  /** This process (the load generator), % of one core. */
  client: number;
  /** Everything else on the machine, in cores. */
  otherCores?: number;
}

/** Starts measuring CPU use of the server, this process and the rest of the machine. */
function cpuWindow(serverPid: number | undefined): () => CpuWindow {
  const start = performance.now();
  const machine0 = machineJiffies();
  const server0 = cpuSeconds(serverPid);
  const self0 = process.cpuUsage();
  return () => {
    const wall = (performance.now() - start) / 1000;
    const server1 = cpuSeconds(serverPid);
    const self = process.cpuUsage(self0);
    const machine1 = machineJiffies();
    const selfSeconds = (self.user + self.system) / 1e6;
    const serverSeconds = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
    const window: CpuWindow = { client: (selfSeconds / wall) * 100 };
    if (serverSeconds !== undefined) window.server = (serverSeconds / wall) * 100;
    if (machine0 && machine1)
      window.otherCores = Math.max(0, ((machine1.busy - machine0.busy) / clockTicks - selfSeconds - (serverSeconds ?? 0)) / wall);
    return window;
  };
}

/** The pid of a server process, preferring one whose command line names `port`. */
function findPid(name: string, port: number): number | undefined {
  try {
    const lines = execFileSync("pgrep", ["-a", "-x", name], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
    const withPort = lines.find((l) => l.includes(String(port)));
    const line = withPort ?? (lines.length === 1 ? lines[0] : undefined);
    return line ? Number(line.split(" ")[0]) : undefined;
  } catch {
    return undefined;
  }
}

function binaryVersion(command: string): string {
  try {
    return execFileSync(command, ["--version"], { encoding: "utf8", timeout: 5000 }).trim().split("\n")[0]!;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------- tracking

interface Violation {
  sub: number;
  expected: string;
  got: string;
  phase: string;
}

/**
 * Everything the subscribers of one system saw: per-phase completion, order
 * checks, latencies. Sequence checks use the broker's sequence when the
 * system has one (seqcast), else the publisher's index.
 */
class Tracker {
  readonly lastIndex: Int32Array;
  readonly lastSeq: (bigint | undefined)[];
  readonly counts: Int32Array[] = PHASES.map(() => new Int32Array(0));
  readonly dead: (string | undefined)[];
  readonly phaseTarget: number[];
  readonly phaseDone = [0, 0, 0];
  readonly phaseDoneAt = [0, 0, 0];
  readonly latencies: Float64Array;
  /** Send time of each latency sample, for per-second percentiles. */
  readonly latencySent: Float64Array;
  latencyCount = 0;
  latencyStart = 0;
  /** Global index of the first latency-phase message. */
  latencyBase = 0;
  /** Per latency-phase message: latency at its first and at its last subscriber. */
  readonly firstLatency = new Float64Array(LATENCY_MESSAGES).fill(Infinity);
  readonly lastLatency = new Float64Array(LATENCY_MESSAGES).fill(-Infinity);
  /** Deliveries with a broker sequence other than previous + 1 (seqcast). */
  seqViolations = 0;
  /** Deliveries whose publisher index is not previous + 1. */
  indexViolations = 0;
  readonly samples: Violation[] = [];
  received = 0;

  constructor(
    readonly subscribers: number,
    /** Messages of the throughput phase. */
    readonly messages: number,
    /** True when the system assigns sequences (then index order is only informative). */
    readonly sequenced: boolean,
  ) {
    this.phaseTarget = [P.warmup, messages, LATENCY_MESSAGES];
    this.lastIndex = new Int32Array(subscribers).fill(-1);
    this.lastSeq = new Array(subscribers).fill(undefined);
    this.counts = PHASES.map(() => new Int32Array(subscribers));
    this.dead = new Array(subscribers).fill(undefined);
    this.latencies = new Float64Array(subscribers * LATENCY_MESSAGES);
    this.latencySent = new Float64Array(subscribers * LATENCY_MESSAGES);
  }

  /** seqcast: the position the subscription starts after. */
  startAfter(sub: number, sequence: bigint): void {
    this.lastSeq[sub] = sequence;
  }

  deliver(sub: number, payload: Uint8Array, recvTime: number, sequence?: bigint): void {
    this.received++;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const index = view.getUint32(0, true);
    const phase = view.getUint8(4) as Phase;
    const sentAt = view.getFloat64(8, true);
    if (sequence !== undefined) {
      const last = this.lastSeq[sub];
      if (last === undefined || sequence !== last + 1n) {
        this.seqViolations++;
        this.sample({ sub, expected: `sequence ${last === undefined ? "?" : last + 1n}`, got: `sequence ${sequence}`, phase: PHASES[phase] ?? "?" });
      }
      this.lastSeq[sub] = sequence;
    }
    if (index !== this.lastIndex[sub]! + 1) {
      this.indexViolations++;
      if (!this.sequenced)
        this.sample({ sub, expected: `index ${this.lastIndex[sub]! + 1}`, got: `index ${index}`, phase: PHASES[phase] ?? "?" });
    }
    this.lastIndex[sub] = index;
    if (phase === LATENCY && this.latencyCount < this.latencies.length) {
      const latency = recvTime - sentAt;
      this.latencySent[this.latencyCount] = sentAt;
      this.latencies[this.latencyCount++] = latency;
      const k = index - this.latencyBase;
      if (k >= 0 && k < LATENCY_MESSAGES) {
        if (latency < this.firstLatency[k]!) this.firstLatency[k] = latency;
        if (latency > this.lastLatency[k]!) this.lastLatency[k] = latency;
      }
    }
    const counts = this.counts[phase];
    if (!counts) return;
    const count = ++counts[sub]!;
    if (count === this.phaseTarget[phase]) {
      this.phaseDone[phase]!++;
      this.phaseDoneAt[phase] = recvTime;
    }
  }

  /** p50 latency of the messages sent in each second of the paced phase. */
  p50BySecond(seconds: number): number[] {
    const buckets: number[][] = Array.from({ length: seconds }, () => []);
    for (let i = 0; i < this.latencyCount; i++) {
      const second = Math.min(seconds - 1, Math.max(0, Math.floor((this.latencySent[i]! - this.latencyStart) / 1000)));
      buckets[second]!.push(this.latencies[i]!);
    }
    return buckets.map((b) => percentile(Float64Array.from(b).sort(), 50));
  }

  fail(sub: number, reason: string): void {
    if (this.dead[sub] === undefined) this.dead[sub] = reason;
  }

  private sample(v: Violation): void {
    if (this.samples.length < 20) this.samples.push(v);
  }

  /** Subscribers that have everything of `phase`, or are dead. */
  settled(phase: Phase): boolean {
    let n = 0;
    for (let s = 0; s < this.subscribers; s++)
      if (this.counts[phase]![s]! >= this.phaseTarget[phase]! || this.dead[s] !== undefined) n++;
    return n === this.subscribers;
  }

  missing(phase: Phase): number {
    let n = 0;
    for (let s = 0; s < this.subscribers; s++) n += Math.max(0, this.phaseTarget[phase]! - this.counts[phase]![s]!);
    return n;
  }

  duplicates(phase: Phase): number {
    let n = 0;
    for (let s = 0; s < this.subscribers; s++) n += Math.max(0, this.counts[phase]![s]! - this.phaseTarget[phase]!);
    return n;
  }

  deadCount(): number {
    return this.dead.filter((d) => d !== undefined).length;
  }

  async waitPhase(phase: Phase, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.settled(phase)) {
      if (performance.now() > deadline) return false;
      await sleep(2);
    }
    return this.phaseDone[phase] === this.subscribers;
  }
}

// ---------------------------------------------------------------- drivers

interface Driver {
  readonly name: string;
  readonly serverPid: number | undefined;
  readonly serverVersion: string;
  /** Non-fatal problems: publish errors, subscribers cut off, … */
  readonly errors: string[];
  publishErrors: number;
  connectSubscribers(n: number, tracker: Tracker): Promise<void>;
  /** Publishes `count` messages as fast as possible with at most `window` unacknowledged. */
  publishFlatOut(count: number, make: (k: number) => Uint8Array, window: number): Promise<void>;
  /** Fire-and-forget publish for the paced phase. */
  publishOne(payload: Uint8Array): void;
  /** Waits for outstanding fire-and-forget publishes. */
  settlePublishes(): Promise<void>;
  /** Cumulative event-loop times of the server, when it is a Node process. */
  eventLoop?(): Promise<EventLoopTimes | undefined>;
  /** CPU profile commands for the server, when it is a Node process. */
  profile?(command: string): Promise<void>;
  close(): Promise<void>;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// ---- seqcast

interface EventLoopTimes {
  idle: number;
  active: number;
}

interface BrokerChild {
  child: ChildProcess;
  port: number;
  pid: number;
  /** Cumulative event-loop idle/active ms of the broker process. */
  eventLoop(): Promise<EventLoopTimes | undefined>;
  /** "profile-start" / "profile-stop FILE": a CPU profile of one phase. */
  profile(command: string): Promise<void>;
}

async function startBrokerChild(engine: "memory" | "sqlite" = "memory"): Promise<BrokerChild> {
  // One bench user publishes everything: the per-user publish rate limit is off unless set.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_ENGINE: engine,
    SEQCAST_PUBLISH_RATE: process.env.SEQCAST_PUBLISH_RATE ?? "0",
  };
  if (engine === "sqlite") env.BENCH_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), "seqcast-bench-"));
  const args = ["--import", "tsx"];
  if (P.cpuProfDir) {
    mkdirSync(P.cpuProfDir, { recursive: true });
    args.push("--cpu-prof", `--cpu-prof-dir=${path.resolve(P.cpuProfDir)}`);
  }
  args.push(path.join(BENCH_DIR, "broker-child.ts"));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
  });
  child.stdin!.on("error", () => {});
  const eluWaiters: ((times: EventLoopTimes | undefined) => void)[] = [];
  const profileWaiters: Array<() => void> = [];
  /** Sends a profiling command and waits for its answer (or 5 s). */
  const profile = (command: string) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || !child.stdin!.writable) return resolve();
      const timer = setTimeout(resolve, 5000);
      profileWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin!.write(`${command}\n`);
    });
  const eventLoop = () =>
    new Promise<EventLoopTimes | undefined>((resolve) => {
      if (child.exitCode !== null || !child.stdin!.writable) return resolve(undefined);
      const timer = setTimeout(() => resolve(undefined), 2000);
      eluWaiters.push((times) => {
        clearTimeout(timer);
        resolve(times);
      });
      child.stdin!.write("elu\n");
    });
  return new Promise<BrokerChild>((resolve, reject) => {
    let out = "";
    let started = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`broker child printed no port within ${CONNECT_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, CONNECT_TIMEOUT_MS);
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
          resolve({ child, port: parsed.port, pid: parsed.pid, eventLoop, profile });
        } else if (parsed.elu) eluWaiters.shift()?.(parsed.elu);
        else if ("profiling" in parsed || "profile" in parsed) profileWaiters.shift()?.();
      }
    });
    child.once("exit", (code, signal) => {
      for (const waiter of eluWaiters.splice(0)) waiter(undefined);
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`broker child exited (code ${code}, signal ${signal}) before printing its port; stderr:\n${stderr.trim()}`));
    });
  });
}

async function stopBrokerChild(broker: BrokerChild): Promise<void> {
  const { child } = broker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

class SeqcastDriver implements Driver {
  readonly errors: string[] = [];
  publishErrors = 0;
  readonly serverVersion: string;
  private readonly connections: LeanConnection[] = [];
  private readonly streams: http2.ClientHttp2Stream[] = [];
  private readonly token = benchToken("bench");
  private publisher: LeanPublishStream | undefined;
  /** Acks still owed by the broker, oldest first: each resolves its waiter. */
  private readonly owed: Array<() => void> = [];
  private published = 0;
  private closing = false;

  constructor(
    private readonly broker: BrokerChild,
    readonly name: string,
    engine: "memory" | "sqlite",
  ) {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    this.serverVersion = `seqcast ${pkg.version} (${engine} engine${engine === "sqlite" ? ", WAL, synchronous=NORMAL, group commit" : ""}, gRPC over HTTP/2, PublishStream)`;
  }

  get serverPid(): number {
    return this.broker.pid;
  }

  eventLoop(): Promise<EventLoopTimes | undefined> {
    return this.broker.eventLoop();
  }

  profile(command: string): Promise<void> {
    return this.broker.profile(command);
  }

  private get url(): string {
    return `http://127.0.0.1:${this.broker.port}`;
  }

  async connectSubscribers(n: number, tracker: Tracker): Promise<void> {
    const subscribed: Promise<void>[] = [];
    for (let sub = 0; sub < n; sub++) {
      const connection = connect(this.url);
      this.connections.push(connection);
      subscribed.push(
        new Promise<void>((resolve, reject) => {
          const stream = subscribe(connection, this.token, [{ room: ROOM }], {
            subscribed: (_room, sequence) => {
              tracker.startAfter(sub, sequence);
              resolve();
            },
            message: (sequence, payload) => tracker.deliver(sub, payload, performance.now(), BigInt(sequence)),
            ended: (code, message) => {
              if (this.closing) return;
              const reason = `stream ended: code ${code} ${message}`;
              tracker.fail(sub, reason);
              if (this.errors.length < 20) this.errors.push(`subscriber ${sub}: ${reason}`);
              reject(new Error(reason));
            },
          });
          this.streams.push(stream);
        }),
      );
    }
    await Promise.all(subscribed);
  }

  /** The PublishStream every publish of this driver goes through (one connection). */
  private stream(): LeanPublishStream {
    if (!this.publisher) {
      const connection = connect(this.url);
      this.connections.push(connection);
      this.publisher = new LeanPublishStream(connection, this.token, (ack) => {
        if (ack.code !== 0) {
          this.publishErrors++;
          if (this.errors.length < 20) this.errors.push(`publish: code ${ack.code} ${ack.error ?? ""}`);
        }
        this.owed.shift()?.();
      });
    }
    return this.publisher;
  }

  private publish(payload: Uint8Array): Promise<void> {
    const acked = new Promise<void>((resolve) => this.owed.push(resolve));
    this.stream().publish(ROOM, [payload], [`b${this.published++}`]);
    this.lastAck = acked;
    return acked;
  }

  /** The ack of the newest publish: acks come in order, so it settles after all others. */
  private lastAck: Promise<void> = Promise.resolve();

  async publishFlatOut(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) await this.publish(make(next++));
    };
    await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
  }

  publishOne(payload: Uint8Array): void {
    void this.publish(payload);
  }

  async settlePublishes(): Promise<void> {
    await this.lastAck;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const stream of this.streams) stream.close();
    await this.publisher?.end().catch(() => undefined);
    for (const connection of this.connections) connection.close();
  }
}

// ---- NATS

class NatsDriver implements Driver {
  readonly name = "NATS";
  readonly errors: string[] = [];
  publishErrors = 0;
  private readonly subs: NatsConnection[] = [];
  private closing = false;

  private constructor(
    private readonly publisher: NatsConnection,
    readonly serverPid: number | undefined,
    readonly serverVersion: string,
  ) {}

  static async open(): Promise<NatsDriver> {
    const publisher = await natsConnect({ servers: P.natsUrl, reconnect: false, timeout: 3000, name: "bench-pub" });
    const port = Number(P.natsUrl.split(":").pop()) || 4222;
    return new NatsDriver(publisher, findPid("nats-server", port), `nats-server ${publisher.info?.version ?? "?"}`);
  }

  async connectSubscribers(n: number, tracker: Tracker): Promise<void> {
    for (let sub = 0; sub < n; sub++) {
      const nc = await natsConnect({ servers: P.natsUrl, reconnect: false, timeout: 3000, name: `bench-sub-${sub}` });
      this.subs.push(nc);
      nc.subscribe(SUBJECT, {
        callback: (error, msg) => {
          if (error) tracker.fail(sub, describe(error));
          else tracker.deliver(sub, msg.data, performance.now());
        },
      });
      void nc.closed().then((error) => {
        if (this.closing) return;
        const reason = `connection closed${error ? `: ${describe(error)}` : ""}`;
        tracker.fail(sub, reason);
        if (this.errors.length < 20) this.errors.push(`subscriber ${sub}: ${reason}`);
      });
    }
    // A flush round-trip on each connection: the server has processed its SUB.
    await Promise.all(this.subs.map((nc) => nc.flush()));
  }

  async publishFlatOut(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    try {
      for (let k = 0; k < count; k++) {
        this.publisher.publish(SUBJECT, make(k));
        if ((k + 1) % window === 0) await this.publisher.flush();
      }
      await this.publisher.flush();
    } catch (error) {
      this.publishErrors++;
      this.errors.push(`publish: ${describe(error)}`);
    }
  }

  publishOne(payload: Uint8Array): void {
    try {
      this.publisher.publish(SUBJECT, payload);
    } catch (error) {
      this.publishErrors++;
      if (this.errors.length < 20) this.errors.push(`publish: ${describe(error)}`);
    }
  }

  async settlePublishes(): Promise<void> {
    await this.publisher.flush().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.race([Promise.allSettled([this.publisher, ...this.subs].map((nc) => nc.close())), sleep(5000)]);
  }
}

// ---- Redis

function redisConnection(name: string): Redis {
  return new Redis({
    host: "127.0.0.1",
    port: P.redisPort,
    lazyConnect: true,
    connectionName: name,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    connectTimeout: 3000,
  });
}

class RedisDriver implements Driver {
  readonly name = "Redis";
  readonly errors: string[] = [];
  publishErrors = 0;
  private readonly subs: Redis[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private closing = false;

  private constructor(
    private readonly publisher: Redis,
    readonly serverPid: number | undefined,
    readonly serverVersion: string,
  ) {}

  static async open(): Promise<RedisDriver> {
    const publisher = redisConnection("bench-pub");
    publisher.on("error", () => {});
    try {
      await publisher.connect();
      const info = await publisher.info("server");
      const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
      const pid = Number(/process_id:(\d+)/.exec(info)?.[1]) || findPid("redis-server", P.redisPort);
      return new RedisDriver(publisher, pid, `redis-server ${version}`);
    } catch (error) {
      publisher.disconnect();
      throw error;
    }
  }

  async connectSubscribers(n: number, tracker: Tracker): Promise<void> {
    for (let sub = 0; sub < n; sub++) {
      const redis = redisConnection(`bench-sub-${sub}`);
      this.subs.push(redis);
      redis.on("error", (error: unknown) => {
        if (!this.closing && this.errors.length < 20) this.errors.push(`subscriber ${sub}: ${describe(error)}`);
      });
      redis.on("close", () => {
        if (!this.closing) tracker.fail(sub, "connection closed");
      });
      redis.on("messageBuffer", (_channel: Buffer, message: Buffer) => tracker.deliver(sub, message, performance.now()));
      await redis.connect();
    }
    // The SUBSCRIBE reply means the server has registered the subscription.
    await Promise.all(this.subs.map((redis) => redis.subscribe(SUBJECT)));
  }

  async publishFlatOut(count: number, make: (k: number) => Uint8Array, window: number): Promise<void> {
    for (let k = 0; k < count; ) {
      const pipeline = this.publisher.pipeline();
      const end = Math.min(count, k + window);
      for (; k < end; k++) pipeline.publish(SUBJECT, Buffer.from(make(k).buffer));
      try {
        const results = await pipeline.exec();
        for (const [error] of results ?? []) {
          if (error) {
            this.publishErrors++;
            if (this.errors.length < 20) this.errors.push(`publish: ${describe(error)}`);
          }
        }
      } catch (error) {
        this.publishErrors++;
        this.errors.push(`publish: ${describe(error)}`);
        return;
      }
    }
  }

  publishOne(payload: Uint8Array): void {
    const p = this.publisher.publish(SUBJECT, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)).catch((error: unknown) => {
      this.publishErrors++;
      if (this.errors.length < 20) this.errors.push(`publish: ${describe(error)}`);
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async settlePublishes(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const redis of [this.publisher, ...this.subs]) redis.disconnect();
  }
}

// ---------------------------------------------------------------- one system

interface Result {
  system: string;
  /** Messages of the throughput phase. */
  messages: number;
  version: string;
  skipped?: string;
  deliveredPerSec?: number;
  publishPerSec?: number;
  p50?: number;
  p99?: number;
  max?: number;
  /** Latency phase: deliveries measured. */
  latencySamples?: number;
  achievedRate?: number;
  /** Server RSS before the subscribers connected. */
  rssStartMiB?: number;
  rssIdleMiB?: number;
  rssPeakMiB?: number;
  /** Broker CPU during the throughput phase, % of one core. */
  brokerCpuPct?: number;
  /** This process (load generator) during the throughput phase, % of one core. */
  clientCpuPct?: number;
  /**
   * CPU used during the throughput phase by everything except the server and
   * this process (other workloads on the machine), in cores.
   */
  otherCores?: number;
  /** The same three during the paced (latency) phase, until the last delivery. */
  brokerCpuPacedPct?: number;
  clientCpuPacedPct?: number;
  otherCoresPaced?: number;
  /** Latency p50 of the messages sent in each second of the paced phase. */
  p50BySecond?: number[];
  /** p50 over messages of the latency at the first / the last subscriber to get each. */
  p50First?: number;
  p50Last?: number;
  /** Broker event loop busy during the throughput phase, % (Node servers only). */
  brokerLoopPct?: number;
  /** This process's event loop busy during the throughput phase, %. */
  clientLoopPct?: number;
  throughputSeconds?: number;
  connectSeconds?: number;
  complete: boolean;
  missing: number;
  duplicates: number;
  seqViolations: number;
  indexViolations: number;
  sequenced: boolean;
  deadSubscribers: number;
  publishErrors: number;
  notes: string[];
  samples: Violation[];
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

async function runSystem(driver: Driver, messages: number, sequenced: boolean): Promise<Result> {
  const tracker = new Tracker(P.subscribers, messages, sequenced);
  const result: Result = {
    system: driver.name,
    messages,
    version: driver.serverVersion,
    complete: true,
    missing: 0,
    duplicates: 0,
    seqViolations: 0,
    indexViolations: 0,
    sequenced,
    deadSubscribers: 0,
    publishErrors: 0,
    notes: [],
    samples: [],
  };
  let peakRss = 0;
  const sampler = setInterval(() => {
    const rss = rssBytes(driver.serverPid);
    if (rss !== undefined && rss > peakRss) peakRss = rss;
  }, 50);
  try {
    const start = rssBytes(driver.serverPid);
    if (start !== undefined) result.rssStartMiB = start / 2 ** 20;
    const t0 = performance.now();
    await driver.connectSubscribers(P.subscribers, tracker);
    result.connectSeconds = (performance.now() - t0) / 1000;
    log(`${driver.name}: ${P.subscribers} subscribers connected in ${result.connectSeconds.toFixed(2)} s`);
    await sleep(300);
    const idle = rssBytes(driver.serverPid);
    if (idle !== undefined) result.rssIdleMiB = idle / 2 ** 20;

    let index = 0;
    const flatOut = async (phase: Phase, count: number) => {
      const base = index;
      index += count;
      await driver.publishFlatOut(count, (k) => makePayload(base + k, phase), P.window);
    };

    // -- warmup
    if (P.warmup > 0) {
      await flatOut(WARMUP, P.warmup);
      const ok = await tracker.waitPhase(WARMUP, PHASE_TIMEOUT_MS.warmup);
      log(`${driver.name}: warmup ${ok ? "done" : `INCOMPLETE (${tracker.missing(WARMUP)} deliveries missing)`}`);
      if (!ok) result.complete = false;
      await sleep(300);
    }

    // -- throughput
    {
      const loop0 = await driver.eventLoop?.();
      const selfLoop0 = performance.eventLoopUtilization();
      const cpu = cpuWindow(driver.serverPid);
      const start = performance.now();
      await flatOut(THROUGHPUT, messages);
      const published = performance.now();
      const ok = await tracker.waitPhase(THROUGHPUT, PHASE_TIMEOUT_MS.throughput);
      const end = ok ? tracker.phaseDoneAt[THROUGHPUT]! : performance.now();
      const wall = (end - start) / 1000;
      const used = cpu();
      result.clientLoopPct = performance.eventLoopUtilization(selfLoop0).utilization * 100;
      const loop1 = await driver.eventLoop?.();
      if (loop0 && loop1) {
        const active = loop1.active - loop0.active;
        const idle = loop1.idle - loop0.idle;
        if (active + idle > 0) result.brokerLoopPct = (active / (active + idle)) * 100;
      }
      result.publishPerSec = messages / ((published - start) / 1000);
      result.throughputSeconds = wall;
      if (ok) result.deliveredPerSec = (messages * P.subscribers) / wall;
      else {
        result.complete = false;
        result.notes.push(
          `throughput phase incomplete after ${wall.toFixed(1)} s: ${tracker.missing(THROUGHPUT)} of ${messages * P.subscribers} deliveries missing`,
        );
      }
      result.brokerCpuPct = used.server;
      result.clientCpuPct = used.client;
      result.otherCores = used.otherCores;
      log(
        `${driver.name}: throughput ${ok ? `${Math.round(result.deliveredPerSec!).toLocaleString("en-US")} delivered msg/s` : "INCOMPLETE"}, ` +
          `${Math.round(result.publishPerSec).toLocaleString("en-US")} publish msg/s, ${wall.toFixed(2)} s`,
      );
      await sleep(500);
    }

    // -- latency, paced
    {
      const count = LATENCY_MESSAGES;
      const base = index;
      index += count;
      const profileFile = P.pacedProfileDir ? path.resolve(P.pacedProfileDir, `${driver.name}-paced.cpuprofile`) : undefined;
      if (profileFile) {
        mkdirSync(path.dirname(profileFile), { recursive: true });
        await driver.profile?.("profile-start");
      }
      const cpu = cpuWindow(driver.serverPid);
      const start = performance.now();
      tracker.latencyStart = start;
      tracker.latencyBase = base;
      const deadline = start + PHASE_TIMEOUT_MS.latency;
      let sent = 0;
      while (sent < count && performance.now() < deadline) {
        const due = Math.min(count, Math.floor(((performance.now() - start) * P.rate) / 1000) + 1);
        while (sent < due) {
          driver.publishOne(makePayload(base + sent, LATENCY));
          sent++;
        }
        await sleep(1);
      }
      const sendSeconds = (performance.now() - start) / 1000;
      result.achievedRate = sent / sendSeconds;
      await driver.settlePublishes();
      const ok = await tracker.waitPhase(LATENCY, Math.max(5000, deadline - performance.now()));
      if (!ok) {
        result.complete = false;
        result.notes.push(`latency phase incomplete: ${tracker.missing(LATENCY)} of ${count * P.subscribers} deliveries missing`);
      }
      const used = cpu();
      if (profileFile) await driver.profile?.(`profile-stop ${profileFile}`);
      result.brokerCpuPacedPct = used.server;
      result.clientCpuPacedPct = used.client;
      result.otherCoresPaced = used.otherCores;
      result.p50BySecond = tracker.p50BySecond(P.seconds);
      const finite = (a: Float64Array) => Float64Array.from(a.filter((v) => Number.isFinite(v))).sort();
      result.p50First = percentile(finite(tracker.firstLatency), 50);
      result.p50Last = percentile(finite(tracker.lastLatency), 50);
      const sorted = tracker.latencies.slice(0, tracker.latencyCount).sort();
      result.latencySamples = sorted.length;
      result.p50 = percentile(sorted, 50);
      result.p99 = percentile(sorted, 99);
      result.max = sorted.length ? sorted[sorted.length - 1] : NaN;
      log(
        `${driver.name}: latency at ${result.achievedRate.toFixed(0)} msg/s: p50 ${result.p50.toFixed(2)} ms, ` +
          `p99 ${result.p99.toFixed(2)} ms, max ${result.max!.toFixed(2)} ms (${sorted.length} deliveries)`,
      );
    }
  } catch (error) {
    result.complete = false;
    result.notes.push(`run failed: ${describe(error)}`);
    log(`${driver.name}: run failed: ${describe(error)}`);
  } finally {
    clearInterval(sampler);
    const last = rssBytes(driver.serverPid);
    if (last !== undefined && last > peakRss) peakRss = last;
    if (peakRss > 0) result.rssPeakMiB = peakRss / 2 ** 20;
    for (const phase of [WARMUP, THROUGHPUT, LATENCY]) {
      result.missing += tracker.missing(phase);
      result.duplicates += tracker.duplicates(phase);
    }
    result.seqViolations = tracker.seqViolations;
    result.indexViolations = tracker.indexViolations;
    result.deadSubscribers = tracker.deadCount();
    result.publishErrors = driver.publishErrors;
    result.samples = tracker.samples;
    result.notes.push(...driver.errors.slice(0, 10));
    await driver.close().catch((error: unknown) => result.notes.push(`close: ${describe(error)}`));
  }
  return result;
}

// ---------------------------------------------------------------- output

const fmtInt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "—" : Math.round(v).toLocaleString("en-US"));
const fmtMs = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(2));
const fmtMiB = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(1));
const fmtPct = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "—" : v < 10 ? `${v.toFixed(1)}%` : `${Math.round(v)}%`;
const fmtRatio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? "—" : `${(a / b).toFixed(2)}×`;

function table(results: Result[]): string {
  const header =
    "| system | delivered msg/s | publish msg/s | p50 ms | p99 ms | max ms | broker RSS MiB (peak) | broker CPU flat out | broker CPU paced |";
  const rule = "|---|--:|--:|--:|--:|--:|--:|--:|--:|";
  const rows = results.map((r) =>
    r.skipped
      ? `| ${r.system} | skipped: ${r.skipped} | | | | | | | |`
      : `| ${r.system}${passed(r) ? "" : " ⚠"} | ${fmtInt(r.deliveredPerSec)} | ${fmtInt(r.publishPerSec)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | ${fmtMiB(r.rssPeakMiB)} | ${fmtPct(r.brokerCpuPct)} | ${fmtPct(r.brokerCpuPacedPct)} |`,
  );
  const ours = results.filter((r) => r.system.startsWith("seqcast") && !r.skipped);
  const ratio = (a: Result, b: Result) =>
    `| *${a.system} / ${b.system}* | ${fmtRatio(a.deliveredPerSec, b.deliveredPerSec)} | ${fmtRatio(a.publishPerSec, b.publishPerSec)} | ` +
    `${fmtRatio(a.p50, b.p50)} | ${fmtRatio(a.p99, b.p99)} | ${fmtRatio(a.max, b.max)} | ` +
    `${fmtRatio(a.rssPeakMiB, b.rssPeakMiB)} | ${fmtRatio(a.brokerCpuPct, b.brokerCpuPct)} | ${fmtRatio(a.brokerCpuPacedPct, b.brokerCpuPacedPct)} |`;
  for (const seqcast of ours)
    for (const peer of results.filter((r) => !r.system.startsWith("seqcast") && !r.skipped)) rows.push(ratio(seqcast, peer));
  const memory = ours.find((r) => r.system === "seqcast");
  const sqlite = ours.find((r) => r.system === "seqcast-sqlite");
  if (memory && sqlite) rows.push(ratio(sqlite, memory));
  return [header, rule, ...rows].join("\n");
}

function passed(r: Result): boolean {
  const violations = r.sequenced ? r.seqViolations : r.indexViolations;
  return r.complete && r.missing === 0 && r.duplicates === 0 && violations === 0 && r.deadSubscribers === 0 && r.publishErrors === 0;
}

function correctness(results: Result[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.skipped) continue;
    const total = (P.warmup + r.messages + LATENCY_MESSAGES) * P.subscribers;
    const check = r.sequenced
      ? "sequence check (every subscriber gets the broker sequences 1, 2, 3, … with no gap, duplicate or reordering)"
      : "order check (every subscriber gets the publisher's message indices 0, 1, 2, … with no gap, duplicate or reordering)";
    const violations = r.sequenced ? r.seqViolations : r.indexViolations;
    lines.push(
      `- **${r.system}**: ${passed(r) ? "OK" : "FAILED"} — ${check}: ${violations} violations; ` +
        `${total - r.missing} of ${total} deliveries received, ${r.missing} missing, ${r.duplicates} extra; ` +
        `${r.deadSubscribers} subscribers cut off; ${r.publishErrors} publish errors.` +
        (r.sequenced
          ? ` (Publisher-index inversions, i.e. concurrent Publish calls sequenced in another order than issued, which the contract allows: ${r.indexViolations / P.subscribers} messages.)`
          : ""),
    );
    for (const s of r.samples.slice(0, 10)) lines.push(`  - subscriber ${s.sub} (${s.phase}): expected ${s.expected}, got ${s.got}`);
    for (const n of r.notes.slice(0, 10)) lines.push(`  - ${n}`);
  }
  return lines;
}

function details(results: Result[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.skipped) continue;
    lines.push(
      `- **${r.system}** (${r.version}), N = ${r.messages}. ` +
        `Throughput phase ${r.throughputSeconds?.toFixed(1) ?? "—"} s: ` +
        `${r.brokerLoopPct !== undefined ? `broker event loop ${fmtPct(r.brokerLoopPct)} busy, ` : ""}` +
        `bench process event loop ${fmtPct(r.clientLoopPct)} busy and CPU ${fmtPct(r.clientCpuPct)}, other processes ${r.otherCores?.toFixed(2) ?? "—"} cores. ` +
        `Paced phase (${r.achievedRate?.toFixed(0) ?? "—"} msg/s achieved, ${r.latencySamples ?? 0} latency samples): ` +
        `bench process CPU ${fmtPct(r.clientCpuPacedPct)}, other processes ${r.otherCoresPaced?.toFixed(2) ?? "—"} cores; ` +
        `p50 by second ${r.p50BySecond?.map((v) => fmtMs(v)).join(" / ") ?? "—"} ms; ` +
        `p50 at each message's first / last subscriber ${fmtMs(r.p50First)} / ${fmtMs(r.p50Last)} ms. ` +
        `Server RSS: ${fmtMiB(r.rssStartMiB)} MiB before the subscribers connected, ${fmtMiB(r.rssIdleMiB)} MiB idle with ${P.subscribers}, ${fmtMiB(r.rssPeakMiB)} MiB peak.`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------- main

async function reachable(port: number, host = "127.0.0.1"): Promise<boolean> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function main(): Promise<number> {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${RUN_TIMEOUT_MS / 1000} s, giving up`);
    process.exit(3);
  }, RUN_TIMEOUT_MS);
  watchdog.unref();

  const cpus = os.cpus();
  const machine = {
    cpu: `${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    nats: binaryVersion("nats-server"),
    overrides: Object.keys(process.env).filter((k) => k.startsWith("SEQCAST_")),
    loadBefore: os.loadavg().map((l) => l.toFixed(2)).join(" "),
    redis: binaryVersion("redis-server"),
  };
  log(`seqcast fan-out bench: ${P.subscribers} subscribers, ${P.messageBytes}-byte messages, ${P.messages.seqcast}/${P.messages.nats}/${P.messages.redis} (seqcast/NATS/Redis) flat out (window ${P.window}), ${P.rate} msg/s × ${P.seconds} s paced`);
  log(`machine: ${machine.cpu}, ${machine.memory}, Node ${machine.node}`);

  const results: Result[] = [];
  for (const system of P.systems) {
    if (system === "seqcast" || system === "seqcast-sqlite") {
      const engine = system === "seqcast" ? "memory" : "sqlite";
      let broker: BrokerChild | undefined;
      try {
        broker = await startBrokerChild(engine);
        log(`${system}: broker child pid ${broker.pid} on port ${broker.port} (${engine} engine)`);
        results.push(await runSystem(new SeqcastDriver(broker, system, engine), P.messages.seqcast, true));
      } catch (error) {
        log(`${system}: SKIPPED — ${describe(error)}`);
        results.push(skipped(system, `broker did not start (${describe(error).split("\n")[0]})`));
      } finally {
        if (broker) await stopBrokerChild(broker);
      }
    } else if (system === "nats") {
      const port = Number(P.natsUrl.split(":").pop()) || 4222;
      let driver: NatsDriver | undefined;
      try {
        if (!(await reachable(port))) throw new Error(`nothing listens on ${P.natsUrl}`);
        driver = await NatsDriver.open();
      } catch (error) {
        log(`NATS: SKIPPED — NATS server not available at ${P.natsUrl}: ${describe(error)}`);
        results.push(skipped("NATS", `not available at ${P.natsUrl}`));
        continue;
      }
      results.push(await runSystem(driver, P.messages.nats, false));
    } else if (system === "redis") {
      let driver: RedisDriver | undefined;
      try {
        if (!(await reachable(P.redisPort))) throw new Error(`nothing listens on 127.0.0.1:${P.redisPort}`);
        driver = await RedisDriver.open();
      } catch (error) {
        log(`Redis: SKIPPED — Redis not available at 127.0.0.1:${P.redisPort}: ${describe(error)}`);
        results.push(skipped("Redis", `not available at 127.0.0.1:${P.redisPort}`));
        continue;
      }
      results.push(await runSystem(driver, P.messages.redis, false));
    } else {
      console.error(`bench: unknown system "${system}" in BENCH_SYSTEMS (use seqcast, seqcast-sqlite, nats, redis)`);
    }
    await sleep(500);
  }

  const tableText = table(results);
  const checks = correctness(results);
  const more = details(results);
  console.log(`\n${tableText}\n`);
  console.log(
    "ratios: seqcast value / peer value (for msg/s higher is better, for ms, MiB and CPU lower is better)\n",
  );
  console.log(checks.join("\n"));
  console.log(`\n${more.join("\n")}`);

  if (P.out !== "-") {
    const md = [
      "# seqcast fan-out benchmark: seqcast vs NATS core vs Redis pub/sub",
      "",
      `Generated by \`node --import tsx bench/run.ts\` (\`npm run bench\`) on ${new Date().toISOString()}.`,
      "",
      "## Machine",
      "",
      `- CPU: ${machine.cpu}`,
      `- Memory: ${machine.memory}`,
      `- OS: ${machine.os}`,
      `- Node: ${machine.node}`,
      `- Load average (1/5/15 min) before the run: ${machine.loadBefore}; after: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
      `- \`nats-server --version\`: ${machine.nats}${results.find((r) => r.system === "NATS" && !r.skipped) ? ` (running: ${results.find((r) => r.system === "NATS")!.version})` : ""}`,
      `- \`redis-server --version\`: ${machine.redis}${results.find((r) => r.system === "Redis" && !r.skipped) ? ` (running: ${results.find((r) => r.system === "Redis")!.version})` : ""}`,
      `- seqcast: ${results.find((r) => r.system === "seqcast")?.version ?? "—"}, broker in its own Node process (bench/broker-child.ts), ` +
        (machine.overrides.length ? `broker config overridden by ${machine.overrides.join(", ")}` : "default broker config"),
      "",
      "## Scenario",
      "",
      `- One room / subject / channel, **${P.subscribers} subscribers, each on its own connection** ` +
        `(seqcast: one Subscribe stream per HTTP/2 connection; NATS: one connection each; Redis: one SUBSCRIBE connection each), one publisher connection.`,
      `- Messages of ${P.messageBytes} bytes (seqcast: \`payload\`, empty \`content\`; the delivered seqcast message also carries id, room, epoch, sequence, sender and time).`,
      `- Warmup: ${P.warmup} messages flat out, not measured.`,
      `- Throughput: N messages flat out (N = ${P.messages.seqcast} for seqcast, ${P.messages.nats} for NATS, ${P.messages.redis} for Redis, ` +
        "so that each phase lasts long enough to measure), at most " +
        `${P.window} publishes unacknowledged ` +
        `(seqcast: ${P.window} concurrent unary Publish calls; NATS: publish, flush every ${P.window}; Redis: pipelines of ${P.window} PUBLISH). ` +
        `**delivered msg/s** = N × ${P.subscribers} / time from the first publish until every subscriber has all N; ` +
        "**publish msg/s** = N / time until the last publish was acknowledged (NATS: flushed).",
      `- Latency: ${P.rate} msg/s for ${P.seconds} s (${LATENCY_MESSAGES} messages, ${LATENCY_MESSAGES * P.subscribers} deliveries); ` +
        `publish→deliver latency of every delivery at every subscriber (send time from \`performance.now()\` in the payload, receive time when the client library hands the message over).`,
      `- broker RSS: peak VmRSS of the server process during the run (subscribers connected through the last phase). ` +
        "broker CPU: CPU time of the server process as % of one core, during the throughput phase (flat out) and during the latency phase (paced, " +
        "the same work for every system, so this compares CPU cost per delivery). CPU of the bench process and of other processes is under Details.",
      "",
      "## Results",
      "",
      tableText,
      "",
      "Ratios are seqcast's value divided by the peer's: for msg/s higher is better, for ms, MiB and CPU lower is better.",
      "⚠ marks a system that lost, duplicated or reordered messages or did not finish a phase (see below).",
      "",
      "## Correctness checks",
      "",
      ...checks,
      "",
      "## Details",
      "",
      ...more,
      "",
      "## Caveats",
      "",
      `- This is a shared ${cpus.length}-core machine: numbers are noisy from run to run (other workloads come and go; Details gives the CPU ` +
        "other processes used during each phase), compare within one run rather than across runs.",
      `- The load generator (the publisher and all ${P.subscribers} subscriber clients, in one Node process) shares the machine with the server under test, ` +
        "and decoding every delivery in JavaScript is a large part of the work. Flat-out delivered msg/s is therefore partly a measure of the client libraries " +
        "(@connectrpc/connect-node + protobuf-es, nats.js, ioredis) and of the CPU left over for the server. " +
        "When the bench process's event loop is ~90-100% busy (see Details; typical for NATS and Redis here), the number is a lower bound set by the load generator, not by the server.",
      "- seqcast's flat-out numbers depend on BENCH_WINDOW more than the peers' do: every Publish is a unary RPC whose round trip includes the fan-out " +
        "work queued before it, and bigger bursts batch into fewer stream writes (NATS and Redis are limited by the bench process instead).",
      `- The paced rate (${P.rate} msg/s × ${P.subscribers} subscribers = ${P.rate * P.subscribers} deliveries/s) must stay well below what the seqcast ` +
        "broker and the bench process can handle, or the latency phase measures queueing: at 500 msg/s × 100 subscribers both are close to saturation on this machine. " +
        "At a paced rate there are no bursts to batch, so seqcast pays its per-stream, per-message cost in full (compare its broker CPU flat out and paced).",
      "- Latency includes the subscriber side: the bench process decodes all subscribers' deliveries on one event loop, so a message's last subscriber waits " +
        "for the others; Details gives the p50 at each message's first and last subscriber.",
      "- nats-server and redis-server are native and multi-threaded where it helps (nats-server); the seqcast broker is one Node event loop.",
      "- NATS core and Redis pub/sub are at-most-once with no ordering metadata or history; seqcast sequences and retains every message and checks each Publish, so it does more work per message.",
      "",
    ].join("\n");
    writeFileSync(P.out, md);
    log(`wrote ${path.relative(process.cwd(), P.out) || P.out}`);
  }

  const failed = results.some((r) => !r.skipped && !passed(r));
  return failed ? 1 : 0;
}

function skipped(system: string, reason: string): Result {
  return {
    system,
    messages: 0,
    version: "—",
    skipped: reason,
    complete: false,
    missing: 0,
    duplicates: 0,
    seqViolations: 0,
    indexViolations: 0,
    sequenced: false,
    deadSubscribers: 0,
    publishErrors: 0,
    notes: [],
    samples: [],
  };
}

const code = await main().catch((error: unknown) => {
  console.error(error);
  return 2;
});
process.exitCode = code;
// Everything is closed by now; if some library still holds a handle, say so and exit anyway.
setTimeout(() => {
  console.error("bench: handles still open 5 s after the run; exiting");
  process.exit(code);
}, 5000).unref();
