import type {
  Engine,
  EngineOptions,
  EngineStatusReport,
  HistoryPage,
  HistoryQuery,
  MessageDraft,
  Position,
  PresenceEntry,
  PublishResult,
  RetentionPolicy,
  RoomListener,
  StoredMessage,
} from "./engine.js";
import { newEpoch, newMessageId } from "./ids.js";
import { rememberedMessage, storedMessage } from "./stored.js";
import { decodeBody, encodeBody, sequenceOfEntry } from "./redis-codec.js";
import { RedisLink } from "./redis-connection.js";
import { RoomFeeds } from "./redis-feed.js";
import { RedisNames, type RoomKeys } from "./redis-keys.js";
import { PresenceLeases } from "./redis-presence.js";
import { SCRIPTS, type ScriptName } from "./redis-scripts.js";
import { RedisSubscriptions } from "./redis-subscriptions.js";
import { WatchSet } from "./watch-set.js";

/**
 * The multi-node engine: every broker node connected to one Redis shares
 * sequences, history, presence, acks and idempotency keys, and each node
 * receives the events of the rooms its sessions hold.
 *
 * - Writes are Lua scripts (redis-scripts.ts), one atomic step and one round
 *   trip each; publishes issued in the same tick are pipelined together.
 * - Fan-out goes through Redis pub/sub only, also to this node's own
 *   sessions: a node never delivers its own publish early, so every node sees
 *   a room's events in the one order the scripts ran in. RedisSubscriptions
 *   (redis-subscriptions.ts) keeps the subscriptions equal to what is watched;
 *   RoomFeeds (redis-feed.ts) turns at-most-once pub/sub into in-order,
 *   exactly-once delivery by catching up from the room's stream.
 * - Redis losing its data (restart without persistence) loses the rooms'
 *   epochs too: the next use creates new ones, so a sequence is never reused
 *   under an old epoch; clients learn it as `recovered = false` and resets.
 * - Redis unreachable or silent: calls fail within `commandTimeoutMs` (the
 *   broker answers UNAVAILABLE), status() says "unavailable", and the engine
 *   reconnects, resubscribes and catches up by itself.
 */
export interface RedisEngineOptions extends EngineOptions {
  /** redis://[:password@]host:port[/db] */
  url: string;
  /** Prepended to every key and channel, so several deployments (or test runs) share one Redis. */
  prefix: string;
  /** A node's presence entries expire this long after it last refreshed them (default 15 s). */
  presenceTtlMs?: number;
  /** A command Redis does not answer within this fails (default 3000 ms). */
  commandTimeoutMs?: number;
}

export interface RedisEngine extends Engine {
  readonly name: "redis";
  status(): EngineStatusReport;
  onStatusChange(listener: (report: EngineStatusReport) => void): () => void;
}

export function createRedisEngine(options: RedisEngineOptions): RedisEngine {
  return new RedisEngineImpl(options);
}

/**
 * Whether reading a room that was never published to (position, history)
 * creates it, giving it an epoch. The engine contract says it does not: a
 * read of such a room answers epoch "" and sequence 0 and leaves no key.
 */
const READS_CREATE_ROOMS = false;

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

class RedisEngineImpl implements RedisEngine {
  readonly name = "redis" as const;
  private readonly retention: RetentionPolicy;
  private readonly listener: RoomListener;
  private readonly now: () => number;
  private readonly names: RedisNames;
  private readonly link: RedisLink;
  private readonly watchers = new WatchSet();
  private readonly feeds: RoomFeeds;
  private readonly subscriptions: RedisSubscriptions;
  private readonly leases: PresenceLeases;
  private readonly statusListeners = new Set<(report: EngineStatusReport) => void>();
  private closed = false;

  constructor(options: RedisEngineOptions) {
    this.retention = options.retention;
    this.listener = options.listener;
    this.now = options.now ?? Date.now;
    if (!(this.retention.historySize >= 1)) throw new RangeError("retention.historySize must be >= 1");
    this.names = new RedisNames(options.prefix);
    this.feeds = new RoomFeeds({
      read: (room, epoch, after, until) => this.readSince(room, epoch, after, until),
      emit: (room, event) => this.listener(room, event),
      watched: (room) => this.watchers.has(room),
    });
    const commandTimeoutMs = options.commandTimeoutMs ?? 3000;
    this.link = new RedisLink({
      url: options.url,
      commandTimeoutMs,
      connectWaitMs: Math.min(1000, commandTimeoutMs),
      pingIntervalMs: 1000,
      onStatus: (status, reason) => this.statusChanged({ status, reason }),
      onSubscriberReady: () => void this.subscriptions.resubscribe(),
    });
    for (const [name, script] of Object.entries(SCRIPTS)) this.link.commands.defineCommand(name, script);
    this.subscriptions = new RedisSubscriptions({ link: this.link, names: this.names, watchers: this.watchers, feeds: this.feeds });
    this.leases = new PresenceLeases({
      ttlMs: options.presenceTtlMs ?? 15_000,
      now: this.now,
      touch: (room, entries, expiresAt) => {
        const keys = this.names.room(room);
        return this.script("seqcastPresenceTouch", [keys.presence, keys.presenceExpiry], [
          keys.channel,
          expiresAt,
          this.leases.keyTtlMs,
          ...entries.flatMap((e) => [e.sessionId, JSON.stringify(e)]),
        ]);
      },
      sweep: (room) => {
        const keys = this.names.room(room);
        return this.script("seqcastPresenceExpire", [keys.presence, keys.presenceExpiry], [keys.channel, this.now(), "0"]);
      },
      rooms: () => this.watchers.roomNames(),
    });
  }

  // ---- status ---------------------------------------------------------------

  status(): EngineStatusReport {
    return this.link.status;
  }

  onStatusChange(listener: (report: EngineStatusReport) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private statusChanged(report: EngineStatusReport): void {
    // Back after an outage: whatever pub/sub lost meanwhile is read from the streams.
    if (report.status === "ok") this.feeds.resyncAll();
    for (const listener of this.statusListeners) listener(report);
  }

  // ---- calls ----------------------------------------------------------------

  /** Runs one of SCRIPTS on the command connection. */
  private script(name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.link.command((redis) => (redis as unknown as Record<ScriptName, ScriptCall>)[name].call(redis, ...keys, ...args));
  }

  private check(): void {
    if (this.closed) throw new Error("redis engine is closed");
  }

  private roomKeys(keys: RoomKeys): string[] {
    return [keys.meta, keys.log, keys.dedupe, keys.dedupeTimes];
  }

  // ---- messages ---------------------------------------------------------------

  async publish(draft: MessageDraft): Promise<PublishResult> {
    this.check();
    const keys = this.names.room(draft.room);
    const id = newMessageId();
    const body = encodeBody(id, draft);
    const { dedupeWindowMs, historySize, historyTtlMs } = this.retention;
    const dedupe = dedupeWindowMs > 0 && draft.clientMessageId !== "" ? `${draft.sender}\n${draft.clientMessageId}` : "";
    const reply = (await this.script("seqcastPublish", this.roomKeys(keys), [
      keys.channel,
      newEpoch(),
      dedupe,
      this.now(),
      dedupeWindowMs,
      historySize,
      historyTtlMs,
      id,
      draft.timeMs,
      body,
    ])) as string[];
    const [kind, epoch, sequence] = reply as [string, string, string];
    if (kind === "dup") {
      const [, , , originalId, time, stored] = reply as [string, string, string, string, string, string];
      const message = stored
        ? decodeBody(draft.room, epoch, BigInt(sequence), stored)
        : // Retention dropped the original.
          rememberedMessage(draft, originalId, epoch, BigInt(sequence), Number(time));
      return { message, duplicate: true };
    }
    return { message: storedMessage(draft, id, epoch, BigInt(sequence)), duplicate: false };
  }

  async position(room: string): Promise<Position> {
    this.check();
    const keys = this.names.room(room);
    const [epoch, sequence] = (await this.script("seqcastPosition", this.roomKeys(keys), [
      READS_CREATE_ROOMS ? "1" : "0",
      newEpoch(),
    ])) as [string, string];
    return { epoch, sequence: BigInt(sequence) };
  }

  async history(room: string, query: HistoryQuery): Promise<HistoryPage> {
    this.check();
    return this.page(room, query, READS_CREATE_ROOMS);
  }

  private async page(room: string, query: HistoryQuery, create: boolean): Promise<HistoryPage> {
    const keys = this.names.room(room);
    const limit = Math.max(1, Math.floor(query.limit));
    const reply = (await this.script("seqcastHistory", this.roomKeys(keys), [
      create ? "1" : "0",
      newEpoch(),
      query.after.toString(),
      query.before.toString(),
      limit,
      query.direction === "forward" ? "f" : "b",
      this.now(),
      this.retention.historySize,
      this.retention.historyTtlMs,
    ])) as Array<string | number>;
    const epoch = String(reply[0]);
    const messages: StoredMessage[] = [];
    for (let i = 4; i < reply.length; i += 2)
      messages.push(decodeBody(room, epoch, sequenceOfEntry(String(reply[i])), String(reply[i + 1])));
    if (query.direction === "backward") messages.reverse();
    return {
      messages,
      position: { epoch, sequence: BigInt(String(reply[1])) },
      firstSequence: BigInt(String(reply[2])),
      hasMore: Number(reply[3]) === 1,
    };
  }

  /** For RoomFeeds: the position and every retained message after `after` (see ReadSince). */
  private async readSince(room: string, epoch: string, after: bigint, until: bigint | undefined) {
    const read = (from: bigint, through: bigint | undefined) =>
      this.page(room, { after: from, before: through === undefined ? 0n : through + 1n, limit: 1000, direction: "forward" }, false);
    let page = await read(after, until);
    if (page.position.epoch !== epoch && (after > 0n || until !== undefined)) {
      // Another lineage by now: all of it is new to the feed.
      until = undefined;
      page = await read(0n, undefined);
    }
    const { position } = page;
    const messages = [...page.messages];
    // Later pages stop where the first one said the room was, so the answer is one consistent range.
    const through = until ?? position.sequence;
    while (page.hasMore && page.position.epoch === position.epoch && messages.length > 0) {
      page = await read(messages[messages.length - 1]!.sequence, through);
      if (page.position.epoch !== position.epoch) break; // reset meanwhile: the next event will tell
      messages.push(...page.messages);
    }
    return { position, messages };
  }

  async clear(room: string): Promise<Position> {
    this.check();
    const keys = this.names.room(room);
    // "" for a room that was never written: nothing to clear, nothing created.
    const epoch = (await this.script("seqcastClear", this.roomKeys(keys), [keys.channel, newEpoch()])) as string;
    return { epoch, sequence: 0n };
  }

  // ---- idle rooms ---------------------------------------------------------------

  /**
   * Forgets idle rooms (Engine.sweep): SCANs the rooms' meta keys, 500 at a
   * time, skips the rooms this node watches and those another node's
   * sessions subscribe to by name (PUBSUB NUMSUB), and lets the sweep script
   * decide the rest atomically. Any node may run it; several at once forget
   * a room once. A room held only by another node's pattern subscription is
   * not seen as watched: it is forgotten like an unwatched one, and its next
   * message starts a new lineage, which the pattern's subscribers learn as a
   * reset. On Redis Cluster, SCAN covers the node this engine talks to.
   */
  async sweep(): Promise<number> {
    this.check();
    await this.link.ready(this.link.commands);
    const redis = this.link.commands;
    const { historyTtlMs, dedupeWindowMs } = this.retention;
    const now = this.now();
    const cutoff = historyTtlMs > 0 ? String(now - historyTtlMs) : "";
    const dedupeFrom = dedupeWindowMs > 0 ? now - dedupeWindowMs : now;
    let forgotten = 0;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", this.names.metaGlob(), "COUNT", 500);
      cursor = next;
      const rooms = keys
        .map((key) => this.names.roomOfMeta(key))
        .filter((room): room is string => room !== undefined && !this.watchers.has(room))
        .map((room) => this.names.room(room));
      if (rooms.length === 0) continue;
      const counts = (await redis.pubsub("NUMSUB", ...rooms.map((k) => k.channel))) as Array<string | number>;
      const swept = await Promise.all(
        rooms.map((k, i) =>
          Number(counts[2 * i + 1]) > 0
            ? 0
            : this.script("seqcastSweep", [k.meta, k.log, k.dedupe, k.dedupeTimes, k.presence, k.presenceExpiry, k.acks], [cutoff, dedupeFrom]),
        ),
      );
      for (const n of swept) forgotten += Number(n);
    } while (cursor !== "0");
    return forgotten;
  }

  // ---- fan-out ------------------------------------------------------------------

  async watch(name: string): Promise<void> {
    this.check();
    await this.subscriptions.watch(name);
  }

  unwatch(name: string): Promise<void> {
    return this.subscriptions.unwatch(name);
  }

  // ---- presence -------------------------------------------------------------------

  async presenceSet(room: string, entry: PresenceEntry, kind: "join" | "update"): Promise<void> {
    this.check();
    const keys = this.names.room(room);
    this.leases.own(room, entry);
    await this.script("seqcastPresenceSet", [keys.presence, keys.presenceExpiry], [
      keys.channel,
      entry.sessionId,
      JSON.stringify(entry),
      kind,
      this.leases.expiresAt(),
      this.leases.keyTtlMs,
    ]);
  }

  async presenceRemove(room: string, sessionId: string): Promise<boolean> {
    this.check();
    this.leases.disown(room, sessionId);
    const keys = this.names.room(room);
    const removed = await this.script("seqcastPresenceRemove", [keys.presence, keys.presenceExpiry], [keys.channel, sessionId]);
    return Number(removed) === 1;
  }

  async presenceList(room: string): Promise<PresenceEntry[]> {
    this.check();
    const keys = this.names.room(room);
    const values = (await this.script("seqcastPresenceExpire", [keys.presence, keys.presenceExpiry], [
      keys.channel,
      this.now(),
      "1",
    ])) as string[];
    return values.map((v) => JSON.parse(v) as PresenceEntry).sort((a, b) => a.joinedAtMs - b.joinedAtMs);
  }

  // ---- acks -----------------------------------------------------------------------

  async ackSet(subscriber: string, room: string, position: Position): Promise<void> {
    this.check();
    await this.script("seqcastAck", [this.names.room(room).acks], [subscriber, position.epoch, position.sequence.toString()]);
  }

  async ackGet(subscriber: string, room: string): Promise<Position | undefined> {
    this.check();
    const value = await this.link.command((redis) => redis.hget(this.names.room(room).acks, subscriber));
    if (value === null) return undefined;
    const colon = value.indexOf(":");
    return { epoch: value.slice(colon + 1), sequence: BigInt(value.slice(0, colon)) };
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Waits for the replies of the calls already made (those publishes resolve and are stored), then disconnects; calls after it throw. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.close();
    this.leases.stop();
    this.statusListeners.clear();
    await this.link.close();
  }
}
