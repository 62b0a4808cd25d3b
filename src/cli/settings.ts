import { defaultBrokerConfig, type BrokerConfig } from "../broker/config.js";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/logger.js";
import { AUTO, defaultConnectionLimits, type ConnectionLimits } from "../server/connection-limits.js";
import {
  formatBytes,
  formatDuration,
  parseBytes,
  parseChoice,
  parseDuration,
  parseNonNegativeInt,
  parsePort,
  parsePositiveInt,
  parseSwitch,
} from "./parse.js";

function parsePositiveDuration(text: string, what: string): number {
  const ms = parseDuration(text, what);
  if (ms <= 0) throw new Error(`${what}: "${text}" must be longer than 0`);
  return ms;
}

function parsePositiveBytes(text: string, what: string): number {
  const bytes = parseBytes(text, what);
  if (bytes <= 0) throw new Error(`${what}: "${text}" must be more than 0 bytes`);
  return bytes;
}
/** `auto`, or what `parse` accepts. */
const orAuto =
  (parse: (text: string, what: string) => number) =>
  (text: string, what: string): number =>
    text === "auto" ? AUTO : parse(text, what);

function parseRedisUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${what}: "${text}" is not a URL (use e.g. redis://127.0.0.1:6379)`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:")
    throw new Error(`${what}: "${text}" is not a redis:// or rediss:// URL (use e.g. redis://127.0.0.1:6379)`);
  return text;
}

/**
 * Every setting of `seqcast serve`, declared once: flag, environment
 * variable, default, parser and help. Parsing (flags win over the
 * environment), `seqcast serve --help` and the README's configuration table
 * (`npm run docs:settings`, checked by test/unit/settings.test.ts) all come
 * from this table.
 */

export const ENGINES = ["sqlite", "memory", "redis"] as const;
export type EngineName = (typeof ENGINES)[number];

/** What `seqcast serve` runs with. */
export interface ServeSettings {
  port: number;
  host: string;
  /** PEM certificate (chain) file to serve TLS with; "" = plaintext. */
  tlsCert: string;
  /** Its PEM private key file; "" = plaintext. */
  tlsKey: string;
  engine: EngineName;
  dataDir: string;
  sync: "normal" | "full";
  /** PEM public key file (RS256/ES256); "" = none. */
  jwtPublicKey: string;
  /** JWKS file (RS256/ES256); "" = none. */
  jwtJwks: string;
  redisUrl: string;
  redisPrefix: string;
  redisPresenceTtlMs: number;
  /** Node processes sharing the port; 0 = one per core. */
  workers: number;
  /** The chat page may ask the broker for a token for any user name (development only). */
  devLogin: boolean;
  /** GET /metrics (Prometheus) on the broker's port. */
  metrics: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
  broker: BrokerConfig;
  /** Connection limits and timeouts (`auto` = AUTO, resolved by the server). */
  connections: ConnectionLimits;
}

interface Setting<T> {
  /** The flag without dashes: `--history-size`. */
  flag: string;
  env: string;
  /** Placeholder of the value in help: N, D (duration), B (bytes), …; "" for a switch (a flag without a value). */
  value: string;
  /** The default as the user would write it. */
  defaultText: string;
  help: string;
  parse: (text: string, what: string) => T;
  set: (settings: ServeSettings, value: T) => void;
}

const setting = <T>(s: Setting<T>): Setting<unknown> => s as Setting<unknown>;
const d = defaultBrokerConfig;
type NumberKey = { [K in keyof BrokerConfig]: BrokerConfig[K] extends number ? K : never }[keyof BrokerConfig];
const broker =
  (key: NumberKey) =>
  (s: ServeSettings, value: number): void => {
    s.broker[key] = value;
  };

export const SETTINGS: readonly Setting<unknown>[] = [
  setting({ flag: "port", env: "PORT", value: "N", defaultText: "8080", help: "listening port (0 = any free port)", parse: parsePort, set: (s, v) => (s.port = v) }),
  setting({ flag: "host", env: "SEQCAST_HOST", value: "H", defaultText: "127.0.0.1", help: "listening address (0.0.0.0 to accept remote clients)", parse: (t) => t, set: (s, v) => (s.host = v) }),
  setting({ flag: "tls-cert", env: "SEQCAST_TLS_CERT", value: "FILE", defaultText: "", help: "serve TLS with this PEM certificate, intermediates after it (HTTP/2 by ALPN, HTTP/1.1 too); SIGHUP reads it and --tls-key again", parse: (t) => t, set: (s, v) => (s.tlsCert = v) }),
  setting({ flag: "tls-key", env: "SEQCAST_TLS_KEY", value: "FILE", defaultText: "", help: "the PEM private key of --tls-cert (unencrypted)", parse: (t) => t, set: (s, v) => (s.tlsKey = v) }),
  setting<EngineName>({
    flag: "engine",
    env: "SEQCAST_ENGINE",
    value: "NAME",
    defaultText: "sqlite",
    help: "sqlite (durable, embedded, one node), memory (tests, throwaway runs) or redis (several nodes sharing one Redis)",
    parse: parseChoice(ENGINES),
    set: (s, v) => (s.engine = v),
  }),
  setting({ flag: "data-dir", env: "SEQCAST_DATA_DIR", value: "DIR", defaultText: "./data", help: "where the sqlite engine keeps seqcast.db (and the token secret)", parse: (t) => t, set: (s, v) => (s.dataDir = v) }),
  setting<"normal" | "full">({
    flag: "sync",
    env: "SEQCAST_SQLITE_SYNC",
    value: "MODE",
    defaultText: "normal",
    help: "sqlite durability: normal (a process crash loses nothing acknowledged) or full (survives power loss too; slower)",
    parse: parseChoice(["normal", "full"] as const),
    set: (s, v) => (s.sync = v),
  }),
  setting({ flag: "redis-url", env: "SEQCAST_REDIS_URL", value: "URL", defaultText: "redis://127.0.0.1:6379", help: "Redis of the redis engine: redis://[:password@]host:port[/db] (put a password in the environment, not on the command line)", parse: parseRedisUrl, set: (s, v) => (s.redisUrl = v) }),
  setting({ flag: "redis-prefix", env: "SEQCAST_REDIS_PREFIX", value: "P", defaultText: "seqcast:", help: "prefix of the redis engine's keys and channels; every node of one deployment uses the same", parse: (t) => t, set: (s, v) => (s.redisPrefix = v) }),
  setting({ flag: "redis-presence-ttl", env: "SEQCAST_REDIS_PRESENCE_TTL", value: "D", defaultText: "15s", help: "redis engine: a node refreshes its sessions' presence every third of this; a dead node's sessions leave within it (plus 1s)", parse: parsePositiveDuration, set: (s, v) => (s.redisPresenceTtlMs = v) }),
  setting({ flag: "workers", env: "SEQCAST_WORKERS", value: "N", defaultText: "1", help: "broker processes sharing the port, to use every core (0 = one per core; more than 1 needs --engine redis)", parse: parseNonNegativeInt, set: (s, v) => (s.workers = v) }),
  setting({ flag: "history-size", env: "SEQCAST_HISTORY_SIZE", value: "N", defaultText: String(d.historySize), help: "messages kept per room", parse: parsePositiveInt, set: broker("historySize") }),
  setting({ flag: "history-ttl", env: "SEQCAST_HISTORY_TTL", value: "D", defaultText: formatDuration(d.historyTtlMs), help: "max age of a kept message (500ms, 30s, 15m, 24h, 7d; 0 = none)", parse: parseDuration, set: broker("historyTtlMs") }),
  setting({ flag: "max-message-bytes", env: "SEQCAST_MAX_MESSAGE_BYTES", value: "B", defaultText: formatBytes(d.maxMessageBytes), help: "max size of content + payload + attributes", parse: parseBytes, set: broker("maxMessageBytes") }),
  setting({ flag: "max-rooms", env: "SEQCAST_MAX_ROOMS_PER_SESSION", value: "N", defaultText: String(d.maxRoomsPerSession), help: "rooms one session may hold", parse: parsePositiveInt, set: broker("maxRoomsPerSession") }),
  setting({ flag: "heartbeat-interval", env: "SEQCAST_HEARTBEAT_INTERVAL", value: "D", defaultText: formatDuration(d.heartbeatIntervalMs), help: "heartbeat event on a stream idle this long", parse: parseDuration, set: broker("heartbeatIntervalMs") }),
  setting({ flag: "flush-interval", env: "SEQCAST_FLUSH_INTERVAL", value: "D", defaultText: formatDuration(d.flushIntervalMs), help: "after a flush to 32 or more streams, the next waits this long so a busy room's messages share one write per stream: less CPU, more latency (0 = every event-loop turn; at 1,000 msg/s to 100 streams, 4ms takes ~30% less CPU and adds ~5 ms to p99)", parse: parseDuration, set: broker("flushIntervalMs") }),
  setting({ flag: "session-queue", env: "SEQCAST_SESSION_QUEUE_LIMIT", value: "N", defaultText: String(d.sessionQueueLimit), help: "events queued for one subscriber before it is cut off as a slow consumer", parse: parsePositiveInt, set: broker("sessionQueueLimit") }),
  setting({ flag: "session-queue-bytes", env: "SEQCAST_SESSION_QUEUE_BYTES", value: "B", defaultText: formatBytes(d.sessionQueueBytes), help: "bytes queued for one subscriber before it is cut off as a slow consumer", parse: parseBytes, set: broker("sessionQueueBytes") }),
  setting({ flag: "queue-bytes-total", env: "SEQCAST_QUEUE_BYTES_TOTAL", value: "B", defaultText: formatBytes(d.queueBytesTotal), help: "bytes queued for all subscribers together; above it the subscribers holding the most are cut off (BROKER_OVERLOADED), publishes are never refused for it (0 = no limit)", parse: parseBytes, set: broker("queueBytesTotal") }),
  setting({ flag: "user-sessions-max", env: "SEQCAST_USER_SESSIONS_MAX", value: "N", defaultText: String(d.userSessionsMax), help: "live sessions (Subscribe streams) one user may hold; admins exempt (0 = no limit)", parse: parseNonNegativeInt, set: broker("userSessionsMax") }),
  setting({ flag: "user-rooms-per-second", env: "SEQCAST_USER_ROOMS_PER_SECOND", value: "N", defaultText: String(d.userRoomsPerSecond), help: "distinct rooms one user may read, join or publish to per second, bursting to twice that (at least --max-rooms); admins exempt (0 = no limit)", parse: parseNonNegativeInt, set: broker("userRoomsPerSecond") }),
  setting({ flag: "reader-stall", env: "SEQCAST_READER_STALL", value: "D", defaultText: formatDuration(d.readerStallMs), help: "publishers wait for a subscriber that fell behind while it reads; one that takes nothing for this long is no longer waited for (and is cut off once its queue is full)", parse: parseDuration, set: broker("readerStallMs") }),
  setting({ flag: "slow-consumer-grace", env: "SEQCAST_SLOW_CONSUMER_GRACE", value: "D", defaultText: formatDuration(d.slowConsumerGraceMs), help: "a cut-off slow consumer that has not read its final status within this time gets its stream reset", parse: parseDuration, set: broker("slowConsumerGraceMs") }),
  setting({ flag: "dedupe-window", env: "SEQCAST_DEDUPE_WINDOW", value: "D", defaultText: formatDuration(d.dedupeWindowMs), help: "how long a client_message_id makes retries of a publish no-ops", parse: parseDuration, set: broker("dedupeWindowMs") }),
  setting({ flag: "ack-deadline", env: "SEQCAST_ACK_DEADLINE", value: "D", defaultText: formatDuration(d.ackDeadlineMs), help: "a durable subscriber's unacknowledged message is sent again after this", parse: parseDuration, set: broker("ackDeadlineMs") }),
  setting({ flag: "publish-rate", env: "SEQCAST_PUBLISH_RATE", value: "N", defaultText: String(d.publishRate), help: "publishes/s per user (0 = unlimited)", parse: parseNonNegativeInt, set: broker("publishRate") }),
  setting({ flag: "publish-burst", env: "SEQCAST_PUBLISH_BURST", value: "N", defaultText: String(d.publishBurst), help: "publishes one user may burst above the rate", parse: parsePositiveInt, set: broker("publishBurst") }),
  setting({ flag: "ping-interval", env: "SEQCAST_PING_INTERVAL", value: "D", defaultText: formatDuration(d.pingIntervalMs), help: "HTTP/2 PING to every connection (0 = off)", parse: parseDuration, set: broker("pingIntervalMs") }),
  setting({ flag: "dead-timeout", env: "SEQCAST_DEAD_TIMEOUT", value: "D", defaultText: formatDuration(d.deadTimeoutMs), help: "a connection answering no PING this long is closed", parse: parseDuration, set: broker("deadTimeoutMs") }),
  setting({ flag: "presence-events-max", env: "SEQCAST_PRESENCE_EVENTS_MAX", value: "N", defaultText: String(d.presenceEventsMax), help: "rooms with more members than this (per node) get no presence events; GetPresence still answers (0 = no limit)", parse: parseNonNegativeInt, set: broker("presenceEventsMax") }),
  setting({ flag: "presence-grace", env: "SEQCAST_PRESENCE_GRACE", value: "D", defaultText: formatDuration(d.presenceGraceMs), help: "presence of a session that vanished is kept this long for a reconnect", parse: parseDuration, set: broker("presenceGraceMs") }),
  setting({ flag: "filter-max-bytes", env: "SEQCAST_FILTER_MAX_BYTES", value: "B", defaultText: formatBytes(d.filterMaxBytes), help: "max size of one CEL filter expression", parse: parsePositiveBytes, set: broker("filterMaxBytes") }),
  setting({ flag: "filter-max-request-bytes", env: "SEQCAST_FILTER_MAX_REQUEST_BYTES", value: "B", defaultText: formatBytes(d.filterMaxRequestBytes), help: "max size of the distinct filters of one Subscribe or Join request (identical filters count once)", parse: parsePositiveBytes, set: broker("filterMaxRequestBytes") }),
  setting({ flag: "filter-max-depth", env: "SEQCAST_FILTER_MAX_DEPTH", value: "N", defaultText: String(d.filterMaxDepth), help: "max depth of a filter's brackets and syntax tree", parse: parsePositiveInt, set: broker("filterMaxDepth") }),
  setting({ flag: "filter-max-nesting", env: "SEQCAST_FILTER_MAX_NESTING", value: "N", defaultText: String(d.filterMaxNesting), help: "max comprehensions (all, exists, exists_one, map, filter) nested in each other in a filter (0 = none allowed)", parse: parseNonNegativeInt, set: broker("filterMaxNesting") }),
  setting({ flag: "filter-max-cost", env: "SEQCAST_FILTER_MAX_COST", value: "N", defaultText: String(d.filterMaxCost), help: "max worst-case cost of one filter evaluation (units of about 1µs, estimated before it runs from the largest message --max-message-bytes allows)", parse: parsePositiveInt, set: broker("filterMaxCost") }),
  setting({ flag: "filter-max-regex-bytes", env: "SEQCAST_FILTER_MAX_REGEX_BYTES", value: "B", defaultText: formatBytes(d.filterMaxRegexBytes), help: "max size of the regular expression (a string literal) of matches() in a filter", parse: parsePositiveBytes, set: broker("filterMaxRegexBytes") }),
  setting({
    flag: "max-connections",
    env: "SEQCAST_MAX_CONNECTIONS",
    value: "N",
    defaultText: "auto",
    help: "open connections per process; more are closed as they arrive (auto = 10000, fewer when the open-file limit would not allow them: 90% of it less 64)",
    parse: orAuto(parsePositiveInt),
    set: (s, v) => (s.connections.maxConnections = v),
  }),
  setting({
    flag: "max-connections-per-ip",
    env: "SEQCAST_MAX_CONNECTIONS_PER_IP",
    value: "N",
    defaultText: "auto",
    help: "open connections per process from one client address (auto = a tenth of --max-connections; 0 = no limit, e.g. behind a proxy)",
    parse: orAuto(parseNonNegativeInt),
    set: (s, v) => (s.connections.maxConnectionsPerAddress = v),
  }),
  setting({
    flag: "handshake-timeout",
    env: "SEQCAST_HANDSHAKE_TIMEOUT",
    value: "D",
    defaultText: formatDuration(defaultConnectionLimits.handshakeTimeoutMs),
    help: "a connection that has not sent the HTTP/2 preface and SETTINGS, or a complete HTTP/1.1 request head, within this is closed",
    parse: parsePositiveDuration,
    set: (s, v) => (s.connections.handshakeTimeoutMs = v),
  }),
  setting({
    flag: "request-timeout",
    env: "SEQCAST_REQUEST_TIMEOUT",
    value: "D",
    defaultText: formatDuration(defaultConnectionLimits.requestTimeoutMs),
    help: "a request that has not fully arrived within this is refused: HTTP/1.1 gets 408 and its connection is closed, an HTTP/2 call is reset (CANCEL); PublishStream and reflection are exempt (0 = no limit)",
    parse: parseDuration,
    set: (s, v) => (s.connections.requestTimeoutMs = v),
  }),
  setting({
    flag: "idle-timeout",
    env: "SEQCAST_IDLE_TIMEOUT",
    value: "D",
    defaultText: formatDuration(defaultConnectionLimits.idleTimeoutMs),
    help: "an HTTP/2 connection without an open call this long gets GOAWAY (a subscriber's stream is a call; 0 = never)",
    parse: parseDuration,
    set: (s, v) => (s.connections.idleTimeoutMs = v),
  }),
  setting({ flag: "jwt-public-key", env: "SEQCAST_JWT_PUBLIC_KEY", value: "FILE", defaultText: "", help: "verify RS256/ES256 tokens with this PEM public key instead of the HS256 secret", parse: (t) => t, set: (s, v) => (s.jwtPublicKey = v) }),
  setting({ flag: "jwt-jwks", env: "SEQCAST_JWT_JWKS", value: "FILE", defaultText: "", help: "verify RS256/ES256 tokens with the keys of this JWKS file instead", parse: (t) => t, set: (s, v) => (s.jwtJwks = v) }),
  setting({
    flag: "dev-login",
    env: "SEQCAST_DEV_LOGIN",
    value: "",
    defaultText: "off",
    help: "development only: the chat page signs anyone in by name (POST /dev/token mints a 1-hour token with the HS256 secret); without it the page asks for a token",
    parse: parseSwitch,
    set: (s, v) => (s.devLogin = v),
  }),
  setting({
    flag: "metrics",
    env: "SEQCAST_METRICS",
    value: "on|off",
    defaultText: "on",
    help: "Prometheus metrics at GET /metrics on the broker's port (see Operations)",
    parse: parseSwitch,
    set: (s, v) => (s.metrics = v),
  }),
  setting<LogLevel>({
    flag: "log-level",
    env: "SEQCAST_LOG_LEVEL",
    value: "L",
    defaultText: "info",
    help: `least severe log events written: ${LOG_LEVELS.join(", ")} (debug adds a line per session opened and closed)`,
    parse: parseChoice(LOG_LEVELS),
    set: (s, v) => (s.logLevel = v),
  }),
  setting<LogFormat>({
    flag: "log-format",
    env: "SEQCAST_LOG_FORMAT",
    value: "F",
    defaultText: "auto",
    help: "json (one JSON object per line), pretty (one readable line per event) or auto (pretty when stdout is a terminal, else json)",
    parse: parseChoice(LOG_FORMATS),
    set: (s, v) => (s.logFormat = v),
  }),
];

/**
 * Not a flag on purpose: a secret on a command line is visible to every
 * user of the machine (ps). When unset (and no key file is given), the
 * broker creates a random secret in DATA_DIR/jwt-secret (mode 0600).
 */
export const SECRET_ENV = "SEQCAST_JWT_SECRET";

const shownDefault = (s: Setting<unknown>) => (s.defaultText === "" ? "none" : s.defaultText);

/**
 * Settings from the environment, then the flags (flags win). Throws an Error
 * naming the flag or variable on a bad value.
 */
export function resolveSettings(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): ServeSettings {
  const settings = {
    broker: { ...defaultBrokerConfig },
    connections: { ...defaultConnectionLimits },
  } as ServeSettings;
  for (const s of SETTINGS) {
    // A switch given on the command line is `true`; its text form is what the environment would say.
    const flag = flags[s.flag];
    const fromFlag = typeof flag === "boolean" ? (flag ? "on" : "off") : flag;
    const fromEnv = env[s.env];
    // An environment variable set but empty counts as unset.
    const [text, what] =
      fromFlag !== undefined ? [fromFlag, `--${s.flag}`] : fromEnv ? [fromEnv, s.env] : [s.defaultText, `default of --${s.flag}`];
    s.set(settings, s.parse(text, what));
  }
  return settings;
}

/**
 * Checks that combine settings. Throws an Error naming the flags.
 */
export function checkSettings(settings: ServeSettings): void {
  if (settings.tlsCert && !settings.tlsKey) throw new Error("--tls-cert needs --tls-key, the certificate's private key");
  if (settings.tlsKey && !settings.tlsCert) throw new Error("--tls-key needs --tls-cert, the certificate it is the key of");
  if (settings.workers !== 1 && settings.engine !== "redis")
    throw new Error(
      `--workers ${settings.workers} needs --engine redis: the ${settings.engine} engine keeps rooms in one process, ` +
        `so other processes would miss its messages`,
    );
}

/** parseArgs options for every setting. */
export function settingFlags(): Record<string, { type: "string" | "boolean" }> {
  return Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: s.value === "" ? ("boolean" as const) : ("string" as const) }]));
}

/** The options part of `seqcast serve --help`. */
export function settingsHelp(): string {
  const left = SETTINGS.map((s) => `  --${s.flag}${s.value === "" ? "" : ` ${s.value}`}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const envWidth = Math.max(...SETTINGS.map((s) => s.env.length)) + 2;
  return SETTINGS.map((s, i) => `${left[i]!.padEnd(width)}${s.env.padEnd(envWidth)}${s.help} (default ${shownDefault(s)})`).join("\n");
}

/** The README's configuration table (markdown). */
export function settingsTable(): string {
  const rows = SETTINGS.map((s) => `| \`--${s.flag}\` | \`${s.env}\` | ${s.defaultText === "" ? "none" : `\`${s.defaultText}\``} | ${s.help} |`);
  const secret = `| | \`${SECRET_ENV}\` | secret in the data dir | HS256 token secret (environment only: a command line is visible to every user of the machine) |`;
  return ["| flag | environment | default | meaning |", "|---|---|---|---|", ...rows, secret].join("\n");
}
