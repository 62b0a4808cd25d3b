/** Limits and timings of one broker; every field has a documented default. */
export interface BrokerConfig {
  /** Messages kept per room (SEQCAST_HISTORY_SIZE). */
  historySize: number;
  /** Maximum age of a kept message in ms, 0 = unlimited (SEQCAST_HISTORY_TTL). */
  historyTtlMs: number;
  /** Maximum size of content + payload + attributes (SEQCAST_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
  /** Rooms one session may hold at once (SEQCAST_MAX_ROOMS_PER_SESSION). */
  maxRoomsPerSession: number;
  /** Idle time after which a stream gets a heartbeat (SEQCAST_HEARTBEAT_INTERVAL). */
  heartbeatIntervalMs: number;
  /**
   * Events queued for one session before it counts as a slow consumer and its
   * stream is ended with RESOURCE_EXHAUSTED (SEQCAST_SESSION_QUEUE_LIMIT).
   */
  sessionQueueLimit: number;
  /** How long a publish's clientMessageId is remembered for deduplication (SEQCAST_DEDUPE_WINDOW). */
  dedupeWindowMs: number;
  /**
   * A message delivered to a durable subscriber and not acknowledged within
   * this time is delivered again on its stream (SEQCAST_ACK_DEADLINE).
   */
  ackDeadlineMs: number;
  /** Publishes per second one user may sustain, 0 = unlimited (SEQCAST_PUBLISH_RATE). */
  publishRate: number;
  /** Publishes one user may burst above the rate (SEQCAST_PUBLISH_BURST). */
  publishBurst: number;
  /**
   * A session whose connection ended without a goodbye keeps its presence
   * this long, so a quick reconnect does not flap leave/join (SEQCAST_PRESENCE_GRACE).
   */
  presenceGraceMs: number;
  /** HTTP/2 PING interval for detecting dead connections (SEQCAST_PING_INTERVAL). */
  pingIntervalMs: number;
  /** A connection silent this long (no PING answered) is closed (SEQCAST_DEAD_TIMEOUT). */
  deadTimeoutMs: number;
}

export const defaultBrokerConfig: BrokerConfig = {
  historySize: 100,
  historyTtlMs: 24 * 60 * 60 * 1000,
  maxMessageBytes: 64 * 1024,
  maxRoomsPerSession: 100,
  heartbeatIntervalMs: 15_000,
  sessionQueueLimit: 10_000,
  dedupeWindowMs: 2 * 60 * 1000,
  ackDeadlineMs: 30_000,
  publishRate: 1000,
  publishBurst: 2000,
  presenceGraceMs: 5_000,
  pingIntervalMs: 10_000,
  deadTimeoutMs: 25_000,
};

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `15m`, `24h`, `7d` or a bare number of seconds; `0` = off. */
export function parseDuration(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) throw new Error(`${what}: "${text}" is not a duration (use e.g. 500ms, 30s, 15m, 24h, 7d)`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? "s"]!);
}

/** Parses `65536`, `64KiB`, `1MiB` (also kb/mb as powers of 1024). */
export function parseBytes(text: string, what: string): number {
  const match = /^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib)?\s*$/i.exec(text);
  if (!match) throw new Error(`${what}: "${text}" is not a size (use e.g. 65536, 64KiB, 1MiB)`);
  const unit = (match[2] ?? "b").toLowerCase();
  const factor = unit.startsWith("k") ? 1024 : unit.startsWith("m") ? 1024 * 1024 : 1;
  return Number(match[1]) * factor;
}

export function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${what}: "${text}" is not a positive integer`);
  return value;
}

export function parseNonNegativeInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${what}: "${text}" is not a whole number >= 0`);
  return value;
}

/** Reads SEQCAST_* variables over the defaults; throws a readable error on a bad value. */
export function brokerConfigFromEnv(env: NodeJS.ProcessEnv, base = defaultBrokerConfig): BrokerConfig {
  const config = { ...base };
  if (env.SEQCAST_HISTORY_SIZE) config.historySize = parsePositiveInt(env.SEQCAST_HISTORY_SIZE, "SEQCAST_HISTORY_SIZE");
  if (env.SEQCAST_HISTORY_TTL) config.historyTtlMs = parseDuration(env.SEQCAST_HISTORY_TTL, "SEQCAST_HISTORY_TTL");
  if (env.SEQCAST_MAX_MESSAGE_BYTES)
    config.maxMessageBytes = parseBytes(env.SEQCAST_MAX_MESSAGE_BYTES, "SEQCAST_MAX_MESSAGE_BYTES");
  if (env.SEQCAST_MAX_ROOMS_PER_SESSION)
    config.maxRoomsPerSession = parsePositiveInt(env.SEQCAST_MAX_ROOMS_PER_SESSION, "SEQCAST_MAX_ROOMS_PER_SESSION");
  if (env.SEQCAST_HEARTBEAT_INTERVAL)
    config.heartbeatIntervalMs = parseDuration(env.SEQCAST_HEARTBEAT_INTERVAL, "SEQCAST_HEARTBEAT_INTERVAL");
  if (env.SEQCAST_SESSION_QUEUE_LIMIT)
    config.sessionQueueLimit = parsePositiveInt(env.SEQCAST_SESSION_QUEUE_LIMIT, "SEQCAST_SESSION_QUEUE_LIMIT");
  if (env.SEQCAST_DEDUPE_WINDOW) config.dedupeWindowMs = parseDuration(env.SEQCAST_DEDUPE_WINDOW, "SEQCAST_DEDUPE_WINDOW");
  if (env.SEQCAST_PUBLISH_RATE) config.publishRate = parseNonNegativeInt(env.SEQCAST_PUBLISH_RATE, "SEQCAST_PUBLISH_RATE");
  if (env.SEQCAST_PUBLISH_BURST) config.publishBurst = parsePositiveInt(env.SEQCAST_PUBLISH_BURST, "SEQCAST_PUBLISH_BURST");
  if (env.SEQCAST_PRESENCE_GRACE) config.presenceGraceMs = parseDuration(env.SEQCAST_PRESENCE_GRACE, "SEQCAST_PRESENCE_GRACE");
  if (env.SEQCAST_PING_INTERVAL) config.pingIntervalMs = parseDuration(env.SEQCAST_PING_INTERVAL, "SEQCAST_PING_INTERVAL");
  if (env.SEQCAST_DEAD_TIMEOUT) config.deadTimeoutMs = parseDuration(env.SEQCAST_DEAD_TIMEOUT, "SEQCAST_DEAD_TIMEOUT");
  if (env.SEQCAST_ACK_DEADLINE) config.ackDeadlineMs = parseDuration(env.SEQCAST_ACK_DEADLINE, "SEQCAST_ACK_DEADLINE");
  return config;
}
