/**
 * The bench's parameters, from the environment (every knob is documented at
 * the top of bench/run.ts). A bad value stops the run before anything starts.
 */
import { createHmac } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(BENCH_DIR, "..");

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) fail(`${name}="${raw}" must be an integer >= ${min}`);
  return value;
}

function envList<T extends string>(name: string, all: readonly T[], fallback: readonly T[] = all): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "" || raw.trim() === "all") return [...fallback];
  const items = raw.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const item of items) if (!all.includes(item as T)) fail(`${name}: unknown "${item}" (use ${all.join(", ")})`);
  return items as T[];
}

function envChoice<T extends string>(name: string, all: readonly T[], fallback: T): T {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!all.includes(raw as T)) fail(`${name}="${raw}" must be one of ${all.join(", ")}`);
  return raw as T;
}

function envIntList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const values = raw.split(",").map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isSafeInteger(v) || v < 0)) fail(`${name}="${raw}" must be a comma-separated list of integers >= 0`);
  return values;
}

export const SCENARIOS = ["fanout", "ingest", "idle", "rooms"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
export const SYSTEMS = ["seqcast", "seqcast-tls", "seqcast-causal", "seqcast-sqlite", "seqcast-redis", "seqcast-redis-2w", "nats", "jetstream", "redis", "floor"] as const;
export type SystemName = (typeof SYSTEMS)[number];

const window = envInt("BENCH_WINDOW", 128);
const ingestWindow = envInt("BENCH_INGEST_WINDOW", 1024);

export const P = {
  scenarios: envList("BENCH_SCENARIOS", SCENARIOS),
  systems: envList("BENCH_SYSTEMS", SYSTEMS),
  out: process.env.BENCH_OUT ?? path.join(BENCH_DIR, "RESULTS.md"),
  natsUrl: process.env.NATS_URL ?? "127.0.0.1:4222",
  redisPort: envInt("REDIS_PORT", 6379),
  messageBytes: 256,

  // fan-out
  subscribers: envInt("BENCH_SUBSCRIBERS", 100),
  warmup: envInt("BENCH_WARMUP", 2_000, 0),
  messages: {
    seqcast: envInt("BENCH_MESSAGES_SEQCAST", envInt("BENCH_MESSAGES", 20_000)),
    nats: envInt("BENCH_MESSAGES_NATS", envInt("BENCH_MESSAGES", 40_000)),
    redis: envInt("BENCH_MESSAGES_REDIS", envInt("BENCH_MESSAGES", 40_000)),
  },
  window,
  rate: envInt("BENCH_RATE", 200),
  rateHigh: envInt("BENCH_RATE_HIGH", 1_000, 0),
  seconds: envInt("BENCH_SECONDS", 5),
  seqcastPublish: envChoice("BENCH_SEQCAST_PUBLISH", ["stream", "unary"] as const, "stream"),
  /** Dependencies per publish of the seqcast-causal fan-out row (bench/lib/causal.ts). */
  causalDependencies: envInt("BENCH_CAUSAL_DEPS", 8, 0),
  /** One of them moves on every this many publishes (0: never; bench/lib/causal.ts). */
  causalMoveEvery: envInt("BENCH_CAUSAL_MOVE", 10, 0),
  /**
   * Paired flat-out rounds (causal metadata off and on, on one broker) behind
   * the seqcast-causal throughput target. 30: one round's ratio spreads by
   * ±17% (standard deviation) on this 2-core host, so the median of 12 moved
   * by ~±5%, the very margin it judges (a run with no metadata on either side
   * of its pairs came out at 0.94×).
   */
  causalRounds: envInt("BENCH_CAUSAL_ROUNDS", 30, 0),
  /** Paired paced rounds behind the seqcast-causal CPU target (a paced round's ratio spreads far less). */
  causalPacedRounds: envInt("BENCH_CAUSAL_PACED_ROUNDS", 12, 0),
  profile: envInt("BENCH_PROFILE", 1, 0) > 0,
  profileDir: process.env.BENCH_PROFILE_PACED,
  cpuProfDir: process.env.BENCH_CPU_PROF,

  // ingest
  /**
   * Rows without subscribers warm up and measure longer than they did
   * (10,000 then 50,000): per-request code (a PublishStream request carries
   * 64 messages) had run ~160 times at the end of the warmup, before V8
   * optimised it, and the fastest rows' measured window (~0.3 s) was
   * shorter than the collector's pauses. seqcast's stream row spread
   * 95-145k/s over runs at messages 10,000-60,000, 190-250k/s after
   * 100,000; JetStream's, from the same code in the server, 70-90k/s and
   * 85-110k/s.
   */
  ingestMessages: envInt("BENCH_INGEST_MESSAGES", 200_000),
  ingestMessagesWithSubscribers: envInt("BENCH_INGEST_MESSAGES_SUBS", 5_000),
  ingestWarmup: envInt("BENCH_INGEST_WARMUP", 100_000, 0),
  /** With subscribers every warmup message is also 100 deliveries: the warmup stays at 10,000. */
  ingestWarmupWithSubscribers: envInt("BENCH_INGEST_WARMUP_SUBS", 10_000, 0),
  ingestSubscribers: envIntList("BENCH_INGEST_SUBSCRIBERS", [0, 100]),
  ingestWindow,
  ingestBatch: envInt("BENCH_INGEST_BATCH", 64),
  unaryInFlight: envInt("BENCH_UNARY_INFLIGHT", 128),
  jsSubscribers: envChoice("BENCH_JS_SUBSCRIBERS", ["core", "ordered"] as const, "core"),

  // idle sessions
  idleSessions: envInt("BENCH_IDLE_SESSIONS", 10_000),
  idleConnections: envInt("BENCH_IDLE_CONNECTIONS", 100),
  idleRooms: envInt("BENCH_IDLE_ROOMS", 100),
  idleSeconds: envInt("BENCH_IDLE_SECONDS", 60),
  idleSliceSeconds: envInt("BENCH_IDLE_SLICE", 15),

  // rooms
  rooms: envInt("BENCH_ROOMS", 10_000),
  roomsMessages: envInt("BENCH_ROOMS_MESSAGES", 40_000),
  /** Paired rounds (a phase to 1 room, a phase over all rooms) per engine in the filling and scattered stages. */
  roomsRounds: envInt("BENCH_ROOMS_ROUNDS", 6),
  /**
   * Paired rounds of the full stage, whose median ratio is the target. Two
   * phases a second apart moved by ±25% here (3.4-6.0 µs per publish to one
   * room in one run), so the median of 6 pairs still landed anywhere from
   * 0.93× to 1.33× over runs of the same code; 20 pairs cost ~30 s more.
   */
  roomsFullRounds: envInt("BENCH_ROOMS_FULL_ROUNDS", 20),
  roomsWindow: envInt("BENCH_ROOMS_WINDOW", ingestWindow),
  roomsBatch: envInt("BENCH_ROOMS_BATCH", envInt("BENCH_INGEST_BATCH", 64)),
};

export const has = (system: SystemName) => P.systems.includes(system);
export const runs = (scenario: ScenarioName) => P.scenarios.includes(scenario);

/** The broker child verifies tokens signed with this secret (bench/broker-child.ts reads BENCH_JWT_SECRET). */
export const BENCH_JWT_SECRET = "seqcast-bench-secret";

/** A day-long HS256 token for the bench's seqcast clients. */
export function benchToken(user: string): string {
  const b64 = (v: string) => Buffer.from(v).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify({ sub: user, iat: now, exp: now + 86_400 }))}`;
  return `${body}.${createHmac("sha256", BENCH_JWT_SECRET).update(body).digest("base64url")}`;
}

export const natsPort = () => Number(P.natsUrl.split(":").pop()) || 4222;
