import { decodeEvent } from "./redis-codec.js";
import type { RedisLink } from "./redis-connection.js";
import type { RoomFeeds } from "./redis-feed.js";
import type { RedisNames } from "./redis-keys.js";
import type { WatchSet } from "./watch-set.js";
import { isPattern } from "../names/patterns.js";

/**
 * The Redis engine's side of watch/unwatch: keeps the pub/sub connection's
 * subscriptions (a channel per room, a glob per pattern) equal to what the
 * WatchSet says this node listens to, and hands each event arriving on them
 * to RoomFeeds (redis-feed.ts), which orders it and delivers it once.
 *
 * Contract:
 * - watch(room) resolves once the channel is subscribed and the room's feed
 *   has read its starting position, so everything published afterwards is
 *   delivered; watch(pattern) once the glob is subscribed. A failed watch
 *   leaves no count behind (the broker only unwatches what it watched).
 * - Subscription changes of one name run one at a time, each making the
 *   subscription match the WatchSet as it is then, so interleaved watches
 *   and unwatches end subscribed exactly when the name is still watched.
 * - A new pub/sub connection (reconnect) subscribes everything watched
 *   again, then every feed catches up from the streams, so nothing pub/sub
 *   lost meanwhile is missed.
 * - One PUBLISH reaches the feeds once, though Redis sends it once per
 *   matching subscription (a room and a pattern, or several patterns).
 *
 * Redis access is the engine's RedisLink; the WatchSet and RoomFeeds are the
 * engine's too (presence and sweep read the same WatchSet).
 */
export interface RedisSubscriptionsOptions {
  link: RedisLink;
  names: RedisNames;
  /** What this node listens to; watch and unwatch count here. */
  watchers: WatchSet;
  /** Where each decoded event goes. */
  feeds: RoomFeeds;
}

export class RedisSubscriptions {
  private readonly link: RedisLink;
  private readonly names: RedisNames;
  private readonly watchers: WatchSet;
  private readonly feeds: RoomFeeds;
  /** Names (rooms and patterns) with a confirmed subscription on the current pub/sub connection. */
  private readonly subscribed = new Set<string>();
  /** Subscription changes per name, one at a time. */
  private readonly changes = new Map<string, Promise<void>>();
  /** The previous pub/sub frame, to drop the copies Redis sends when a room matches several subscriptions. */
  private lastFrame: { channel: string; frame: string } | undefined;
  private closed = false;

  constructor(options: RedisSubscriptionsOptions) {
    this.link = options.link;
    this.names = options.names;
    this.watchers = options.watchers;
    this.feeds = options.feeds;
    const subscriber = this.link.subscriber;
    subscriber.on("message", (channel: string, frame: string) => this.received(channel, frame));
    subscriber.on("pmessage", (_glob: string, channel: string, frame: string) => this.received(channel, frame));
  }

  async watch(name: string): Promise<void> {
    this.watchers.add(name);
    try {
      const subscribed = this.sync(name);
      if (isPattern(name)) await subscribed;
      else await this.feeds.start(name, subscribed);
    } catch (error) {
      // The broker only unwatches what it watched successfully: undo the count here.
      this.watchers.remove(name);
      this.feeds.prune(isPattern(name) ? undefined : name);
      void this.sync(name).catch(() => {});
      throw error;
    }
  }

  async unwatch(name: string): Promise<void> {
    this.watchers.remove(name);
    this.feeds.prune(isPattern(name) ? undefined : name);
    if (this.closed) return;
    // A failure leaves nothing to undo: a reconnect subscribes only what is watched.
    await this.sync(name).catch(() => {});
  }

  /** The pub/sub connection is new: subscribe everything watched again, then catch up from the streams. */
  async resubscribe(): Promise<void> {
    this.subscribed.clear();
    const names = [...this.watchers.names()];
    try {
      await Promise.all(names.map((name) => this.sync(name)));
    } catch {
      return; // the connection dropped again; its next "ready" retries
    }
    this.feeds.resyncAll();
  }

  /** The engine is closing: unwatch only forgets, it no longer unsubscribes. */
  close(): void {
    this.closed = true;
  }

  /** Makes the pub/sub subscription of `name` match whether it is watched; one change per name at a time. */
  private sync(name: string): Promise<void> {
    const previous = this.changes.get(name) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const want = this.watchers.includes(name);
        if (want === this.subscribed.has(name)) return;
        const target = this.names.subscription(name);
        const pattern = isPattern(name);
        const sub = this.link.subscriber;
        if (want) {
          await this.link.ready(sub);
          await (pattern ? sub.psubscribe(target) : sub.subscribe(target));
          this.subscribed.add(name);
        } else {
          this.subscribed.delete(name);
          if (sub.status === "ready") await (pattern ? sub.punsubscribe(target) : sub.unsubscribe(target));
        }
      });
    this.changes.set(name, next);
    const forget = () => {
      if (this.changes.get(name) === next) this.changes.delete(name);
    };
    next.then(forget, forget);
    return next;
  }

  private received(channel: string, frame: string): void {
    // One PUBLISH reaches a connection once per matching subscription (a room
    // and a pattern, or several patterns), and the copies arrive back to back.
    const last = this.lastFrame;
    if (last && last.channel === channel && last.frame === frame) return;
    this.lastFrame = { channel, frame };
    const room = this.names.roomOf(channel);
    if (room === undefined) return;
    let event;
    try {
      event = decodeEvent(room, frame);
    } catch (error) {
      process.emitWarning(`seqcast redis engine: undecodable event on ${channel}: ${String(error)}`);
      return;
    }
    if (event) this.feeds.receive(room, event);
  }
}
