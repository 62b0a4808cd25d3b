import { STUCK_AFTER_MS } from "./reader-backlog.js";

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
   * After a flush that wrote to many streams (32 or more), the next flush of
   * queued events waits until this long after it started, so a busy room's
   * messages share one write per stream (SEQCAST_FLUSH_INTERVAL; 0 = flush
   * every event-loop turn). Rooms quieter than one message per interval are
   * not delayed.
   */
  flushIntervalMs: number;
  /**
   * Events queued for one session before it counts as a slow consumer and its
   * stream is ended with RESOURCE_EXHAUSTED (SEQCAST_SESSION_QUEUE_LIMIT).
   */
  sessionQueueLimit: number;
  /** Bytes (estimated wire size) queued for one session before it counts as a slow consumer. */
  sessionQueueBytes: number;
  /**
   * A slow consumer's stream is ended at once with RESOURCE_EXHAUSTED; if the
   * client has not read its trailers within this time (it stopped reading),
   * the HTTP/2 stream is reset (ENHANCE_YOUR_CALM).
   */
  slowConsumerGraceMs: number;
  /**
   * A subscriber whose queue is half full holds back publishers to its rooms
   * while it reads (reader-backlog.ts); one that takes nothing for this long
   * is stalled, no longer waited for, and cut off as a slow consumer once its
   * queue is full (SEQCAST_READER_STALL).
   */
  readerStallMs: number;
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
  /**
   * Rooms with more members than this on a node get no presence events
   * there (joins, leaves, updates) and no presence list at join; GetPresence
   * still answers. 0 = no limit.
   */
  presenceEventsMax: number;
  /**
   * Limits of CEL filters (Subscribe, Join, GetHistory), checked before a
   * filter runs (src/broker/filter-cost.ts); a filter over one is refused
   * with INVALID_ARGUMENT (INVALID_FILTER, metadata `limit` = the setting).
   */
  /** Bytes of one filter expression (SEQCAST_FILTER_MAX_BYTES). */
  filterMaxBytes: number;
  /** Bytes of the distinct filters of one request (SEQCAST_FILTER_MAX_REQUEST_BYTES). */
  filterMaxRequestBytes: number;
  /** Depth of a filter's syntax tree and brackets (SEQCAST_FILTER_MAX_DEPTH). */
  filterMaxDepth: number;
  /** Comprehensions (all, exists, map, …) nested in each other (SEQCAST_FILTER_MAX_NESTING). */
  filterMaxNesting: number;
  /** Worst-case cost of one evaluation, ≈ µs (SEQCAST_FILTER_MAX_COST). */
  filterMaxCost: number;
  /** Bytes of the regular expression of matches() (SEQCAST_FILTER_MAX_REGEX_BYTES). */
  filterMaxRegexBytes: number;
  /**
   * Live sessions (Subscribe streams) one user may hold at once; more are
   * refused with RESOURCE_EXHAUSTED / SESSION_QUOTA. Admins are exempt. 0 = no limit.
   */
  userSessionsMax: number;
  /**
   * Distinct rooms one user may touch (read, join, publish to) per second,
   * bursting to twice that (at least maxRoomsPerSession); more are refused
   * with RESOURCE_EXHAUSTED / ROOM_QUOTA. Admins are exempt. 0 = no limit.
   */
  userRoomsPerSecond: number;
  /**
   * Bytes queued for all subscribers together (estimated wire size); above
   * it, the streams holding the most are ended (BROKER_OVERLOADED) until the
   * total is back under it. Publishes are never refused for it. 0 = no limit.
   */
  queueBytesTotal: number;
}

export const defaultBrokerConfig: BrokerConfig = {
  historySize: 100,
  historyTtlMs: 24 * 60 * 60 * 1000,
  maxMessageBytes: 64 * 1024,
  maxRoomsPerSession: 100,
  heartbeatIntervalMs: 15_000,
  flushIntervalMs: 0,
  sessionQueueLimit: 10_000,
  sessionQueueBytes: 4 * 1024 * 1024,
  slowConsumerGraceMs: 5_000,
  readerStallMs: STUCK_AFTER_MS,
  dedupeWindowMs: 2 * 60 * 1000,
  ackDeadlineMs: 30_000,
  publishRate: 1000,
  publishBurst: 2000,
  presenceGraceMs: 5_000,
  pingIntervalMs: 10_000,
  deadTimeoutMs: 25_000,
  presenceEventsMax: 1000,
  filterMaxBytes: 1024,
  filterMaxRequestBytes: 8 * 1024,
  filterMaxDepth: 32,
  filterMaxNesting: 2,
  filterMaxCost: 10_000,
  filterMaxRegexBytes: 256,
  userSessionsMax: 100,
  userRoomsPerSecond: 200,
  queueBytesTotal: 256 * 1024 * 1024,
};
