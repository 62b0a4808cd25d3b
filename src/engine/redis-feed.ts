import type { Position, RoomEvent, StoredMessage } from "./engine.js";
import type { ChannelEvent } from "./redis-codec.js";

/**
 * Ordered, exactly-once delivery of each watched room's events on one node,
 * built on Redis pub/sub (at-most-once, and silent about what a dropped
 * connection lost) and the room's stream (the truth).
 *
 * Per room a feed knows the epoch and the last sequence it delivered. Events
 * are handled in the order they arrived on the room's channel, which is the
 * order the publish scripts ran in (presence events included, so they stay
 * in order with the messages). A message already delivered is dropped; one
 * that skips ahead stops the feed until the hole is read from the stream;
 * after a reconnect or an outage every feed catches up from the stream. A
 * message or reset of another epoch means the room's lineage was replaced
 * (cleared, or Redis lost its data): the listener gets a reset to the new
 * epoch at sequence 0 first, so a subscriber never mistakes a new lineage
 * for the old one. Messages retention already dropped cannot be delivered:
 * the feed skips them, and the subscriber's SDK, seeing the hole, fills what
 * history still holds and reports the rest as lost (never a silent hole).
 */

/**
 * Reads the room from Redis: its position and its retained messages after
 * `after` (in `epoch`; from the start when the room has another epoch by
 * now), up to `until` (undefined: the newest). Creates nothing.
 */
export type ReadSince = (
  room: string,
  epoch: string,
  after: bigint,
  until: bigint | undefined,
) => Promise<{ position: Position; messages: StoredMessage[] }>;

export interface RoomFeedsOptions {
  read: ReadSince;
  /** Delivers one event to the engine's listener. */
  emit: (room: string, event: RoomEvent) => void;
  /** Whether the node still listens to the room (by name or pattern). */
  watched: (room: string) => boolean;
}

interface Feed {
  room: string;
  /** "" while the room had no epoch yet. */
  epoch: string;
  /** Last sequence delivered (or where delivery started). */
  last: bigint;
  /** False until the feed's starting position was read. */
  known: boolean;
  /** Epochs this feed moved away from; their late events are stale. */
  retired: string[];
  /** Events received and not handled yet, in channel order. */
  queue: ChannelEvent[];
  state: "live" | "syncing" | "stale";
  /** Another catch-up was asked for while one ran. */
  resyncAgain: boolean;
  /** The first read of its position (watch() waits for it). */
  started: Promise<void>;
}

export class RoomFeeds {
  private readonly feeds = new Map<string, Feed>();

  constructor(private readonly options: RoomFeedsOptions) {}

  /**
   * For watch(room): a feed that holds back the room's events until its
   * starting position is read, which happens once `subscribed` resolved (so
   * everything published after that read reaches the feed). Resolves when
   * the feed is live; a feed already running is reused.
   */
  start(room: string, subscribed: Promise<void>): Promise<void> {
    const existing = this.feeds.get(room);
    if (existing) return subscribed.then(() => (existing.state === "stale" ? this.sync(existing) : existing.started));
    const feed: Feed = {
      room,
      epoch: "",
      last: 0n,
      known: false,
      retired: [],
      queue: [],
      state: "syncing",
      resyncAgain: false,
      started: Promise.resolve(),
    };
    this.feeds.set(room, feed);
    feed.started = subscribed.then(
      () => this.sync(feed),
      (error: unknown) => {
        feed.state = "stale";
        throw error;
      },
    );
    feed.started.catch(() => {
      if (!this.options.watched(room) && this.feeds.get(room) === feed) this.feeds.delete(room);
    });
    return feed.started;
  }

  /** An event from the room's channel. */
  receive(room: string, event: ChannelEvent): void {
    if (!this.options.watched(room)) return;
    let feed = this.feeds.get(room);
    if (!feed) {
      // A room matched by a pattern: followed from its first event on.
      if (event.type === "presence") return this.emit(room, event);
      const epoch = event.type === "message" ? event.message.epoch : event.epoch;
      const last = event.type === "message" ? event.message.sequence - 1n : 0n;
      feed = { room, epoch, last, known: true, retired: [], queue: [], state: "live", resyncAgain: false, started: Promise.resolve() };
      this.feeds.set(room, feed);
    }
    feed.queue.push(event);
    this.drain(feed);
  }

  /** After a reconnect or an outage: every feed catches up from the stream (failures retry on the next call). */
  resyncAll(): void {
    for (const feed of this.feeds.values()) {
      if (feed.state === "syncing") feed.resyncAgain = true;
      else void this.sync(feed).catch(() => {});
    }
  }

  /** Forgets the feeds of rooms the node no longer listens to. */
  prune(room?: string): void {
    if (room !== undefined) {
      if (!this.options.watched(room)) this.feeds.delete(room);
      return;
    }
    for (const name of [...this.feeds.keys()]) if (!this.options.watched(name)) this.feeds.delete(name);
  }

  /** Reads from the stream what the feed may have missed (through `until`), delivers it, then resumes the queue. */
  private async sync(feed: Feed, until?: bigint): Promise<void> {
    feed.state = "syncing";
    feed.resyncAgain = false;
    try {
      if (!feed.known) {
        const { position } = await this.options.read(feed.room, "", 0n, 0n);
        feed.epoch = position.epoch;
        feed.last = position.sequence;
        feed.known = true;
      } else {
        const { position, messages } = await this.options.read(feed.room, feed.epoch, feed.last, until);
        let reached = until ?? position.sequence;
        if (position.epoch === "" && feed.epoch !== "") {
          // The room is gone from Redis (its data was lost): the next event names
          // the new lineage, and the reset to it goes out then.
          reached = feed.last;
        } else if (position.epoch !== feed.epoch) {
          if (feed.epoch === "") feed.epoch = position.epoch;
          else this.reset(feed, position.epoch);
          reached = position.sequence;
        }
        for (const message of messages) {
          if (message.sequence <= feed.last) continue;
          feed.last = message.sequence;
          this.emit(feed.room, { type: "message", message });
        }
        // Retention dropped the rest: skipped (see the module comment).
        if (feed.last < reached) feed.last = reached;
      }
      feed.state = "live";
    } catch (error) {
      feed.state = "stale";
      throw error;
    } finally {
      if (feed.resyncAgain && this.feeds.get(feed.room) === feed) void this.sync(feed).catch(() => {});
    }
    this.drain(feed);
  }

  private drain(feed: Feed): void {
    while (feed.state === "live" && feed.queue.length > 0) {
      const event = feed.queue[0]!;
      if (event.type === "message") {
        const { message } = event;
        if (message.epoch !== feed.epoch) {
          if (feed.retired.includes(message.epoch)) {
            feed.queue.shift();
            continue;
          }
          if (feed.epoch === "") feed.epoch = message.epoch;
          else this.reset(feed, message.epoch);
        }
        if (message.sequence > feed.last + 1n) {
          // A hole: read it from the stream, then go on with this message.
          void this.sync(feed, message.sequence - 1n).catch(() => {});
          return;
        }
        feed.queue.shift();
        if (message.sequence <= feed.last) continue;
        feed.last = message.sequence;
        this.emit(feed.room, event);
      } else if (event.type === "reset") {
        feed.queue.shift();
        if (event.epoch !== feed.epoch && !feed.retired.includes(event.epoch)) this.reset(feed, event.epoch);
      } else {
        feed.queue.shift();
        this.emit(feed.room, event);
      }
    }
  }

  /** The room has a new lineage: the listener hears so before any of its messages. */
  private reset(feed: Feed, epoch: string): void {
    if (feed.epoch !== "") feed.retired.push(feed.epoch);
    if (feed.retired.length > 8) feed.retired.shift();
    feed.epoch = epoch;
    feed.last = 0n;
    this.emit(feed.room, { type: "reset", position: { epoch, sequence: 0n } });
  }

  private emit(room: string, event: RoomEvent): void {
    if (!this.options.watched(room)) return;
    try {
      this.options.emit(room, event);
    } catch (error) {
      // The event is stored: a throwing listener must not stall the room.
      process.emitWarning(`seqcast redis engine: room listener threw: ${String((error as Error)?.stack ?? error)}`);
    }
  }
}
