import { isPattern } from "../names/patterns.js";

/**
 * Names of the Redis engine's keys and pub/sub channels.
 *
 * Every key of a room carries the room in a hash tag, `<prefix>{<room>}:…`,
 * so all keys one script touches hash to the same slot and the scripts run
 * unchanged on Redis Cluster. Room names cannot contain braces (see
 * src/names/rooms.ts), so the tag is always exactly the room.
 *
 * Channels: one per room, `<prefix>{<room>}`; a node SUBSCRIBEs to the rooms
 * its sessions hold and PSUBSCRIBEs to a glob for each pattern they hold. We
 * chose this over one firehose channel per cluster so that a node receives
 * (and decodes) only the rooms it serves: fan-out stays O(subscribers of the
 * room) as the number of rooms and nodes grows. Redis globs are coarser than
 * our patterns (`*` also matches dots), so a pattern's glob may deliver more
 * rooms than it matches; the engine filters them with the WatchSet, which also
 * keeps inboxes out of patterns.
 */
export interface RoomKeys {
  /** HASH { epoch, seq }: the room's lineage and last sequence. */
  meta: string;
  /** STREAM of retained messages, entry id `<sequence>-0`, fields t (time ms) and b (body). */
  log: string;
  /** HASH "<sender>\n<clientMessageId>" -> "<sequence>\n<id>\n<timeMs>". */
  dedupe: string;
  /** ZSET of the dedupe fields scored by publish time, to forget them after the window. */
  dedupeTimes: string;
  /** HASH sessionId -> presence entry (JSON). */
  presence: string;
  /** ZSET sessionId scored by the time (ms) the entry expires unless its node refreshes it. */
  presenceExpiry: string;
  /** HASH durable subscriber -> "<sequence>:<epoch>". */
  acks: string;
  /** The room's pub/sub channel. */
  channel: string;
}

export class RedisNames {
  constructor(readonly prefix: string) {}

  room(room: string): RoomKeys {
    const base = `${this.prefix}{${room}}`;
    return {
      meta: `${base}:meta`,
      log: `${base}:log`,
      dedupe: `${base}:dedupe`,
      dedupeTimes: `${base}:dedupe:t`,
      presence: `${base}:presence`,
      presenceExpiry: `${base}:presence:exp`,
      acks: `${base}:acks`,
      channel: base,
    };
  }

  /** The channel (SUBSCRIBE) of a room, or the glob (PSUBSCRIBE) of a pattern. */
  subscription(name: string): string {
    if (!isPattern(name)) return this.room(name).channel;
    const glob = name
      .split(".")
      .map((segment) => (segment === "*" || segment === ">" ? "*" : segment))
      .join(".");
    return `${escapeGlob(this.prefix)}{${glob}}`;
  }

  /** A SCAN glob matching the meta key of every room under this prefix. */
  metaGlob(): string {
    return `${escapeGlob(this.prefix)}{*}:meta`;
  }

  /** The room of a meta key (see metaGlob), undefined for another key. */
  roomOfMeta(key: string): string | undefined {
    if (!key.startsWith(`${this.prefix}{`) || !key.endsWith("}:meta")) return undefined;
    return key.slice(this.prefix.length + 1, -"}:meta".length);
  }

  /** The room a channel belongs to, undefined for a channel of another prefix. */
  roomOf(channel: string): string | undefined {
    if (!channel.startsWith(`${this.prefix}{`) || !channel.endsWith("}")) return undefined;
    return channel.slice(this.prefix.length + 1, -1);
  }
}

/** A literal prefix inside a PSUBSCRIBE glob. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
